// Fault test: key exhaustion. A flood of distinct new key ids, far past --max-keys.
//
// Guarantees checked: memory stays bounded (VmRSS of the tallyd process); every line for a
// key beyond the bound is refused and counted as refused, over HTTP (exact, from the
// answers) and in tallyd_lines_total; keys that already had a slot keep counting exactly.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "tests/support/sanitized.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

int64_t Total(uint16_t http_port) {
  HttpResult r = Http(http_port, "GET", "/admin/apikey-stats/summary");
  return r.status == 200 ? boost::json::parse(r.body).at("total_requests").to_number<int64_t>()
                         : -1;
}

TEST(FaultKeys, FloodOfNewKeysIsRefusedAndCountedWithMemoryBounded) {
  constexpr int kMaxKeys = 1000;
  constexpr int kExisting = 10;
  constexpr int64_t kFloodKeys = 400'000;
  constexpr int kLinesPerRequest = 50'000;
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"),
                       {"--max-keys", std::to_string(kMaxKeys), "--flush-interval-ms", "100"});
  const uint16_t http = tallyd.http_port();

  // Keys 1..10 exist first, with 3 requests each.
  std::string existing;
  for (int k = 1; k <= kExisting; ++k) {
    existing += "apikey." + std::to_string(k) + ".success:2|c\napikey." + std::to_string(k) +
                ".failure:1|c\n";
  }
  RawConnection conn(http, 30000);
  // Answered 200 once flushed: the baseline is taken after that flush.
  ASSERT_EQ(conn.Request("POST", "/v1/ingest?wait=flush", existing).status, 200);
  const int64_t rss_before = ProcessRssKb(tallyd.pid());
  ASSERT_GT(rss_before, 0);

  // The flood: 400,000 distinct new ids, one line each, in 4 MiB-limited bodies.
  int64_t accepted = 0;
  int64_t refused = 0;
  int64_t rss_peak = rss_before;
  for (int64_t first = 0; first < kFloodKeys; first += kLinesPerRequest) {
    std::string body;
    for (int64_t i = first; i < first + kLinesPerRequest; ++i) {
      body += "apikey." + std::to_string(1'000'000'000 + i) + ".success:1|c\n";
    }
    HttpResult r = conn.Request("POST", "/v1/ingest", body);
    ASSERT_EQ(r.status, 202) << r.body;
    auto o = boost::json::parse(r.body).as_object();
    accepted += o.at("accepted").to_number<int64_t>();
    refused += o.at("refused").to_number<int64_t>();
    rss_peak = std::max(rss_peak, ProcessRssKb(tallyd.pid()));
  }
  // Exactly the free slots were taken; everything else refused, nothing dropped silently.
  EXPECT_EQ(accepted, kMaxKeys - kExisting);
  EXPECT_EQ(refused, kFloodKeys - (kMaxKeys - kExisting));
  std::optional<double> refused_metric =
      ScrapeMetric(http, R"(tallyd_lines_total{transport="http",result="refused"})");
  ASSERT_TRUE(refused_metric.has_value());
  EXPECT_EQ(*refused_metric, static_cast<double>(refused));

  // The existing keys still count exactly, and so do the keys that got the last slots.
  std::string more;
  for (int k = 1; k <= kExisting; ++k) {
    more += "apikey." + std::to_string(k) + ".success:5|c\n";
  }
  HttpResult r = conn.Request("POST", "/v1/ingest?wait=flush", more);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(boost::json::parse(r.body).at("accepted").to_number<int64_t>(), kExisting);
  const int64_t want = kExisting * 3 + accepted + kExisting * 5;
  EXPECT_EQ(Total(http), want);

  // Memory: the flood may cost the bounded table and store entries for 1,000 keys, and the
  // request buffers; an unbounded table or store would need tens of MB for 400,000 keys.
  const int64_t rss_after = ProcessRssKb(tallyd.pid());
  std::cerr << "VmRSS before " << rss_before << " KiB, peak " << rss_peak << " KiB, after "
            << rss_after << " KiB\n";
  if (!kSanitized) {
    EXPECT_LT(rss_after - rss_before, 24 * 1024) << "RSS grew with refused keys";
  }

  // A restart keeps exactly what was counted.
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  TallydProcess again(dir.Sub("data"), {"--max-keys", std::to_string(kMaxKeys)});
  EXPECT_EQ(Total(again.http_port()), want);
}

}  // namespace
}  // namespace tally::testing
