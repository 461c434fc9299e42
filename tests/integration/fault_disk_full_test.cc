// Fault test: the data directory's filesystem fills up under load, then frees up.
//
// The data directory sits on a small tmpfs mounted for the test (root only; the test is
// skipped, saying why, where mounting is not permitted). A filler file takes every free
// byte while UDP and HTTP load runs.
// Guarantees checked: tallyd does not crash and keeps taking lines; /readyz turns 503 while
// flushes fail; a ?wait=flush request is not answered 200 while nothing can commit; once
// the space is freed, /readyz turns 200 again and the totals are exact (every line tallyd
// accepted, per its answers and tallyd_lines_total), also after a restart.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

using Clock = std::chrono::steady_clock;

class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    std::string opts = "size=" + size + ",mode=0700";
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (mounted_) {
      umount2(dir_.c_str(), MNT_DETACH);
    }
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes until the filesystem is full; returns the bytes written.
int64_t Fill(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    return -1;
  }
  std::string chunk(1 << 16, 'f');
  int64_t total = 0;
  while (true) {
    ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n <= 0) {
      break;
    }
    total += n;
  }
  fsync(fd);
  close(fd);
  return total;
}

int Ready(uint16_t port) { return Http(port, "GET", "/readyz").status; }

// Polls /readyz until it answers `want` or `seconds` pass.
bool WaitReady(uint16_t port, int want, int seconds) {
  return WaitUntil([&] { return Ready(port) == want; }, seconds * 1000, 50);
}

int64_t Total(uint16_t http_port) {
  HttpResult r = Http(http_port, "GET", "/admin/apikey-stats/summary");
  return r.status == 200 ? boost::json::parse(r.body).at("total_requests").to_number<int64_t>()
                         : -1;
}

TEST(FaultDiskFull, FullDataFilesystemTurnsReadyzAndLosesNothing) {
  TempDir dir;
  const std::string mnt = dir.Sub("mnt");
  TmpfsMount fs(mnt, "48m");
  if (!fs.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << fs.error()
                 << "); needs root with CAP_SYS_ADMIN";
  }
  const std::string data = mnt + "/data";
  TallydProcess tallyd(data, {"--flush-interval-ms", "100"});
  const uint16_t http = tallyd.http_port();
  const uint16_t udp = tallyd.udp_port();
  ASSERT_TRUE(WaitReady(http, 200, 10)) << tallyd.Log();

  // Load: HTTP ingest (its answers say exactly what was accepted) and UDP alongside.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> http_accepted{0};
  std::atomic<int> http_errors{0};
  std::thread http_load([&] {
    RawConnection conn(http, 5000);
    uint64_t i = 0;
    while (!stop.load()) {
      std::string body;
      for (int j = 0; j < 20; ++j, ++i) {
        body += "apikey." + std::to_string(1 + i % 500) + ".success:1|c\n";
      }
      HttpResult r = conn.Request("POST", "/v1/ingest", body);
      if (r.status == 202) {
        http_accepted += boost::json::parse(r.body).at("accepted").to_number<int64_t>();
      } else {
        ++http_errors;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // pacing the load
    }
  });
  std::thread udp_load([&] {
    uint64_t i = 0;
    while (!stop.load()) {
      std::string d;
      for (int j = 0; j < 20; ++j, ++i) {
        d += "apikey." + std::to_string(1000 + i % 500) + ".failure:1|c\n";
      }
      SendUdp(udp, d);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // pacing the load
    }
  });
  // Both loads under way (counted) before the disk fills.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return http_accepted.load() > 0 &&
               ScrapeMetric(http, R"(tallyd_lines_total{transport="udp",result="accepted"})")
                       .value_or(0) > 0;
      },
      10000));

  // Fill the filesystem.
  ASSERT_GE(Fill(mnt + "/filler"), 0);
  EXPECT_TRUE(WaitReady(http, 503, 15)) << "/readyz stayed 200 with the disk full";
  // A wait=flush request now cannot be answered 200 until a flush commits.
  auto waiter = std::async(std::launch::async, [&] {
    RawConnection c(http, 60000);
    HttpResult r = c.Request("POST", "/v1/ingest?wait=flush", "apikey.7777.success:1|c");
    return std::make_pair(r.status, Clock::now());
  });
  // Not synchronisation: time passes with the disk full, during which wait=flush must not answer.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200) << "tallyd died with the disk full";
  EXPECT_EQ(Ready(http), 503);
  EXPECT_NE(waiter.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "wait=flush answered while no flush could commit";

  // Free the space: flushes commit again, and nothing was lost meanwhile.
  const auto freed_at = Clock::now();
  std::filesystem::remove(mnt + "/filler");
  EXPECT_TRUE(WaitReady(http, 200, 20)) << "/readyz stayed 503 after the space was freed\n"
                                        << tallyd.Log();
  auto [wait_status, wait_time] = waiter.get();
  EXPECT_EQ(wait_status, 200);
  EXPECT_GE(wait_time, freed_at);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // load after the recovery
  stop = true;
  http_load.join();
  udp_load.join();
  EXPECT_EQ(http_errors.load(), 0);

  // Exact: every accepted line, HTTP (from its answers) plus UDP (from the metric).
  // Every datagram sent has been read by the receivers (their queue is empty), and a
  // flush after reading the UDP metric commits totals equal to everything accepted. A batch
  // still being counted shows as a total above the metric's count, so it is read again.
  int64_t want = -1;
  double udp_accepted = 0;
  EXPECT_TRUE(WaitUntil(
      [&] {
        if (ReceiveQueueBytes("udp", udp) != 0) {
          return false;
        }
        udp_accepted =
            ScrapeMetric(http, R"(tallyd_lines_total{transport="udp",result="accepted"})")
                .value_or(-1);
        want = http_accepted.load() + static_cast<int64_t>(udp_accepted) +
               (wait_status == 200 ? 1 : 0);
        return udp_accepted > 0 && Http(http, "POST", "/admin/flush").status == 200 &&
               Total(http) == want;
      },
      10000, 50))
      << "total " << Total(http) << ", accepted " << want;
  ASSERT_GT(http_accepted.load(), 0);
  ASSERT_GT(udp_accepted, 0);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  TallydProcess again(data);
  EXPECT_EQ(Total(again.http_port()), want);
}

// A stop while the disk is full: a request waiting for a flush is answered 503 at once (not
// held until the 10 s in-flight deadline cuts it without an answer), and the stop goes on in
// order: the API pool's work ends before the flusher and the store, the final flush fails
// and says so (exit 1), nothing crashes (the sanitizer stages run this too).
TEST(FaultDiskFull, AStopAnswersAWaitingRequestAtOnceAndStopsInOrder) {
  TempDir dir;
  const std::string mnt = dir.Sub("mnt");
  TmpfsMount fs(mnt, "48m");
  if (!fs.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << fs.error()
                 << "); needs root with CAP_SYS_ADMIN";
  }
  TallydProcess tallyd(mnt + "/data", {"--flush-interval-ms", "100"});
  const uint16_t http = tallyd.http_port();
  ASSERT_TRUE(WaitReady(http, 200, 10)) << tallyd.Log();
  ASSERT_GE(Fill(mnt + "/filler"), 0);
  // Enough new keys that a flush needs pages the full filesystem no longer has.
  std::string body;
  for (int k = 1; k <= 2000; ++k) {
    body += "apikey." + std::to_string(k) + ".success:1|c\n";
  }
  ASSERT_TRUE(WaitUntil(
      [&] { return Http(http, "POST", "/v1/ingest", body).status == 202 && Ready(http) == 503; },
      15000, 100))
      << "/readyz stayed 200 with the disk full";
  auto accepted = [&] {
    return ScrapeMetric(http, R"(tallyd_lines_total{transport="http",result="accepted"})")
        .value_or(0);
  };
  const double before = accepted();
  auto waiter = std::async(std::launch::async, [&] {
    RawConnection c(http, 60000);
    HttpResult r = c.Request("POST", "/v1/ingest?wait=flush", "apikey.6.success:1|c");
    return std::make_pair(r.status, Clock::now());
  });
  ASSERT_TRUE(WaitUntil([&] { return accepted() > before; }, 10000));  // it is waiting
  const auto signalled = Clock::now();
  EXPECT_EQ(tallyd.Stop(), 1) << tallyd.Log();  // the final flush could not commit
  auto [status, answered] = waiter.get();
  EXPECT_EQ(status, 503);
  EXPECT_LT(std::chrono::duration<double>(answered - signalled).count(), 5.0)
      << "the waiting request was held by the stop";
  EXPECT_NE(tallyd.Log().find("final flush failed"), std::string::npos) << tallyd.Log();
}

}  // namespace
}  // namespace tally::testing
