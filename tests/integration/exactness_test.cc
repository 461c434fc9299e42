// Exactness rules against the real binary (README, "Exactness"): no total passes 2^63-1 (the
// internal flush is refused whole, traffic's overflowing deltas are dropped and counted);
// increments for deleted keys are counted when dropped, so accepted lines reconcile with the
// totals; the internal flush creates unknown keys only up to --max-keys records; and an
// Idempotency-Key's answer is bound to the SHA-256 of the body (answers stored by older
// builds, with a 64-bit hash, still replay).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <limits>

#include "persistence/store.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();  // 2^63-1

HttpResult InternalFlush(const TallydProcess& t, std::string_view body,
                         std::map<std::string, std::string> headers = {}) {
  return Http(t.http_port(), "POST", "/internal/apikey-stats/flush", body, headers);
}

HttpResult IngestAndWait(const TallydProcess& t, std::string_view lines) {
  return Http(t.http_port(), "POST", "/v1/ingest?wait=flush", lines);
}

int64_t SummaryTotal(const TallydProcess& t) {
  HttpResult r = Http(t.http_port(), "GET", "/admin/apikey-stats/summary");
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body).as_object().at("total_requests").to_number<int64_t>();
}

double Dropped(const TallydProcess& t, std::string_view reason,
               std::string_view source = "traffic") {
  return ScrapeMetric(t.http_port(), "tallyd_increments_dropped_total{source=\"" +
                                         std::string(source) + "\",reason=\"" +
                                         std::string(reason) + "\"}")
      .value_or(-1);
}

// Writes deltas into the data dir before tallyd starts (its lock is then free).
void Seed(const std::string& data_dir, std::vector<core::KeyDelta> deltas) {
  auto store = persistence::Store::Open(data_dir);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE((*store)->ApplyFlush(&deltas).ok());
}

TEST(Exactness, TheInternalFlushIsRefusedWholePastTheMaximumAndReachesItExactly) {
  TempDir dir;
  Seed(dir.Sub("data"), {{1, uint64_t{kMax} - 10, 0}});
  TallydProcess t(dir.Sub("data"));
  ASSERT_EQ(SummaryTotal(t), kMax - 10);
  // One above 2^63-1 in all: 409, and nothing of it applied (key 2 fits, but not with key 1).
  HttpResult r = InternalFlush(
      t, R"({"keys":[{"api_key_id":2,"requests":1},{"api_key_id":1,"requests":10}]})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("2^63-1"), std::string::npos) << r.body;
  EXPECT_EQ(SummaryTotal(t), kMax - 10);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin/api-keys/2").status, 404);
  // Exactly 2^63-1.
  r = InternalFlush(t, R"({"keys":[{"api_key_id":1,"requests":10,"success_requests":10}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(SummaryTotal(t), kMax);
  json::object k1 = json::parse(Http(t.http_port(), "GET", "/admin/api-keys/1").body).as_object();
  EXPECT_EQ(k1.at("total_requests").to_number<int64_t>(), kMax);
  EXPECT_EQ(k1.at("success_requests").to_number<int64_t>(), kMax);
  EXPECT_EQ(InternalFlush(t, R"({"keys":[{"api_key_id":1,"requests":1}]})").status, 409);
  EXPECT_EQ(SummaryTotal(t), kMax);
}

TEST(Exactness, DroppedIncrementsAreCountedSoAcceptedLinesReconcileWithTotals) {
  TempDir dir;
  Seed(dir.Sub("data"), {{1, uint64_t{kMax} - 1, 0}});
  TallydProcess t(dir.Sub("data"), {"--flush-interval-ms", "60000"});
  EXPECT_EQ(Dropped(t, "overflow"), 0);
  EXPECT_EQ(Dropped(t, "deleted"), 0);
  // Accepted in memory; at the flush key 1's delta fits exactly, key 3's no longer does.
  HttpResult r = IngestAndWait(t, "apikey.1.success:1|c\napikey.3.failure:2|c\n");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"accepted":2,"ignored":0,"malformed":0,"refused":0})");
  EXPECT_EQ(SummaryTotal(t), kMax);
  EXPECT_EQ(Dropped(t, "overflow"), 2);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin/api-keys/3").status, 404);
  // Increments accepted before their key's deletion are dropped at the flush and counted.
  ASSERT_EQ(Http(t.http_port(), "POST", "/v1/ingest", "apikey.1.success:5|c\n").status, 202);
  ASSERT_EQ(Http(t.http_port(), "DELETE", "/admin/api-keys/1").status, 204);
  EXPECT_EQ(SummaryTotal(t), 0);
  ASSERT_EQ(Http(t.http_port(), "POST", "/admin/flush").status, 200);
  EXPECT_EQ(Dropped(t, "deleted"), 5);
  // Lines sent after the deletion are refused at ingest: never accepted, never dropped.
  r = IngestAndWait(t, "apikey.1.success:7|c\napikey.3.success:4|c\n");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"accepted":1,"ignored":0,"malformed":0,"refused":1})");
  EXPECT_EQ(ScrapeMetric(t.http_port(), "tallyd_deleted_lines_refused_total"), 1);
  EXPECT_EQ(Dropped(t, "deleted"), 5);
  EXPECT_EQ(Dropped(t, "overflow"), 2);
  // Accepted increments since start (1+2+5+4) = their share of the totals (1 for key 1 before
  // its deletion, 4 for key 3) + dropped (2 + 5).
  EXPECT_EQ(SummaryTotal(t), 4);
  // The internal flush's drops for deleted keys are counted apart.
  ASSERT_EQ(
      InternalFlush(t, R"({"keys":[{"api_key_id":1,"requests":6},{"api_key_id":3,"requests":1}]})")
          .status,
      200);
  EXPECT_EQ(Dropped(t, "deleted", "internal_flush"), 6);
  EXPECT_EQ(Dropped(t, "deleted"), 5);
  EXPECT_EQ(SummaryTotal(t), 5);
}

TEST(Exactness, AfterARestartADeletedKeysLinesAreRefusedFromItsFirstFlush) {
  TempDir dir;
  {
    TallydProcess t(dir.Sub("data"));
    ASSERT_EQ(IngestAndWait(t, "apikey.9.success:1|c\n").status, 200);
    ASSERT_EQ(Http(t.http_port(), "DELETE", "/admin/api-keys/9").status, 204);
  }
  TallydProcess t(dir.Sub("data"), {"--flush-interval-ms", "60000"});
  // The new process's table has no slot for key 9 yet: accepted, then dropped at the flush,
  // which marks the key; from then on its lines are refused at ingest.
  HttpResult r = IngestAndWait(t, "apikey.9.success:2|c\n");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"accepted":1,"ignored":0,"malformed":0,"refused":0})");
  EXPECT_EQ(Dropped(t, "deleted"), 2);
  r = IngestAndWait(t, "apikey.9.success:3|c\napikey.9.failure:1|c\n");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"accepted":0,"ignored":0,"malformed":0,"refused":2})");
  EXPECT_EQ(ScrapeMetric(t.http_port(), "tallyd_deleted_lines_refused_total"), 2);
  EXPECT_EQ(Dropped(t, "deleted"), 2);
  EXPECT_EQ(SummaryTotal(t), 0);
}

TEST(Exactness, TheInternalFlushCreatesUnknownKeysOnlyUpToMaxKeys) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), {"--max-keys", "2"});
  HttpResult r =
      InternalFlush(t, R"({"keys":[{"api_key_id":1,"requests":1},)"
                       R"({"api_key_id":2,"requests":1},{"api_key_id":3,"requests":1}]})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("--max-keys"), std::string::npos) << r.body;
  EXPECT_EQ(SummaryTotal(t), 0);
  ASSERT_EQ(InternalFlush(t, R"({"keys":[{"api_key_id":1,"requests":1},)"
                             R"({"api_key_id":2,"requests":1}]})")
                .status,
            200);
  EXPECT_EQ(InternalFlush(t, R"({"keys":[{"api_key_id":3,"requests":1}]})").status, 409);
  EXPECT_EQ(InternalFlush(t, R"({"keys":[{"api_key_id":2,"requests":5}]})").status, 200);
  EXPECT_EQ(SummaryTotal(t), 7);
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(Exactness, AnIdempotencyKeyIsBoundToTheSha256OfTheBody) {
  TempDir dir;
  const std::string body = R"({"keys":[{"api_key_id":5,"requests":2,"success_requests":1}]})";
  {
    TallydProcess t(dir.Sub("data"));
    ASSERT_EQ(InternalFlush(t, body, {{"Idempotency-Key", "sha-1"}}).status, 200);
    ASSERT_EQ(t.Stop(), 0);
  }
  auto store = persistence::Store::Open(dir.Sub("data"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::optional<persistence::IdempotentAnswer> stored = (*store)->LookupIdempotent("sha-1");
  ASSERT_TRUE(stored.has_value());
  // sha256sum of the body.
  EXPECT_EQ(stored->request_digest,
            Unhex("775d362d06fefda49fa9a21deba5ede35613642174aaa0dbb7a0c30db8f42427"));
}

// An answer stored by a build before SHA-256 carries the body's 64-bit FNV-1a hash: within
// its 24 hours a retry with the same body still replays, another body is still 422.
TEST(Exactness, AnAnswerStoredWithTheOldHashStillReplays) {
  TempDir dir;
  const std::string body = R"({"keys":[{"api_key_id":5,"requests":2,"success_requests":1}]})";
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : body) {
    h = (h ^ c) * 1099511628211ULL;
  }
  std::string legacy(8, '\0');
  for (int i = 0; i < 8; ++i) {
    legacy[i] = static_cast<char>(h >> (8 * i));
  }
  {
    auto store = persistence::Store::Open(dir.Sub("data"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    std::vector<core::KeyDelta> deltas = {{5, 1, 1}};
    persistence::IdempotentAnswer answer{"old-1", legacy, R"({"updated":1,"groups_updated":0})"};
    ASSERT_TRUE((*store)->ApplyFlush(&deltas, &answer, nullptr).ok());
  }
  TallydProcess t(dir.Sub("data"));
  HttpResult r = InternalFlush(t, body, {{"Idempotency-Key", "old-1"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"updated":1,"groups_updated":0})");
  EXPECT_EQ(r.headers["Idempotent-Replayed"], "true");
  std::string other = body;
  other.replace(other.find("\"requests\":2"), 12, "\"requests\":3");
  EXPECT_EQ(InternalFlush(t, other, {{"Idempotency-Key", "old-1"}}).status, 422);
  EXPECT_EQ(SummaryTotal(t), 2);
}

}  // namespace
}  // namespace tally::testing
