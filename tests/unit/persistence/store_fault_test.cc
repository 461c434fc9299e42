// Write failures on a real RocksDB (through FaultFs): a failed flush or admin change
// changes nothing, writes work again once the fault clears, and totals are exact after,
// reopen included.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "persistence/db_internal.h"
#include "persistence/store.h"
#include "tests/unit/persistence/fault_fs.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;
using testing::FaultEnv;
using testing::FaultFs;
using testing::TempDir;

class StoreFault : public StoreFixture<::testing::TestWithParam<FaultFs::Mode>> {
 protected:
  void SetUp() override {
    opts_.env = fault_.env.get();
    opts_.on_event = [this](StoreEventLevel level, const std::string& m) {
      std::lock_guard lock(events_mu_);
      if (level == StoreEventLevel::kError) {
        errors_.push_back(m);
      }
    };
    Reopen();
  }
  size_t ErrorEvents(const std::string& part) {
    std::lock_guard lock(events_mu_);
    return static_cast<size_t>(std::count_if(errors_.begin(), errors_.end(), [&](const auto& m) {
      return m.find(part) != std::string::npos;
    }));
  }

  FaultEnv fault_;
  std::mutex events_mu_;
  std::vector<std::string> errors_;  // guarded by events_mu_
};

TEST_P(StoreFault, FailedFlushChangesNothingAndTheRetryIsExact) {
  ASSERT_TRUE(store_->CreateGroup(TestGroup(1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 1)).ok());
  std::vector<core::KeyDelta> first = {{1, 10, 2}, {2, 1, 1}};
  ASSERT_TRUE(store_->ApplyFlush(&first).ok());

  fault_.fs->set_mode(GetParam());
  std::vector<core::KeyDelta> pending = {{1, 5, 5}, {3, 7, 0}};
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = store_->ApplyFlush(&pending);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kIoError);
    EXPECT_NE(r.status().message().find("No space"), std::string::npos) << r.status().message();
    EXPECT_EQ(store_->epoch(), 1u);
    EXPECT_EQ(store_->Summary().total, 14);
    EXPECT_EQ(store_->live_keys(), 2u);
  }
  // RocksDB's background error reached the store's events and health counters.
  EXPECT_GE(store_->health().background_errors, 1u);
  EXPECT_GE(ErrorEvents("RocksDB background error"), 1u);
  // Admin changes fail the same way and leave nothing behind.
  EXPECT_EQ(store_->CreateGroup(TestGroup(2)).status().code(), Status::Code::kIoError);
  EXPECT_EQ(store_->DeleteKey(1).code(), Status::Code::kIoError);
  EXPECT_EQ(store_->live_groups(), 1u);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 12);

  fault_.fs->set_mode(FaultFs::Mode::kNone);
  auto r = store_->ApplyFlush(&pending);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->epoch, 2u);
  EXPECT_EQ(store_->Summary().total, 31);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 22);
  EXPECT_TRUE(store_->CreateGroup(TestGroup(2)).ok());
  EXPECT_TRUE(store_->Verify().ok());

  Reopen();
  EXPECT_EQ(store_->epoch(), 2u);
  EXPECT_EQ(store_->Summary().total, 31);
  EXPECT_EQ(store_->GetKey(1)->totals.success, 15);
  EXPECT_EQ(store_->GetKey(3)->totals.success, 7);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 22);
  EXPECT_EQ(store_->live_groups(), 2u);
  Status v = store_->Verify();
  EXPECT_TRUE(v.ok()) << v.message();
}

TEST_P(StoreFault, AFailedIdempotentFlushRecordsNoAnswer) {
  fault_.fs->set_mode(GetParam());
  std::vector<core::KeyDelta> d = {{1, 1, 0}};
  IdempotentAnswer a{"k1", "digest-42", ""};
  auto r = store_->ApplyFlush(&d, &a, [](const FlushResult&) { return std::string("ok"); });
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(store_->LookupIdempotent("k1").has_value());
  fault_.fs->set_mode(FaultFs::Mode::kNone);
  r = store_->ApplyFlush(&d, &a, [](const FlushResult&) { return std::string("ok"); });
  ASSERT_TRUE(r.ok()) << r.status().message();
  Reopen();
  ASSERT_TRUE(store_->LookupIdempotent("k1").has_value());
  EXPECT_EQ(store_->Summary().total, 1);
}

// A real full disk: a small tmpfs mounted as the data dir (needs root or CAP_SYS_ADMIN;
// skipped otherwise), filled by another file until ENOSPC.
TEST(StoreDiskFull, RealEnospcIsAnIoErrorAndWritesResumeOnceSpaceIsFreed) {
  TempDir dir;
  const std::string mnt = dir.Sub("mnt");
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    auto opened = Store::Open(mnt + "/db");
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    std::unique_ptr<Store> store = std::move(*opened);
    std::vector<core::KeyDelta> first = {{1, 3, 1}};
    ASSERT_TRUE(store->ApplyFlush(&first).ok());

    // Fill the file system.
    const std::string filler = mnt + "/filler";
    int fd = open(filler.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string chunk(64 * 1024, 'x');
    while (write(fd, chunk.data(), chunk.size()) > 0) {
    }
    close(fd);

    std::vector<core::KeyDelta> pending;
    for (uint64_t k = 1; k <= 2000; ++k) {
      pending.push_back({k, 2, 1});
    }
    auto failed = store->ApplyFlush(&pending);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), Status::Code::kIoError);
    EXPECT_NE(failed.status().message().find("No space left on device"), std::string::npos)
        << failed.status().message();
    EXPECT_EQ(store->Summary().total, 4);
    EXPECT_FALSE(store->ApplyFlush(&pending).ok());  // still full: still refused

    ASSERT_EQ(unlink(filler.c_str()), 0);
    auto retried = store->ApplyFlush(&pending);
    ASSERT_TRUE(retried.ok()) << retried.status().message();
    EXPECT_EQ(store->Summary().total, 4 + 2000 * 3);
  }
  auto reopened = Store::Open(mnt + "/db");
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  EXPECT_EQ((*reopened)->Summary().total, 4 + 2000 * 3);
  EXPECT_EQ((*reopened)->GetKey(1)->totals.success, 5);
  EXPECT_EQ((*reopened)->epoch(), 2u);
  Status v = (*reopened)->Verify();
  EXPECT_TRUE(v.ok()) << v.message();
}

// Write stalls reported by RocksDB are counted, gauged and reported with their severity.
TEST(StoreEvents, StallsAreCountedAndReported) {
  auto health = std::make_shared<StoreHealthState>();
  std::vector<std::pair<StoreEventLevel, std::string>> seen;
  health->on_event = [&](StoreEventLevel level, const std::string& m) {
    seen.emplace_back(level, m);
  };
  std::shared_ptr<rocksdb::EventListener> listener = NewHealthListener(health);
  using C = rocksdb::WriteStallCondition;
  rocksdb::WriteStallInfo info;
  info.cf_name = "key_totals";
  info.condition = {C::kDelayed, C::kNormal};
  listener->OnStallConditionsChanged(info);
  info.condition = {C::kStopped, C::kDelayed};
  listener->OnStallConditionsChanged(info);
  EXPECT_EQ(health->stalled_families.load(), 1);
  info.condition = {C::kNormal, C::kStopped};
  listener->OnStallConditionsChanged(info);
  info.condition = {C::kNormal, C::kNormal};  // no change: nothing to report
  listener->OnStallConditionsChanged(info);
  EXPECT_EQ(health->stalls_delayed.load(), 1u);
  EXPECT_EQ(health->stalls_stopped.load(), 1u);
  EXPECT_EQ(health->stalled_families.load(), 0);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].first, StoreEventLevel::kWarn);
  EXPECT_NE(seen[0].second.find("key_totals"), std::string::npos) << seen[0].second;
  EXPECT_EQ(seen[1].first, StoreEventLevel::kError);
  EXPECT_NE(seen[2].second.find("resume"), std::string::npos) << seen[2].second;

  // RocksDB's own warnings arrive through the logger; its info lines do not.
  std::shared_ptr<rocksdb::Logger> logger = NewEventLogger(health, nullptr);
  rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, logger, "routine %d", 1);
  rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, logger, "odd %d", 2);
  rocksdb::Log(rocksdb::InfoLogLevel::ERROR_LEVEL, logger, "bad %s", "disk");
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[3], std::make_pair(StoreEventLevel::kWarn, std::string("RocksDB: odd 2")));
  EXPECT_EQ(seen[4], std::make_pair(StoreEventLevel::kError, std::string("RocksDB: bad disk")));
}

INSTANTIATE_TEST_SUITE_P(Modes, StoreFault,
                         ::testing::Values(FaultFs::Mode::kFailWrites, FaultFs::Mode::kFailSync),
                         [](const auto& info) {
                           return info.param == FaultFs::Mode::kFailWrites ? "NoWrites" : "NoSync";
                         });

}  // namespace
}  // namespace tally::persistence
