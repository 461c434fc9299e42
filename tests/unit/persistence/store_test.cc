#include "persistence/store.h"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace tally::persistence {
namespace {

using testing::TempDir;

TEST(Store, FlushThenReadBackAndReopen) {
  TempDir dir;
  {
    auto store = Store::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    std::vector<core::KeyDelta> deltas = {{1, 10, 0}, {2, 7, 3}, {1, 0, 5}};
    auto result = (*store)->ApplyFlush(&deltas);
    ASSERT_TRUE(result.ok()) << result.status().message();
    EXPECT_EQ(result->epoch, 1u);
    EXPECT_EQ(result->keys_created, 2u);
    core::Totals sum = (*store)->Summary();
    EXPECT_EQ(sum.total, 25);
    EXPECT_EQ(sum.success, 17);
    EXPECT_EQ(sum.failure, 8);
  }
  auto store = Store::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ((*store)->epoch(), 1u);
  EXPECT_EQ((*store)->Summary().total, 25);
  auto unassigned = (*store)->GroupSummary(kUnassignedGroup);
  ASSERT_TRUE(unassigned.ok());
  EXPECT_EQ(unassigned->success, 17);
  EXPECT_EQ((*store)->live_keys(), 2u);
}

TEST(Store, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir;
  auto first = Store::Open(dir.Sub("db"));
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(dir.Sub("db"));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("locked"), std::string::npos)
      << second.status().message();
}

TEST(Store, AFileInPlaceOfTheDirectoryIsAnError) {
  TempDir dir;
  FILE* f = fopen(dir.Sub("file").c_str(), "w");
  fclose(f);
  auto store = Store::Open(dir.Sub("file"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a directory"), std::string::npos);
}

}  // namespace
}  // namespace tally::persistence
