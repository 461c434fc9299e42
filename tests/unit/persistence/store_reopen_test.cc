// RocksDB errors that DB::Resume() cannot clear (a WAL it could not create, when the
// process ran out of descriptors or the file system out of inodes): the store closes and
// reopens the database in place, so a later write succeeds without a restart, and closing
// never aborts, recovered or not.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "persistence/store.h"
#include "tests/unit/persistence/fault_fs.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;
using testing::FaultEnv;

class StoreReopen : public StoreFixture<> {
 protected:
  void SetUp() override {
    opts_.env = fault_.env.get();
    Reopen();
    ASSERT_TRUE(store_->CreateGroup(TestGroup(1)).ok());
    ASSERT_TRUE(store_->CreateKey(TestKey(1, 1)).ok());
    std::vector<core::KeyDelta> first = {{1, 10, 2}, {2, 1, 1}};
    ASSERT_TRUE(store_->ApplyFlush(&first).ok());
  }
  // A checkpoint flushes the memtables, which switches to a new WAL (as a flush larger
  // than the memtable does): with `failures` WAL creations failing, RocksDB's background
  // error is fatal.
  void FailTheNextWalSwitch(int failures) {
    fault_.fs->FailWalCreations(failures);
    EXPECT_FALSE(store_->Checkpoint(dir_.Sub("cp")).ok());
    ASSERT_EQ(fault_.fs->failed_wal_creations(), 1);
  }

  FaultEnv fault_;
};

TEST_F(StoreReopen, AFailedWalCreationIsRecoveredWithoutARestart) {
  FailTheNextWalSwitch(1);
  std::vector<core::KeyDelta> pending = {{1, 5, 5}, {3, 7, 0}};
  // The next write recovers first (the background error was reported), then writes.
  auto r = store_->ApplyFlush(&pending);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->epoch, 2u);
  EXPECT_EQ(store_->Summary().total, 31);
  EXPECT_EQ(store_->GetKey(1)->totals.success, 15);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 22);
  auto keys = store_->ListKeys(std::nullopt, std::nullopt);
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_EQ(keys->size(), 3u);
  Status v = store_->Verify();
  EXPECT_TRUE(v.ok()) << v.message();
  EXPECT_TRUE(store_->Checkpoint(dir_.Sub("cp2")).ok());

  Reopen();
  EXPECT_EQ(store_->epoch(), 2u);
  EXPECT_EQ(store_->Summary().total, 31);
  EXPECT_EQ(store_->GetKey(3)->totals.success, 7);
  v = store_->Verify();
  EXPECT_TRUE(v.ok()) << v.message();
}

// While the cause lasts the reopen fails too (the database stays closed, reads fail with
// an error, nothing crashes); once it is gone a write succeeds.
TEST_F(StoreReopen, WritesWaitWhileTheCauseLasts) {
  FailTheNextWalSwitch(1000);
  std::vector<core::KeyDelta> pending = {{1, 1, 0}};
  for (int attempt = 0; attempt < 3; ++attempt) {
    EXPECT_FALSE(store_->ApplyFlush(&pending).ok());
  }
  EXPECT_FALSE(store_->GetKey(1).ok());
  EXPECT_FALSE(store_->ListKeys(std::nullopt, std::nullopt).ok());
  EXPECT_EQ(store_->Summary().total, 14);
  (void)store_->DiskBytes();
  fault_.fs->FailWalCreations(0);
  auto r = store_->ApplyFlush(&pending);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(store_->Summary().total, 15);
  EXPECT_EQ(store_->GetKey(1)->totals.success, 11);
  Reopen();
  EXPECT_EQ(store_->Summary().total, 15);
}

// Closing after the error, before any recovery, and while it lasts, never aborts.
TEST_F(StoreReopen, ClosingAfterTheErrorDoesNotAbort) {
  FailTheNextWalSwitch(1000);
  std::vector<core::KeyDelta> pending = {{1, 1, 0}};
  EXPECT_FALSE(store_->ApplyFlush(&pending).ok());
  store_.reset();
  fault_.fs->FailWalCreations(0);
  Reopen();
  EXPECT_EQ(store_->Summary().total, 14);
}

// The switch a flush larger than a memtable makes (as repro_fd.sh: 600k new keys fill the
// keys and key_totals memtables at once). Returns the flush's result.
core::StatusOr<FlushResult> FlushManyNewKeys(Store* store) {
  std::vector<core::KeyDelta> big;
  for (uint64_t k = 10; k < 600'010; ++k) {
    big.push_back({k, 1, 0});
  }
  return store->ApplyFlush(&big);
}

TEST_F(StoreReopen, AFailedSwitchAfterALargeFlushIsRecoveredWithoutARestart) {
  fault_.fs->FailWalCreations(1);
  auto big = FlushManyNewKeys(store_.get());
  ASSERT_TRUE(big.ok()) << big.status().message();  // in the WAL before the switch
  std::vector<core::KeyDelta> pending = {{1, 1, 0}};
  auto r = store_->ApplyFlush(&pending);
  for (int attempt = 0; attempt < 3 && !r.ok(); ++attempt) {
    r = store_->ApplyFlush(&pending);
  }
  EXPECT_EQ(fault_.fs->failed_wal_creations(), 1);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(store_->Summary().total, 14 + 600'000 + 1);
  Reopen();
  EXPECT_EQ(store_->Summary().total, 14 + 600'000 + 1);
  EXPECT_EQ(store_->GetKey(1)->totals.success, 11);
}

// Stopping while the cause lasts: the close does not abort (RocksDB 7.8's assertion
// 'last_ref'), and what was acknowledged is there after a restart.
TEST_F(StoreReopen, ClosingAfterAFailedSwitchDoesNotAbort) {
  fault_.fs->FailWalCreations(1000);
  ASSERT_TRUE(FlushManyNewKeys(store_.get()).ok());
  std::vector<core::KeyDelta> pending = {{1, 1, 0}};
  EXPECT_FALSE(store_->ApplyFlush(&pending).ok());
  EXPECT_GE(fault_.fs->failed_wal_creations(), 1);
  store_.reset();
  fault_.fs->FailWalCreations(0);
  Reopen();
  EXPECT_EQ(store_->Summary().total, 14 + 600'000);
  Status v = store_->Verify();
  EXPECT_TRUE(v.ok()) << v.message();
}

}  // namespace
}  // namespace tally::persistence
