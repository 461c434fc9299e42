// Totals: the overflow rule's arithmetic at its boundary (core/totals.h).
#include "core/totals.h"

#include <gtest/gtest.h>

#include <limits>

namespace tally::core {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

TEST(Totals, CanAddUpToExactlyTheMaximumAndNotOneMore) {
  Totals t;
  t.Add(kMaxCount - 5, 2);
  EXPECT_TRUE(t.CanAdd(2, 1));   // to exactly 2^63-1
  EXPECT_FALSE(t.CanAdd(2, 2));  // one more
  EXPECT_FALSE(t.CanAdd(0, 4));
  EXPECT_TRUE(t.CanAdd(0, 0));
  t.Add(2, 1);
  EXPECT_EQ(t.total, kMaxCount);
  EXPECT_TRUE(t.consistent());
  EXPECT_FALSE(t.CanAdd(1, 0));
  EXPECT_FALSE(t.CanAdd(0, 1));
}

TEST(Totals, CanAddNeverOverflowsOnHugeArguments) {
  Totals empty;
  EXPECT_TRUE(empty.CanAdd(static_cast<uint64_t>(kMaxCount), 0));
  EXPECT_FALSE(empty.CanAdd(static_cast<uint64_t>(kMaxCount), 1));
  EXPECT_FALSE(empty.CanAdd(kU64Max, 0));
  EXPECT_FALSE(empty.CanAdd(0, kU64Max));
  EXPECT_FALSE(empty.CanAdd(kU64Max, kU64Max));
  EXPECT_FALSE(empty.CanAdd(uint64_t{1} << 63, uint64_t{1} << 63));  // sums to 0 mod 2^64
}

TEST(Totals, ConsistentRejectsNegativeAndWrappedCounts) {
  Totals t;
  EXPECT_TRUE(t.consistent());
  t.success = kMaxCount;
  t.failure = 1;
  t.total = std::numeric_limits<int64_t>::min();  // what a wrapped sum would hold
  EXPECT_FALSE(t.consistent());
  Totals negative;
  negative.Add(-1, 0);
  EXPECT_FALSE(negative.consistent());
}

TEST(Totals, SaturatingAddStopsAtTwoToThe64MinusOne) {
  EXPECT_EQ(SaturatingAdd(1, 2), 3u);
  EXPECT_EQ(SaturatingAdd(kU64Max, 1), kU64Max);
  EXPECT_EQ(SaturatingAdd(kU64Max - 1, 1), kU64Max);
  EXPECT_EQ(SaturatingAdd(uint64_t{1} << 63, uint64_t{1} << 63), kU64Max);
}

}  // namespace
}  // namespace tally::core
