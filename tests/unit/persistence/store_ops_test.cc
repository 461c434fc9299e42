// Checkpoint, DiskBytes, Compact, and concurrent use: a flusher thread, admin changes and
// readers at once (run under TSan in the thread-sanitizer build).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "persistence/store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;
using testing::TempDir;

TEST(StoreOps, CheckpointIsAConsistentCopy) {
  TempDir dir;
  auto store = OpenStore(dir.Sub("db"));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->CreateGroup(TestGroup(1)).ok());
  ApiKey k;
  k.id = 3;
  k.group_id = 1;
  k.api_key = "sk";
  ASSERT_TRUE(store->CreateKey(k).ok());
  std::vector<core::KeyDelta> d = {{3, 4, 1}, {9, 1, 1}};
  ASSERT_TRUE(store->ApplyFlush(&d).ok());
  ASSERT_TRUE(store->Checkpoint(dir.Sub("copy")).ok());
  EXPECT_EQ(store->Checkpoint(dir.Sub("copy")).code(), Status::Code::kConflict);
  d = {{3, 100, 0}};
  ASSERT_TRUE(store->ApplyFlush(&d).ok());  // after the checkpoint: not in the copy

  auto copy = OpenStore(dir.Sub("copy"));
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->epoch(), 1u);
  EXPECT_EQ(copy->GetGroup(1)->totals.total, 5);
  EXPECT_EQ(copy->GroupSummary(0)->total, 2);
  EXPECT_TRUE(copy->Verify().ok());
  EXPECT_EQ(store->GetGroup(1)->totals.total, 105);
}

TEST(StoreOps, DiskBytesGrowWithDataAndCompactKeepsEverything) {
  TempDir dir;
  auto store = OpenStore(dir.Sub("db"));
  ASSERT_TRUE(store);
  uint64_t empty = store->DiskBytes();
  std::vector<core::KeyDelta> d;
  for (uint64_t k = 1; k <= 5000; ++k) {
    d.push_back({k, k, 1});
  }
  ASSERT_TRUE(store->ApplyFlush(&d).ok());
  uint64_t after_flush = store->DiskBytes();
  EXPECT_GT(after_flush, empty + 5000 * 11);  // at least ids and totals, in the WAL
  ASSERT_TRUE(store->Compact().ok());
  uint64_t compacted = store->DiskBytes();
  EXPECT_GT(compacted, 5000u * 8);  // SST files now hold the records
  EXPECT_EQ(store->GetKey(5000)->totals.total, 5001);
  store.reset();
  store = OpenStore(dir.Sub("db"));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->live_keys(), 5000u);
  EXPECT_TRUE(store->Verify().ok());
}

TEST(StoreOps, ConcurrentFlushesAdminChangesAndReads) {
  TempDir dir;
  auto store = OpenStore(dir.Sub("db"));
  ASSERT_TRUE(store);
  for (uint64_t g = 1; g <= 4; ++g) {
    ASSERT_TRUE(store->CreateGroup(TestGroup(g)).ok());
  }
  constexpr int kFlushes = 60;
  std::atomic<bool> done{false};
  std::thread flusher([&] {
    for (int i = 0; i < kFlushes; ++i) {
      std::vector<core::KeyDelta> d;
      for (uint64_t k = 1; k <= 20; ++k) {
        d.push_back({k, 1, 1});
      }
      ASSERT_TRUE(store->ApplyFlush(&d).ok());
    }
    // release: pairs with the readers' acquire loads; no data is published through it.
    done.store(true, std::memory_order_release);
  });
  std::thread admin([&] {
    for (int i = 0; i < 40; ++i) {
      ApiKey k;
      k.id = static_cast<uint64_t>(i % 20) + 1;
      k.group_id = static_cast<uint64_t>(i % 5);
      k.api_key = "sk";
      EXPECT_TRUE(store->PutKey(k).ok());
    }
  });
  std::thread reader([&] {
    // acquire: see the flag set by the flusher; the loop reads only through the store.
    while (!done.load(std::memory_order_acquire)) {
      core::Totals sum = store->Summary();
      EXPECT_TRUE(sum.consistent());
      for (const ProviderGroup& g : store->ListGroups()) {
        EXPECT_TRUE(g.totals.consistent());
      }
      (void)store->ListKeys(std::nullopt, std::nullopt);
      (void)store->GetKey(1);
      (void)store->DiskBytes();
    }
  });
  flusher.join();
  admin.join();
  reader.join();
  EXPECT_EQ(store->Summary().total, kFlushes * 20 * 2);
  Status v = store->Verify();
  EXPECT_TRUE(v.ok()) << v.message();
}

}  // namespace
}  // namespace tally::persistence
