// The forwarder's pure parts: the request body, the sequence header, and how an answer is
// taken (plain JSON and ez-api's envelope).
#include "daemon/upstream/forwarder.h"

#include <gtest/gtest.h>

#include "daemon/api/record_json.h"

namespace tally::daemon {
namespace {

TEST(Forwarder, TheBodyIsEzApisAndParsesBackToTheSameDeltas) {
  core::DeltaBatch b{"edge", 3, 3, {{1, 2, 1}, {7, 0, 5}}};
  EXPECT_EQ(RenderBatchBody(b), R"({"keys":[{"api_key_id":1,"requests":3,"success_requests":2},)"
                                R"({"api_key_id":7,"requests":5,"success_requests":0}]})");
  auto parsed = ParseFlushBody(RenderBatchBody(b));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, b.deltas);
  EXPECT_EQ(SequenceText(b), "3");
  b.last_sequence = 9;
  EXPECT_EQ(SequenceText(b), "3-9");
}

TEST(Forwarder, AnEntryPastEzApis2To40IsSplitIntoEntriesThatAddUp) {
  const uint64_t big = (uint64_t{1} << 40) + 5;
  core::DeltaBatch b{"edge", 1, 1, {{4, big, big}}};
  auto parsed = ParseFlushBody(RenderBatchBody(b));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  uint64_t s = 0;
  uint64_t f = 0;
  for (const core::KeyDelta& d : *parsed) {
    EXPECT_EQ(d.key, 4u);
    s += d.successes;
    f += d.failures;
  }
  EXPECT_EQ(s, big);
  EXPECT_EQ(f, big);
}

TEST(Forwarder, AnswersAreAckedRetriedOrDeadLettered) {
  std::string reason;
  EXPECT_EQ(ClassifyAnswer(200, R"({"updated":1})", &reason), AnswerClass::kAcked);
  EXPECT_EQ(ClassifyAnswer(200, R"({"code":0,"message":"success","data":{"updated":1}})", &reason),
            AnswerClass::kAcked);
  EXPECT_EQ(ClassifyAnswer(204, "", &reason), AnswerClass::kAcked);
  EXPECT_EQ(ClassifyAnswer(200, R"({"code":40001,"message":"bad keys","data":null})", &reason),
            AnswerClass::kDead);
  EXPECT_EQ(reason, "HTTP 200: bad keys");
  for (unsigned s : {408u, 429u, 500u, 502u, 503u}) {
    EXPECT_EQ(ClassifyAnswer(s, "", &reason), AnswerClass::kRetry) << s;
  }
  EXPECT_EQ(ClassifyAnswer(400, R"({"error":"invalid request body"})", &reason),
            AnswerClass::kDead);
  EXPECT_EQ(reason, "HTTP 400: invalid request body");
  EXPECT_EQ(ClassifyAnswer(401, R"({"code":401,"message":"unauthorized"})", &reason),
            AnswerClass::kDead);
  EXPECT_EQ(reason, "HTTP 401: unauthorized");
  EXPECT_EQ(ClassifyAnswer(413, "not json", &reason), AnswerClass::kDead);
}

}  // namespace
}  // namespace tally::daemon
