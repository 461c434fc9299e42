// Fault test: the data directory's filesystem runs out of inodes when RocksDB switches to a
// new write-ahead log, then frees them (as /tmp/attack/repro_inode.sh).
//
// A failed WAL creation is an error RocksDB's Resume() cannot clear; tallyd closes and
// reopens the database in place once files can be created again (docs/reliability.md,
// "When RocksDB's error is not resumable"). The data directory sits on a tmpfs with 64
// inodes mounted for the test (root only; skipped, saying why, where mounting is not
// permitted). Guarantees checked: counts accepted during the fault are flushed once the
// inodes are free, without a restart; admin writes work again; /readyz turns 200; the stop
// is clean (exit 0) and a restart finds the exact totals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Polls `probe` until it answers true or `seconds` pass (not a sleep as synchronisation:
// each round reads tallyd's state).
template <typename Probe>
bool Eventually(int seconds, Probe probe) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (!probe()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

TEST(FaultInodes, AFailedWalCreationRecoversWithoutARestartOnceInodesAreFree) {
  TempDir dir;
  const std::string mnt = dir.Sub("mnt");
  std::filesystem::create_directories(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=32m,nr_inodes=64,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const std::string data = mnt + "/data";
  {
    TallydProcess t(data, {"--flush-interval-ms", "200"});
    const uint16_t port = t.http_port();
    ASSERT_EQ(Http(port, "POST", "/v1/ingest?wait=flush", "apikey.1.success:5|c").status, 200);

    // Take every free inode.
    const std::string fill = mnt + "/fill";
    std::filesystem::create_directories(fill);
    int files = 0;
    for (;; ++files) {
      int fd = open((fill + "/f" + std::to_string(files)).c_str(), O_CREAT | O_WRONLY, 0600);
      if (fd < 0) {
        break;
      }
      close(fd);
    }
    ASSERT_GT(files, 0);
    // A checkpoint flushes the memtables, which needs a new WAL: RocksDB cannot create it.
    HttpResult cp =
        Http(port, "POST", "/admin/checkpoint", "{\"dir\":\"" + dir.Sub("checkpoint") + "\"}");
    EXPECT_NE(cp.status, 200) << cp.body;
    ASSERT_EQ(Http(port, "POST", "/v1/ingest", "apikey.1.success:7|c").status, 202);
    // Flushes fail while the inodes stay used up (the recovery's probe file cannot be
    // created either): /readyz says so.
    EXPECT_TRUE(Eventually(20, [&] { return Http(port, "GET", "/readyz").status == 503; }));

    std::filesystem::remove_all(fill);
    EXPECT_NE(WaitForTotal(port, 12, 20000).find("\"total_requests\":12"), std::string::npos)
        << t.Log();
    EXPECT_TRUE(Eventually(20, [&] { return Http(port, "GET", "/readyz").status == 200; }));
    HttpResult put =
        Http(port, "PUT", "/admin/provider-groups/1", R"({"name":"g","type":"t","base_url":"u"})");
    EXPECT_EQ(put.status, 201) << put.body;
    ASSERT_EQ(Http(port, "POST", "/v1/ingest?wait=flush", "apikey.2.failure:1|c").status, 200);
    EXPECT_EQ(t.Stop(), 0) << t.Log();
    // The fault was the one meant: a fatal background error (Resume() cannot clear it).
    EXPECT_NE(t.Log().find("background error (fatal)"), std::string::npos) << t.Log();
  }
  TallydProcess again(data);
  std::string summary = WaitForTotal(again.http_port(), 13, 10000);
  EXPECT_NE(summary.find("\"total_requests\":13"), std::string::npos) << summary;
  EXPECT_EQ(again.Stop(), 0) << again.Log();
}

}  // namespace
}  // namespace tally::testing
