// The walking skeleton end to end: UDP in, summary out, and the totals survive a restart.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

boost::json::object ParseObject(const std::string& body) {
  return boost::json::parse(body).as_object();
}

TEST(Skeleton, UdpLinesReachTheSummaryAndSurviveRestart) {
  TempDir dir;
  std::string data = dir.Sub("data");
  {
    TallydProcess tallyd(data);
    // Several lines per datagram, a foreign metric and a malformed line mixed in.
    SendUdp(tallyd.udp_port(),
            "apikey.1.success:3|c\napikey.1.failure:2|c\napikey.2.success:5|c\n"
            "other.metric:1|c\nnot a line\n");
    SendUdp(tallyd.udp_port(), "apikey.2.success:4|c\napikey.2.failure:1|c");
    std::string body = WaitForTotal(tallyd.http_port(), 15);
    auto o = ParseObject(body);
    EXPECT_EQ(o.at("total_requests").as_int64(), 15) << body;
    EXPECT_EQ(o.at("success_requests").as_int64(), 12) << body;
    EXPECT_EQ(o.at("failure_requests").as_int64(), 3) << body;
    EXPECT_DOUBLE_EQ(o.at("success_rate").to_number<double>(), 0.8) << body;
    EXPECT_DOUBLE_EQ(o.at("failure_rate").to_number<double>(), 0.2) << body;
    EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  }
  {
    TallydProcess tallyd(data);
    HttpResult r = Http(tallyd.http_port(), "GET", "/admin/apikey-stats/summary");
    ASSERT_EQ(r.status, 200);
    auto o = ParseObject(r.body);
    EXPECT_EQ(o.at("total_requests").as_int64(), 15) << r.body;
    EXPECT_EQ(o.at("success_requests").as_int64(), 12) << r.body;
    EXPECT_EQ(o.at("failure_requests").as_int64(), 3) << r.body;
  }
}

TEST(Skeleton, SigtermFlushesWhatWasCountedBeforeTheFirstTick) {
  TempDir dir;
  std::string data = dir.Sub("data");
  {
    // A long interval: only the stop-time flush can persist these.
    TallydProcess tallyd(data, {"--flush-interval-ms", "3600000"});
    SendUdp(tallyd.udp_port(), "apikey.7.success:10|c\napikey.7.failure:5|c");
    // The lines are counted once /metrics shows them accepted.
    EXPECT_TRUE(WaitUntil(
        [&] {
          return ScrapeMetric(tallyd.http_port(),
                              R"(tallyd_lines_total{transport="udp",result="accepted"})") == 2;
        },
        10000));
    EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  }
  TallydProcess tallyd(data);
  auto o = ParseObject(Http(tallyd.http_port(), "GET", "/admin/apikey-stats/summary").body);
  EXPECT_EQ(o.at("total_requests").as_int64(), 15);
  EXPECT_EQ(o.at("failure_requests").as_int64(), 5);
}

}  // namespace
}  // namespace tally::testing
