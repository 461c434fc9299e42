// CounterTable::Tombstone: a deleted key's later Adds are refused and counted, what was added
// before the mark is still drained once, and concurrent Adds and the mark never lose or
// double an increment (every Add is either drained or refused). Also run under
// ThreadSanitizer (scripts/test.sh, stage tsan).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "core/counter_table.h"

namespace tally::core {
namespace {

struct Increment {
  uint64_t key;
  uint64_t successes;
  uint64_t failures;
};

TEST(CounterTableTombstone, AMarkedKeyIsRefusedAndItsPendingCountsStillDrain) {
  CounterTable table(100, /*hash_seed=*/7);
  EXPECT_FALSE(table.Tombstone(5));  // no slot: nothing to mark
  ASSERT_TRUE(table.Add(5, 3, 1));
  ASSERT_TRUE(table.Add(6, 1, 0));
  EXPECT_TRUE(table.Tombstone(5));
  EXPECT_TRUE(table.Tombstone(5));  // again: still marked, answers true
  EXPECT_FALSE(table.Add(5, 1, 0));
  EXPECT_FALSE(table.Add(5, 0, 1 << 20));  // the wide path too
  Increment batch[] = {{5, 1, 0}, {6, 2, 0}, {5, 0, 1}};
  EXPECT_EQ(table.AddBatch(batch, 3), 2u);
  EXPECT_EQ(table.deleted_refused(), 4u);
  EXPECT_EQ(table.refused(), 0u);  // not the table-full count
  EXPECT_TRUE(table.Contains(5));  // an automatic id must still skip it
  std::vector<KeyDelta> out;
  table.Drain(&out);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (KeyDelta{5, 3, 1}));  // the unmarked id, counts from before the mark
  EXPECT_EQ(out[1], (KeyDelta{6, 3, 0}));
  EXPECT_EQ(table.keys(), 2u);
}

TEST(CounterTableTombstone, KeysSharingAProbeAreUntouched) {
  // Every key of a 64-slot table lands within a few buckets: marks must not hide neighbours.
  CounterTable table(32, /*hash_seed=*/1);
  for (uint64_t k = 1; k <= 32; ++k) {
    ASSERT_TRUE(table.Add(k, 1, 0));
  }
  for (uint64_t k = 1; k <= 32; k += 2) {
    ASSERT_TRUE(table.Tombstone(k));
  }
  for (uint64_t k = 1; k <= 32; ++k) {
    EXPECT_EQ(table.Add(k, 1, 0), k % 2 == 0) << k;
    EXPECT_TRUE(table.Contains(k)) << k;
  }
  EXPECT_FALSE(table.Add(33, 1, 0));  // full: the marked slots still hold their keys
  EXPECT_EQ(table.refused(), 1u);
  std::vector<KeyDelta> out;
  table.Drain(&out);
  uint64_t total = 0;
  for (const KeyDelta& d : out) {
    total += d.successes;
  }
  EXPECT_EQ(total, 32u + 16u);
}

TEST(CounterTableTombstone, EveryConcurrentAddIsDrainedOrRefusedNeverBoth) {
  constexpr int kWriters = 4;
  constexpr uint64_t kAddsPerWriter = 200'000;
  constexpr uint64_t kKey = 42;
  CounterTable table(1000);
  std::atomic<uint64_t> refused{0};
  std::latch start(kWriters + 1);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      start.arrive_and_wait();
      uint64_t mine = 0;
      for (uint64_t i = 0; i < kAddsPerWriter; ++i) {
        mine += table.Add(kKey, 1, 0) ? 0 : 1;
      }
      // Relaxed: summed after join.
      refused.fetch_add(mine, std::memory_order_relaxed);
    });
  }
  uint64_t drained = 0;
  std::vector<KeyDelta> out;
  start.arrive_and_wait();
  while (!table.Contains(kKey)) {
    std::this_thread::yield();
  }
  for (int i = 0; i < 50; ++i) {
    out.clear();
    table.Drain(&out);
    for (const KeyDelta& d : out) {
      drained += d.successes;
    }
  }
  ASSERT_TRUE(table.Tombstone(kKey));
  for (std::thread& t : writers) {
    t.join();
  }
  out.clear();
  table.Drain(&out);
  for (const KeyDelta& d : out) {
    EXPECT_EQ(d.key, kKey);
    drained += d.successes;
  }
  EXPECT_EQ(drained + refused.load(std::memory_order_relaxed), kWriters * kAddsPerWriter);
  EXPECT_EQ(table.deleted_refused(), refused.load(std::memory_order_relaxed));
  EXPECT_GT(drained, 0u);
}

}  // namespace
}  // namespace tally::core
