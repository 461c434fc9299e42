// systemd notifications: tallyd writes READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 to
// $NOTIFY_SOCKET; here a test-owned Unix datagram socket stands in for systemd.
#include <gtest/gtest.h>

#include "tests/support/ops_process.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

std::vector<std::string> BaseArgs(const TempDir& dir, uint16_t udp, uint16_t http) {
  return {"--data-dir",    dir.Sub("data"),
          "--udp-listen",  "127.0.0.1:" + std::to_string(udp),
          "--http-listen", "127.0.0.1:" + std::to_string(http),
          "--io-threads",  "2"};
}

TEST(OpsNotify, ReadyWatchdogStatusAndStoppingInOrder) {
  TempDir dir;
  NotifySocket notify;
  uint16_t udp = FreePort();
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = BaseArgs(dir, udp, http);
  launch.env = {{"NOTIFY_SOCKET", notify.address()}, {"WATCHDOG_USEC", "400000"}};
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));

  ASSERT_TRUE(notify.WaitFor("READY=1")) << tallyd.Log();
  // READY=1 comes once the listeners answer: the UDP socket counts right away.
  SendUdp(udp, "apikey.5.success:2|c");
  EXPECT_NE(WaitForTotal(http, 2).find("\"total_requests\":2"), std::string::npos);
  // The flusher pings at least every WATCHDOG_USEC/2.
  ASSERT_TRUE(notify.WaitFor("WATCHDOG=1", 4, 5000)) << tallyd.Log();
  EXPECT_EQ(notify.Count("READY=1"), 1);
  EXPECT_GE(notify.FirstIndex("WATCHDOG=1"), notify.FirstIndex("READY=1"));

  // STATUS= carries the keys tracked and the last flush.
  bool status_seen = false;
  for (const std::string& m : notify.messages()) {
    if (m.rfind("STATUS=", 0) == 0 && m.find("keys tracked") != std::string::npos) {
      status_seen = true;
    }
  }
  EXPECT_TRUE(status_seen);

  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  notify.Drain();
  ASSERT_GE(notify.FirstIndex("STOPPING=1"), 0);
  EXPECT_GT(notify.FirstIndex("STOPPING=1"), notify.FirstIndex("READY=1"));
  EXPECT_NE(tallyd.Log().find("systemd watchdog: 400 ms"), std::string::npos) << tallyd.Log();
}

TEST(OpsNotify, WatchdogPingsWhileTheFlusherIsIdle) {
  // An hour between flushes: only the supervisor's wake keeps the pings coming, and each
  // ping still comes from a flusher attempt.
  TempDir dir;
  NotifySocket notify(/*abstract=*/true);
  uint16_t udp = FreePort();
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = BaseArgs(dir, udp, http);
  launch.args.insert(launch.args.end(), {"--flush-interval-ms", "3600000"});
  launch.env = {{"NOTIFY_SOCKET", notify.address()}, {"WATCHDOG_USEC", "300000"}};
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  ASSERT_TRUE(notify.WaitFor("READY=1")) << tallyd.Log();
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(notify.WaitFor("WATCHDOG=1", 5, 5000)) << tallyd.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The pings came from flush attempts: the flusher really ran.
  std::optional<double> flushes = ScrapeMetric(http, "tallyd_flushes_total{result=\"ok\"}");
  ASSERT_TRUE(flushes.has_value());
  EXPECT_GE(*flushes, 4);
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST(OpsNotify, NoWatchdogPingsWithoutWatchdogUsec) {
  TempDir dir;
  NotifySocket notify;
  uint16_t udp = FreePort();
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = BaseArgs(dir, udp, http);
  launch.args.insert(launch.args.end(), {"--flush-interval-ms", "50"});
  launch.env = {{"NOTIFY_SOCKET", notify.address()}};
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  ASSERT_TRUE(notify.WaitFor("READY=1")) << tallyd.Log();
  // Many flushes happen meanwhile (50 ms apart), none pings.
  EXPECT_FALSE(notify.WaitFor("WATCHDOG=1", 1, 600));
  EXPECT_EQ(tallyd.Stop(), 0);
  notify.Drain();
  EXPECT_EQ(notify.Count("WATCHDOG=1"), 0);
  EXPECT_EQ(notify.Count("STOPPING=1"), 1);
}

TEST(OpsNotify, WithoutNotifySocketTallydRunsTheSame) {
  TempDir dir;
  uint16_t udp = FreePort();
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = BaseArgs(dir, udp, http);
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  SendUdp(udp, "apikey.1.failure:3|c");
  EXPECT_NE(WaitForTotal(http, 3).find("\"total_requests\":3"), std::string::npos);
  EXPECT_EQ(tallyd.Stop(), 0);
  EXPECT_EQ(tallyd.Log().find("READY=1 sent"), std::string::npos);
}

}  // namespace
}  // namespace tally::testing
