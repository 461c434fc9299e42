// Scans over the stored records (ListKeys, Verify) on a real RocksDB whose table-file reads
// fail or stall on demand (FaultFs): a failed read is an error, never a short list or a false
// "verified"; and a list in progress does not hold writers up.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "persistence/store.h"
#include "tests/unit/persistence/fault_fs.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;
using testing::FaultEnv;
using testing::FaultFs;

constexpr size_t kKeys = 2000;

class StoreScan : public StoreTest {
 protected:
  void SetUp() override {
    opts_.env = fault_.env.get();
    Reopen();
    std::vector<core::KeyDelta> deltas;
    for (uint64_t id = 1; id <= kKeys; ++id) {
      deltas.push_back({id, id, 1});
    }
    ASSERT_TRUE(store_->ApplyFlush(&deltas).ok());
    // Into table files, and a fresh store whose start-up scan left them out of the cache:
    // every scan below reads them through FaultFs.
    ASSERT_TRUE(store_->Compact().ok());
    Reopen();
  }
  void TearDown() override {
    fault_.fs->set_read_mode(FaultFs::ReadMode::kPass);
    StoreTest::TearDown();
  }

  FaultEnv fault_;
};

TEST_F(StoreScan, ListKeysAnswersTheWholeListOrAnError) {
  auto all = store_->ListKeys(std::nullopt, std::nullopt);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), kKeys);
  EXPECT_EQ((*all)[41].totals.total, 43);  // key 42: 42 successes, 1 failure, from disk
  Reopen();
  fault_.fs->set_read_mode(FaultFs::ReadMode::kFail);
  auto failed = store_->ListKeys(std::nullopt, std::nullopt);
  ASSERT_FALSE(failed.ok()) << "a list of " << failed->size() << " keys";
  EXPECT_EQ(failed.status().code(), Status::Code::kIoError) << failed.status().message();
}

TEST_F(StoreScan, VerifyReportsAReadErrorAsSuch) {
  ASSERT_TRUE(store_->Verify().ok());
  Reopen();
  fault_.fs->set_read_mode(FaultFs::ReadMode::kFail);
  Status v = store_->Verify();
  EXPECT_EQ(v.code(), Status::Code::kIoError) << v.message();
}

TEST_F(StoreScan, AListInProgressDoesNotHoldUpAFlushAndShowsOneState) {
  fault_.fs->set_read_mode(FaultFs::ReadMode::kBlock);
  auto list = std::async(std::launch::async,
                         [this] { return store_->ListKeys(std::nullopt, std::nullopt); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fault_.fs->blocked_reads() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_GT(fault_.fs->blocked_reads(), 0) << "the list never reached a table file";
  // The list is stalled in mid-scan; a flush must still commit.
  auto flush = std::async(std::launch::async, [this] {
    std::vector<core::KeyDelta> d = {{1, 100, 0}, {kKeys + 1, 1, 0}};
    return store_->ApplyFlush(&d);
  });
  const bool flushed = flush.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  fault_.fs->set_read_mode(FaultFs::ReadMode::kPass);
  EXPECT_TRUE(flushed) << "the flush waited for the list";
  ASSERT_TRUE(flush.get().ok());
  auto listed = list.get();
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  // The state before the flush: not key kKeys+1, key 1 without the 100.
  ASSERT_EQ(listed->size(), kKeys);
  EXPECT_EQ(listed->front().totals.total, 2);
  EXPECT_EQ(store_->GetKey(1)->totals.total, 102);
}

}  // namespace
}  // namespace tally::persistence
