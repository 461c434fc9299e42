// Issue 15 against the real binary: the window queries (summary with since, the series of a
// key, a group and the whole, top), their 400s, and the windows after a restart and kill -9.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResult Get(const TallydProcess& t, const std::string& target) {
  return Http(t.http_port(), "GET", target, {}, kAdmin);
}

json::object GetOk(const TallydProcess& t, const std::string& target) {
  HttpResult r = Get(t, target);
  EXPECT_EQ(r.status, 200) << target << ": " << r.body;
  return r.status == 200 ? json::parse(r.body).as_object() : json::object();
}

// The sum of a series' points, and a check that they are one per step from since to until.
int64_t SeriesField(const json::object& s, const char* field) {
  const int64_t since = s.at("since").as_int64(), until = s.at("until").as_int64();
  const int64_t step = s.at("step").as_int64();
  const json::array& points = s.at("points").as_array();
  EXPECT_EQ(static_cast<int64_t>(points.size()), (until - since) / step);
  int64_t sum = 0, t = since;
  for (const json::value& p : points) {
    EXPECT_EQ(p.at("t").as_int64(), t);
    t += step;
    sum += p.at(field).as_int64();
  }
  return sum;
}

// The 400 of `target` names `name` in its error.
void ExpectBad(const TallydProcess& t, const std::string& target, const std::string& name) {
  HttpResult r = Get(t, target);
  EXPECT_EQ(r.status, 400) << target << ": " << r.body;
  EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(name), std::string::npos) << target << ": " << r.body;
}

void CheckWindows(const TallydProcess& t, int64_t since) {
  const std::string s = std::to_string(since);
  json::object sum = GetOk(t, "/admin/apikey-stats/summary?since=" + s);
  EXPECT_EQ(sum.at("total_requests").as_int64(), 6);
  EXPECT_EQ(sum.at("failure_requests").as_int64(), 2);
  EXPECT_LE(sum.at("since").as_int64(), since);
  EXPECT_GE(sum.at("until").as_int64(), UnixNow() - 60);
  EXPECT_EQ(
      GetOk(t, "/admin/apikey-stats/summary?group_id=1&since=" + s).at("total_requests").as_int64(),
      5);
  json::object key = GetOk(t, "/admin/api-keys/1/stats?step=60&since=" + s);
  EXPECT_EQ(SeriesField(key, "total_requests"), 5);
  EXPECT_EQ(SeriesField(key, "failure_requests"), 2);
  json::object group = GetOk(t, "/admin/provider-groups/1/stats?step=3600&since=" + s);
  EXPECT_EQ(SeriesField(group, "total_requests"), 5);
  json::object whole = GetOk(t, "/admin/apikey-stats/series?step=86400&since=" + s);
  EXPECT_EQ(SeriesField(whole, "total_requests"), 6);

  json::object top = GetOk(t, "/admin/apikey-stats/top?since=" + s);
  const json::array& keys = top.at("keys").as_array();
  ASSERT_EQ(keys.size(), 2u) << json::serialize(top);
  EXPECT_EQ(keys[0].at("id").as_int64(), 1);
  EXPECT_EQ(keys[0].at("group_id").as_int64(), 1);
  EXPECT_EQ(keys[0].at("status").as_string(), "active");
  EXPECT_EQ(keys[0].at("failure_requests").as_int64(), 2);
  EXPECT_EQ(keys[1].at("id").as_int64(), 2);
  top = GetOk(t, "/admin/apikey-stats/top?by=requests&limit=1&group_id=0&since=" + s);
  ASSERT_EQ(top.at("keys").as_array().size(), 1u);
  EXPECT_EQ(top.at("keys").as_array()[0].at("id").as_int64(), 2);
  top = GetOk(t, "/admin/apikey-stats/top?min_requests=2&by=failure_rate&since=" + s);
  ASSERT_EQ(top.at("keys").as_array().size(), 1u);
  EXPECT_EQ(top.at("keys").as_array()[0].at("id").as_int64(), 1);
}

TEST(ApiWindows, QueriesAnswerFromTheBucketsAndRefuseBadParameters) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens({"--retention-minute", "1h"}));
  ASSERT_EQ(Http(t.http_port(), "POST", "/admin/provider-groups",
                 R"({"name":"g","type":"t","base_url":"u"})", kAdmin)
                .status,
            201);
  ASSERT_EQ(
      Http(t.http_port(), "PUT", "/admin/api-keys/1", R"({"api_key":"sk","group_id":1})", kAdmin)
          .status,
      201);
  const int64_t since = UnixNow() - 300;
  for (const char* line :
       {"apikey.1.success:3|c", "apikey.1.failure:2|c", "apikey.2.success:1|c"}) {
    SendUdp(t.udp_port(), line);
  }
  ASSERT_NE(WaitForTotal(t.http_port(), 6, 10000, kAdmin).find("\"total_requests\":6"),
            std::string::npos);
  ASSERT_EQ(Http(t.http_port(), "POST", "/admin/flush", {}, kAdmin).status, 200);
  CheckWindows(t, since);
  EXPECT_GT(ScrapeMetric(t.http_port(), "tallyd_window_buckets_written_total").value_or(0), 0);
  EXPECT_TRUE(ScrapeMetric(t.http_port(), "tallyd_window_pending_keys").has_value());
  // Without since: exactly the lifetime summary, no since/until.
  HttpResult lifetime = Get(t, "/admin/apikey-stats/summary");
  EXPECT_EQ(lifetime.status, 200);
  EXPECT_EQ(lifetime.body.find("since"), std::string::npos) << lifetime.body;

  const std::string s = std::to_string(since);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin/apikey-stats/series?since=" + s).status, 401);
  ExpectBad(t, "/admin/apikey-stats/series", "since");
  ExpectBad(t, "/admin/apikey-stats/series?since=yesterday", "since");
  ExpectBad(t, "/admin/apikey-stats/series?since=2026-02-30T00:00:00Z", "since");
  ExpectBad(t, "/admin/apikey-stats/series?since=" + std::to_string(UnixNow() + 3600), "since");
  ExpectBad(t, "/admin/apikey-stats/series?since=" + s + "&until=" + s, "until");
  ExpectBad(t, "/admin/apikey-stats/series?since=" + s + "&step=61", "step");
  ExpectBad(t, "/admin/apikey-stats/summary?until=" + s, "until");
  ExpectBad(t, "/admin/apikey-stats/summary?since=" + s + "&group_id=x", "group_id");
  // 10,000 points at most.
  ExpectBad(
      t, "/admin/apikey-stats/series?step=3600&since=" + std::to_string(UnixNow() - 10001 * 3600),
      "10000");
  // Minutes are kept an hour here: a minute series from two hours ago says how far back.
  ExpectBad(t, "/admin/api-keys/1/stats?step=60&since=" + std::to_string(UnixNow() - 7200),
            "reaches back to");
  ExpectBad(t, "/admin/apikey-stats/top?by=latency&since=" + s, "by");
  ExpectBad(t, "/admin/apikey-stats/top?limit=0&since=" + s, "limit");
  ExpectBad(t, "/admin/apikey-stats/top?limit=1001&since=" + s, "limit");
  ExpectBad(t, "/admin/apikey-stats/top?min_requests=-1&since=" + s, "min_requests");

  // Durable: after a clean restart and after kill -9 (the open minute comes back from the
  // journal, rolled-up minutes from their buckets).
  t.Stop();
  {
    TallydProcess again(dir.Sub("data"), Tokens({"--retention-minute", "1h"}));
    CheckWindows(again, since);
    again.Kill();
  }
  TallydProcess third(dir.Sub("data"), Tokens({"--retention-minute", "1h"}));
  CheckWindows(third, since);
}

TEST(ApiWindows, BadRetentionOptionsExitTwoNamingTheOption) {
  std::string out;
  EXPECT_EQ(RunTallyd({"--retention-minute", "0h"}, &out), 2);
  EXPECT_NE(out.find("--retention-minute"), std::string::npos) << out;
  EXPECT_EQ(RunTallyd({"--retention-hour", "30m"}, &out), 2);
  EXPECT_NE(out.find("--retention-hour"), std::string::npos) << out;
  EXPECT_EQ(RunTallyd({"--retention-day", "-1"}, &out), 2);
  EXPECT_NE(out.find("--retention-day"), std::string::npos) << out;
}

}  // namespace
}  // namespace tally::testing
