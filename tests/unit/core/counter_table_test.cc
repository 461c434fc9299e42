#include "core/counter_table.h"

#include <gtest/gtest.h>

namespace tally::core {
namespace {

TEST(CounterTable, DrainReturnsDeltasAndResets) {
  CounterTable table(100);
  ASSERT_TRUE(table.Add(5, 3, 0));
  ASSERT_TRUE(table.Add(5, 0, 2));
  ASSERT_TRUE(table.Add(9, 1, 1));
  std::vector<KeyDelta> out;
  EXPECT_EQ(table.Drain(&out), 2u);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.key < b.key; });
  EXPECT_EQ(out[0], (KeyDelta{5, 3, 2}));
  EXPECT_EQ(out[1], (KeyDelta{9, 1, 1}));
  out.clear();
  EXPECT_EQ(table.Drain(&out), 0u);
  EXPECT_EQ(table.keys(), 2u);
}

TEST(CounterTable, RefusesNewKeysPastTheBound) {
  CounterTable table(2);
  ASSERT_TRUE(table.Add(1, 1, 0));
  ASSERT_TRUE(table.Add(2, 1, 0));
  EXPECT_FALSE(table.Add(3, 1, 0));
  EXPECT_TRUE(table.Add(1, 1, 0));  // existing keys keep counting
  EXPECT_EQ(table.refused(), 1u);
  EXPECT_EQ(table.keys(), 2u);
}

TEST(CounterTable, RefusesKeyZero) {
  CounterTable table(2);
  EXPECT_FALSE(table.Add(0, 1, 0));
  EXPECT_EQ(table.refused(), 1u);
}

}  // namespace
}  // namespace tally::core
