// Write failures on a real RocksDB (through FaultFs): a failed flush or admin change
// changes nothing, writes work again once the fault clears, and totals are exact after,
// reopen included.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "persistence/store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/persistence/fault_fs.h"

namespace tally::persistence {
namespace {

using core::Status;
using testing::FaultEnv;
using testing::FaultFs;
using testing::TempDir;

class StoreFault : public ::testing::TestWithParam<FaultFs::Mode> {
 protected:
  void SetUp() override {
    opts_.env = fault_.env.get();
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(dir_.Sub("db"), opts_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
  }

  TempDir dir_;
  FaultEnv fault_;
  StoreOptions opts_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreFault, FailedFlushChangesNothingAndTheRetryIsExact) {
  ProviderGroup g;
  g.id = 1;
  g.name = "g";
  g.type = "openai";
  g.base_url = "u";
  ASSERT_TRUE(store_->CreateGroup(g).ok());
  ApiKey k;
  k.id = 1;
  k.group_id = 1;
  k.api_key = "sk";
  ASSERT_TRUE(store_->CreateKey(k).ok());
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
  // Admin changes fail the same way and leave nothing behind.
  ProviderGroup h = g;
  h.id = 2;
  h.name = "h";
  EXPECT_EQ(store_->CreateGroup(h).status().code(), Status::Code::kIoError);
  EXPECT_EQ(store_->DeleteKey(1).code(), Status::Code::kIoError);
  EXPECT_EQ(store_->live_groups(), 1u);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 12);

  fault_.fs->set_mode(FaultFs::Mode::kNone);
  auto r = store_->ApplyFlush(&pending);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->epoch, 2u);
  EXPECT_EQ(store_->Summary().total, 31);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 22);
  EXPECT_TRUE(store_->CreateGroup(h).ok());
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

INSTANTIATE_TEST_SUITE_P(Modes, StoreFault,
                         ::testing::Values(FaultFs::Mode::kFailWrites, FaultFs::Mode::kFailSync),
                         [](const auto& info) {
                           return info.param == FaultFs::Mode::kFailWrites ? "NoWrites" : "NoSync";
                         });

}  // namespace
}  // namespace tally::persistence
