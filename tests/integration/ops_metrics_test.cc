// /metrics after known traffic: names, types, units and values in the Prometheus text
// format 0.0.4.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "tests/support/ops_process.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, double> samples;     // series (name{labels}) -> value
  std::vector<std::string> errors;
};

// Parses the text format strictly enough to catch malformed output.
Exposition Parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  std::set<std::string> helped;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      if (e.types.count(name) != 0) {
        e.errors.push_back("TYPE twice for " + name);
      }
      e.types[name] = type;
      continue;
    }
    size_t space = line.rfind(' ');
    if (line.empty() || space == std::string::npos) {
      e.errors.push_back("bad line: " + line);
      continue;
    }
    std::string series = line.substr(0, space);
    try {
      e.samples[series] = std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
      e.errors.push_back("bad value: " + line);
    }
    std::string name = series.substr(0, series.find('{'));
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          e.types.count(name.substr(0, name.size() - s.size())) != 0) {
        family = name.substr(0, name.size() - s.size());
      }
    }
    if (e.types.count(family) == 0) {
      e.errors.push_back("sample before its TYPE: " + line);
    }
    if (helped.count(family) == 0) {
      e.errors.push_back("no HELP for " + family);
    }
  }
  return e;
}

TEST(OpsMetrics, ScrapeAfterKnownTraffic) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "100", "--max-keys", "1000"});
  uint16_t http = tallyd.http_port();
  // Datagram 1: 2 accepted, 1 ignored (a gauge), 1 malformed, 1 refused (sample rate 0.5).
  SendUdp(tallyd.udp_port(),
          "apikey.1.success:2|c\napikey.2.failure:1|c\nother.metric:1|g\nnot a line\n"
          "apikey.3.success:1|c|@0.5");
  // Datagram 2: 1 accepted, and the DogStatsD tag form.
  SendUdp(tallyd.udp_port(), "apikey.requests:4|c|#key:3,outcome:success");
  // HTTP: 1 accepted; then a 404 and a 401-free summary read.
  ASSERT_EQ(Http(http, "POST", "/v1/ingest", "apikey.4.success:5|c").status, 202);
  ASSERT_EQ(Http(http, "GET", "/no/such/path").status, 404);
  ASSERT_NE(WaitForTotal(http, 12).find("\"total_requests\":12"), std::string::npos);
  // A flush commits after the traffic (its epoch answered).
  ASSERT_EQ(Http(http, "POST", "/admin/flush").status, 200);

  HttpResult r = Http(http, "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8");
  Exposition e = Parse(r.body);
  EXPECT_TRUE(e.errors.empty()) << e.errors.front() << "\n" << r.body;

  // Naming rules: the tallyd_ prefix, counters end in _total, and no per-key labels.
  for (const auto& [family, type] : e.types) {
    EXPECT_EQ(family.rfind("tallyd_", 0), 0u) << family;
    if (type == "counter") {
      EXPECT_EQ(family.substr(family.size() - 6), "_total") << family;
    } else {
      EXPECT_NE(family.substr(family.size() - 6), "_total") << family;
      EXPECT_TRUE(type == "gauge" || type == "histogram") << family << " " << type;
    }
  }
  for (const auto& [series, value] : e.samples) {
    EXPECT_EQ(series.find("key"), series.find("keys")) << series;  // no key= label
  }
  const std::map<std::string, std::string> expected_types = {
      {"tallyd_lines_total", "counter"},
      {"tallyd_datagrams_total", "counter"},
      {"tallyd_http_requests_total", "counter"},
      {"tallyd_udp_kernel_drops_total", "counter"},
      {"tallyd_keys", "gauge"},
      {"tallyd_keys_refused_total", "counter"},
      {"tallyd_flushes_total", "counter"},
      {"tallyd_flush_duration_seconds", "histogram"},
      {"tallyd_last_flush_timestamp_seconds", "gauge"},
      {"tallyd_flush_pending_keys", "gauge"},
      {"tallyd_flush_epoch", "gauge"},
      {"tallyd_db_size_bytes", "gauge"},
  };
  for (const auto& [family, type] : expected_types) {
    EXPECT_EQ(e.types[family], type) << family;
  }

  auto v = [&](const std::string& series) {
    auto it = e.samples.find(series);
    EXPECT_NE(it, e.samples.end()) << series;
    return it == e.samples.end() ? -1.0 : it->second;
  };
  EXPECT_EQ(v(R"(tallyd_lines_total{transport="udp",result="accepted"})"), 3);
  EXPECT_EQ(v(R"(tallyd_lines_total{transport="udp",result="ignored"})"), 1);
  EXPECT_EQ(v(R"(tallyd_lines_total{transport="udp",result="malformed"})"), 1);
  EXPECT_EQ(v(R"(tallyd_lines_total{transport="udp",result="refused"})"), 1);
  EXPECT_EQ(v(R"(tallyd_lines_total{transport="http",result="accepted"})"), 1);
  EXPECT_EQ(v(R"(tallyd_lines_total{transport="unix",result="accepted"})"), 0);
  EXPECT_EQ(v(R"(tallyd_datagrams_total{transport="udp"})"), 2);
  EXPECT_EQ(v(R"(tallyd_datagrams_total{transport="unix"})"), 0);
  EXPECT_EQ(v(R"(tallyd_http_requests_total{code="202"})"), 1);
  EXPECT_EQ(v(R"(tallyd_http_requests_total{code="404"})"), 1);
  EXPECT_GE(v(R"(tallyd_http_requests_total{code="200"})"), 1);  // the summary polls
  EXPECT_EQ(v("tallyd_udp_kernel_drops_total"), 0);
  EXPECT_EQ(v("tallyd_keys"), 4);
  EXPECT_EQ(v("tallyd_keys_max"), 1000);
  EXPECT_EQ(v("tallyd_keys_refused_total"), 0);
  EXPECT_EQ(v("tallyd_flush_pending_keys"), 0);
  EXPECT_EQ(v(R"(tallyd_flushes_total{result="error"})"), 0);
  double ok = v(R"(tallyd_flushes_total{result="ok"})");
  EXPECT_GE(ok, 2);
  EXPECT_EQ(v("tallyd_flush_interval_seconds"), 0.1);
  EXPECT_GT(v("tallyd_db_size_bytes"), 0);
  EXPECT_GE(v("tallyd_flush_epoch"), 1);  // the traffic above was written
  double started = v("tallyd_start_time_seconds");
  double last_flush = v("tallyd_last_flush_timestamp_seconds");
  EXPECT_GT(started, 1.7e9);
  EXPECT_GE(last_flush, started);
  EXPECT_LT(last_flush, started + 60);

  // The histogram: cumulative buckets, +Inf equal to the count, one observation per attempt
  // (the scrape reads the attempt count first, so the histogram may be one ahead).
  double count = v("tallyd_flush_duration_seconds_count");
  EXPECT_GE(count, ok);
  EXPECT_LE(count, ok + 1);
  EXPECT_EQ(v(R"(tallyd_flush_duration_seconds_bucket{le="+Inf"})"), count);
  double previous = 0;
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    double b = v(std::string("tallyd_flush_duration_seconds_bucket{le=\"") + le + "\"}");
    EXPECT_GE(b, previous) << le;
    previous = b;
  }
  EXPECT_GE(v("tallyd_flush_duration_seconds_sum"), 0);
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST(OpsMetrics, KeysPastTheMaximumAreRefusedAndCounted) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--max-keys", "3"});
  SendUdp(tallyd.udp_port(),
          "apikey.1.success:1|c\napikey.2.success:1|c\napikey.3.success:1|c\n"
          "apikey.4.success:1|c\napikey.5.failure:2|c\napikey.1.success:1|c");
  ASSERT_NE(WaitForTotal(tallyd.http_port(), 4).find("\"total_requests\":4"), std::string::npos);
  EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_keys"), 3);
  EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_keys_refused_total"), 2);
  EXPECT_EQ(
      ScrapeMetric(tallyd.http_port(), R"(tallyd_lines_total{transport="udp",result="refused"})"),
      2);
  EXPECT_EQ(tallyd.Stop(), 0);
  // Near the maximum: warned once in the log.
  EXPECT_EQ(CountOf(tallyd.Log(), "of --max-keys 3"), 1) << tallyd.Log();
}

// Per-group increments (the group failure-rate alert's input) and the process's own use.
TEST(OpsMetrics, GroupIncrementsAndProcessResources) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  const uint16_t http = tallyd.http_port();
  ASSERT_EQ(Http(http, "POST", "/admin/provider-groups",
                 R"({"ID":3,"name":"g","type":"openai","base_url":"u"})")
                .status,
            201);
  ASSERT_EQ(
      Http(http, "POST", "/admin/api-keys", R"({"ID":10,"group_id":3,"api_key":"sk"})").status,
      201);
  ASSERT_EQ(Http(http, "POST", "/v1/ingest?wait=flush",
                 "apikey.10.success:5|c\napikey.10.failure:2|c\napikey.11.failure:1|c\n")
                .status,
            200);
  // Moving the key later takes nothing back: the series only grow.
  ASSERT_EQ(Http(http, "PUT", "/admin/api-keys/10", R"({"group_id":0,"api_key":"sk"})").status,
            200);
  auto group = [&](const char* id, const char* outcome) {
    return ScrapeMetric(http, std::string("tallyd_group_increments_total{group_id=\"") + id +
                                  "\",outcome=\"" + outcome + "\"}");
  };
  EXPECT_EQ(group("3", "success"), 5);
  EXPECT_EQ(group("3", "failure"), 2);
  EXPECT_EQ(group("0", "success"), 0);
  EXPECT_EQ(group("0", "failure"), 1);
  EXPECT_GT(ScrapeMetric(http, "tallyd_process_resident_memory_bytes").value_or(0), 1 << 20);
  EXPECT_GT(ScrapeMetric(http, "tallyd_process_open_fds").value_or(0), 3);
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST(OpsMetrics, RepeatedMalformedLinesAreSummarizedNotLoggedPerLine) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "50"});
  for (int i = 0; i < 100; ++i) {
    SendUdp(tallyd.udp_port(), "garbage line " + std::to_string(i));
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ScrapeMetric(tallyd.http_port(),
                            R"(tallyd_lines_total{transport="udp",result="malformed"})") == 100;
      },
      10000, 20));
  // Several flushes after the lines, each of which could have logged them.
  auto flushes = [&] {
    return ScrapeMetric(tallyd.http_port(), R"(tallyd_flushes_total{result="ok"})").value_or(0);
  };
  const double flushes_before = flushes();
  ASSERT_TRUE(WaitUntil([&] { return flushes() >= flushes_before + 3; }, 10000, 20));
  EXPECT_EQ(tallyd.Stop(), 0);
  std::string log = tallyd.Log();
  // At most one summary line per minute, carrying the count, plus one at the stop for what
  // the minute held back; together they account for every line. Never the lines themselves.
  const std::string marker = " malformed lines since the last report";
  int lines = 0;
  int64_t reported = 0;
  for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
    size_t start = log.rfind(' ', at - 1) + 1;
    reported += std::stoll(log.substr(start, at - start));
    ++lines;
  }
  EXPECT_GE(lines, 1) << log;
  EXPECT_LE(lines, 2) << log;
  EXPECT_EQ(reported, 100) << log;
  EXPECT_EQ(log.find("garbage line"), std::string::npos) << log;
}

}  // namespace
}  // namespace tally::testing
