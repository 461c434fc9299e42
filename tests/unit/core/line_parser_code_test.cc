// Failure codes in lines (issue 16): ".failure.<code>" in the name and the `code:` tag
// (core/line_parser.h, "Failure codes").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/ingest.h"
#include "core/line_parser.h"

namespace tally::core {
namespace {

Increment Accepted(std::string_view line) {
  Increment inc;
  EXPECT_EQ(ParseLine(line, "apikey", &inc), LineResult::kAccepted) << line;
  return inc;
}

LineResult Parse(std::string_view line) {
  Increment inc;
  return ParseLine(line, "apikey", &inc);
}

TEST(LineParserCodes, NameFormCountsOneFailureWithItsCode) {
  Increment inc = Accepted("apikey.42.failure.401:1|c");
  EXPECT_EQ(inc.key, 42u);
  EXPECT_EQ(inc.failures, 1u);
  EXPECT_EQ(inc.successes, 0u);
  EXPECT_EQ(inc.code, 401);
  inc = Accepted("apikey.7.failure.599:2:3|c|#env:prod");
  EXPECT_EQ(inc.failures, 5u);
  EXPECT_EQ(inc.code, 599);
  EXPECT_EQ(Accepted("apikey.7.failure.100:1|c").code, 100);
}

TEST(LineParserCodes, TagFormCarriesTheCode) {
  Increment inc = Accepted("apikey.requests:1|c|#key:9,outcome:failure,code:429");
  EXPECT_EQ(inc.key, 9u);
  EXPECT_EQ(inc.failures, 1u);
  EXPECT_EQ(inc.code, 429);
  // A name-form line with the tag, and a name and a tag that agree.
  EXPECT_EQ(Accepted("apikey.9.failure:1|c|#code:403").code, 403);
  EXPECT_EQ(Accepted("apikey.9.failure.403:1|c|#code:403").code, 403);
}

TEST(LineParserCodes, SuccessesAndLinesWithoutCodesHaveNone) {
  EXPECT_EQ(Accepted("apikey.9.failure:1|c").code, 0);
  EXPECT_EQ(Accepted("apikey.requests:1|c|#key:9,outcome:failure").code, 0);
  // Gateways tag every line with its status: a success's tag is not a failure code.
  Increment inc = Accepted("apikey.requests:1|c|#key:9,outcome:success,code:200");
  EXPECT_EQ(inc.successes, 1u);
  EXPECT_EQ(inc.code, 0);
  EXPECT_EQ(Accepted("apikey.9.success:1|c|#code:401").code, 0);
}

TEST(LineParserCodes, BadCodesAreMalformed) {
  for (const char* line : {
           "apikey.9.failure.99:1|c",             // two digits
           "apikey.9.failure.600:1|c",            // past 599
           "apikey.9.failure.0401:1|c",           // four digits
           "apikey.9.failure.40x:1|c",            // not digits
           "apikey.9.failure.:1|c",               // empty
           "apikey.9.failure.401.2:1|c",          // more after the code
           "apikey.9.success.200:1|c",            // codes name failures
           "apikey.9.failure.401:1|c|#code:403",  // name and tag disagree
           "apikey.requests:1|c|#key:9,outcome:failure,code:42",
           "apikey.requests:1|c|#key:9,outcome:failure,code:401,code:401",  // twice
           "apikey.requests:1|c|#key:9,outcome:success,code:abc",
       }) {
    EXPECT_EQ(Parse(line), LineResult::kMalformed) << line;
  }
}

TEST(LineParserCodes, BufferKeepsCodesAndCountsEveryLine) {
  std::vector<Increment> got;
  LineCounts c = ParseBuffer(
      "apikey.1.success:1|c\napikey.1.failure.401:1|c\napikey.1.failure:2|c\n"
      "apikey.requests:1|c|#key:2,outcome:failure,code:429\n",
      "apikey", [&](const Increment& inc) {
        got.push_back(inc);
        return true;
      });
  EXPECT_EQ(c.accepted, 4u);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].code, 0);
  EXPECT_EQ(got[1].code, 401);
  EXPECT_EQ(got[1].failures, 1u);
  EXPECT_EQ(got[2].code, 0);
  EXPECT_EQ(got[3].code, 429);
  EXPECT_EQ(got[3].key, 2u);
}

// Only failures whose code the channel wants reach it; every line still reaches the table.
TEST(FailureCodes, IngestBufferCarriesOnlyWantedCodes) {
  CounterTable table(16);
  FailureCodes codes;
  const int wanted[] = {401, 429};
  codes.SetCodes(wanted);
  LineCounts c = IngestBuffer(
      "apikey.1.failure.401:2|c\napikey.1.failure.401:1|c\napikey.1.failure.500:1|c\n"
      "apikey.2.failure:1|c|#code:429\napikey.3.success:1|c|#code:401\n",
      "apikey", table, &codes);
  EXPECT_EQ(c.accepted, 5u);
  std::vector<FailureCodes::Entry> got = codes.Drain();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].key, 1u);
  EXPECT_EQ(got[0].code, 401);
  EXPECT_EQ(got[0].count, 3u);
  EXPECT_EQ(got[1].key, 2u);
  EXPECT_EQ(got[1].code, 429);
  EXPECT_TRUE(codes.Drain().empty());
  uint64_t failures = 0;
  std::vector<KeyDelta> deltas;
  table.Drain(&deltas);
  for (const KeyDelta& d : deltas) {
    failures += d.failures;
  }
  EXPECT_EQ(failures, 5u);  // 401, 500 and 429 failures all count
}

TEST(FailureCodes, BoundedAndCountsWhatItDrops) {
  FailureCodes codes;
  for (uint64_t k = 1; k <= FailureCodes::kMaxEntries + 3; ++k) {
    codes.Add(k, 401, 1);
  }
  codes.Add(1, 401, 1);  // an entry held is still summed
  EXPECT_EQ(codes.dropped(), 3u);
  std::vector<FailureCodes::Entry> got = codes.Drain();
  EXPECT_EQ(got.size(), FailureCodes::kMaxEntries);
  EXPECT_EQ(got[0].count, 2u);
}

}  // namespace
}  // namespace tally::core
