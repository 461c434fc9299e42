// A flush that takes longer than --flush-interval-ms says so in /metrics
// (tallyd_flush_overruns_total, tallyd_flush_duration_seconds), the next flush starts at once
// and catches up (nothing stays pending), and the totals stay exact.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

// `n` lines, one success each, for the new keys first..first+n-1.
std::string NewKeyLines(uint64_t first, uint64_t n) {
  std::string body;
  for (uint64_t k = first; k < first + n; ++k) {
    body += "apikey.requests:1|c|#key:" + std::to_string(k) + ",outcome:success\n";
  }
  return body;
}

TEST(OpsFlushOverrun, AFlushLongerThanTheIntervalIsReportedAndTheNextCatchesUp) {
  TempDir dir;
  // 10 ms, the shortest interval: a flush of tens of thousands of new keys takes longer.
  TallydProcess t(dir.Sub("data"), {"--flush-interval-ms", "10"});
  ASSERT_EQ(ScrapeMetric(t.http_port(), "tallyd_flush_overruns_total"), 0);
  constexpr uint64_t kPerRequest = 50'000;
  constexpr uint64_t kRequests = 4;
  for (uint64_t r = 0; r < kRequests; ++r) {
    HttpResult ingest =
        Http(t.http_port(), "POST", "/v1/ingest", NewKeyLines(1 + r * kPerRequest, kPerRequest));
    ASSERT_EQ(ingest.status, 202) << ingest.body;
  }
  // Every line before this one is durable when it is answered.
  HttpResult last = Http(t.http_port(), "POST", "/v1/ingest?wait=flush", NewKeyLines(1, 1));
  ASSERT_EQ(last.status, 200) << last.body;

  EXPECT_GT(ScrapeMetric(t.http_port(), "tallyd_flush_overruns_total").value_or(0), 0);
  // The duration histogram holds the overrunning flushes: some took more than 10 ms.
  const double flushes =
      ScrapeMetric(t.http_port(), "tallyd_flush_duration_seconds_count").value_or(0);
  const double within_10ms =
      ScrapeMetric(t.http_port(), R"(tallyd_flush_duration_seconds_bucket{le="0.01"})")
          .value_or(flushes);
  EXPECT_LT(within_10ms, flushes);
  EXPECT_TRUE(WaitUntil(
      [&] { return ScrapeMetric(t.http_port(), "tallyd_flush_pending_keys") == 0; }, 10'000));

  HttpResult summary = Http(t.http_port(), "GET", "/admin/apikey-stats/summary");
  ASSERT_EQ(summary.status, 200) << summary.body;
  json::object s = json::parse(summary.body).as_object();
  EXPECT_EQ(s.at("total_requests").to_number<int64_t>(), kPerRequest * kRequests + 1);
  EXPECT_EQ(s.at("success_requests").to_number<int64_t>(), kPerRequest * kRequests + 1);
  // And after a restart, from disk.
  ASSERT_EQ(t.Stop(), 0);
  TallydProcess again(dir.Sub("data"));
  summary = Http(again.http_port(), "GET", "/admin/apikey-stats/summary");
  ASSERT_EQ(summary.status, 200) << summary.body;
  EXPECT_EQ(json::parse(summary.body).as_object().at("total_requests").to_number<int64_t>(),
            kPerRequest * kRequests + 1);
}

}  // namespace
}  // namespace tally::testing
