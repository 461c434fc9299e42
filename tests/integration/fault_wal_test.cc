// A damaged write-ahead log against the real binary: kill -9 after flushes answered 200,
// flip one byte inside a record in the middle of the live .log, restart. By default tallyd
// refuses to start (exit 1, one line naming the file); --wal-recovery=point-in-time starts
// from the last good record, logs an error and reports it in /metrics; after that the data
// dir starts normally again.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kFlushes = 30;

int64_t Total(uint16_t port) {
  HttpResult r = Http(port, "GET", "/admin/apikey-stats/summary");
  if (r.status != 200) {
    return -1;
  }
  return boost::json::parse(r.body).as_object().at("total_requests").to_number<int64_t>();
}

// Flips a bit inside the middle flush record of the live (non-empty) .log; returns its name.
std::string DamageMiddleRecord(const std::string& data) {
  std::string log;
  for (const auto& entry : fs::directory_iterator(data)) {
    if (entry.path().extension() == ".log" && fs::file_size(entry.path()) > 0) {
      log = entry.path().string();
    }
  }
  if (log.empty()) {
    ADD_FAILURE() << "no live WAL in " << data;
    return {};
  }
  std::string bytes;
  {
    std::ifstream in(log, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // Every flush batch writes the meta key "epoch": damage the middle one's payload.
  std::vector<size_t> at;
  for (size_t p = bytes.find("epoch"); p != std::string::npos; p = bytes.find("epoch", p + 1)) {
    at.push_back(p);
  }
  EXPECT_GE(at.size(), size_t{kFlushes});
  if (at.empty()) {
    return {};
  }
  bytes[at[at.size() / 2] + 2] ^= 0x04;
  std::ofstream(log, std::ios::binary | std::ios::trunc) << bytes;
  return fs::path(log).filename().string();
}

TEST(FaultWal, DamagedWalRefusesToStartUnlessPointInTimeRecoveryIsAskedFor) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  // A long interval: each wait=flush request below is its own flush.
  const std::vector<std::string> args = {"--flush-interval-ms", "60000"};
  {
    TallydProcess tallyd(data, args);
    for (int i = 1; i <= kFlushes; ++i) {
      HttpResult r = Http(tallyd.http_port(), "POST", "/v1/ingest?wait=flush",
                          "apikey." + std::to_string(i) + ".success:1|c");
      ASSERT_EQ(r.status, 200) << r.body;
    }
    ASSERT_EQ(Total(tallyd.http_port()), kFlushes);
    tallyd.Kill();
  }
  const std::string log = DamageMiddleRecord(data);
  ASSERT_FALSE(log.empty());

  // Strict (the default): exit 1 with one line naming the damage and the way out.
  std::string out;
  bool started = true;
  try {
    TallydProcess refused(data, args);
  } catch (const std::runtime_error& e) {
    started = false;
    out = e.what();
  }
  ASSERT_FALSE(started) << "tallyd started on a damaged WAL";
  EXPECT_NE(out.find("write-ahead log damaged"), std::string::npos) << out;
  EXPECT_NE(out.find(log), std::string::npos) << out;
  EXPECT_NE(out.find("--wal-recovery=point-in-time"), std::string::npos) << out;
  std::string run_out;
  EXPECT_EQ(RunTallyd({"--data-dir", data, "--udp-listen", "off", "--http-listen",
                       "127.0.0.1:" + std::to_string(FreePort())},
                      &run_out),
            1)
      << run_out;

  // The opt-in: starts at the last good record, says so in the log and in /metrics.
  int64_t recovered = 0;
  {
    TallydProcess tallyd(data, {"--flush-interval-ms", "60000", "--wal-recovery", "point-in-time"});
    recovered = Total(tallyd.http_port());
    EXPECT_GT(recovered, 0);
    EXPECT_LT(recovered, kFlushes);
    EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_store_wal_damage_recovered"), 1.0);
    EXPECT_NE(tallyd.Log().find("started past a damaged write-ahead log"), std::string::npos)
        << tallyd.Log();
    HttpResult r =
        Http(tallyd.http_port(), "POST", "/v1/ingest?wait=flush", "apikey.1.success:5|c");
    ASSERT_EQ(r.status, 200) << r.body;
    tallyd.Kill();  // a crash again: the damaged log must not come back
  }
  TallydProcess again(data, args);
  EXPECT_EQ(Total(again.http_port()), recovered + 5);
  EXPECT_EQ(ScrapeMetric(again.http_port(), "tallyd_store_wal_damage_recovered"), 0.0);
  EXPECT_EQ(ScrapeMetric(again.http_port(), "tallyd_store_background_errors_total"), 0.0);
  EXPECT_EQ(ScrapeMetric(again.http_port(), "tallyd_store_write_stalls_total{state=\"stopped\"}"),
            0.0);
  EXPECT_EQ(ScrapeMetric(again.http_port(), "tallyd_store_write_stalled"), 0.0);
  EXPECT_EQ(again.Stop(), 0) << again.Log();
}

}  // namespace
}  // namespace tally::testing
