// Store::Checkpoint never deletes what it did not create: an existing DIR.tmp (RocksDB's
// staging directory, which RocksDB empties first) is a Conflict, left as it was; of
// concurrent checkpoints into one directory exactly one succeeds.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "persistence/store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

namespace fs = std::filesystem;
using core::Status;
using testing::TempDir;

std::unique_ptr<Store> OpenWithData(const std::string& dir) {
  std::unique_ptr<Store> store = OpenStore(dir);
  if (store == nullptr) {
    return nullptr;
  }
  std::vector<core::KeyDelta> d = {{1, 2, 3}};
  EXPECT_TRUE(store->ApplyFlush(&d).ok());
  return store;
}

TEST(StoreCheckpoint, AnExistingStagingDirIsAConflictAndKeepsItsFiles) {
  TempDir dir;
  auto store = OpenWithData(dir.Sub("db"));
  ASSERT_TRUE(store);
  const std::string target = dir.Sub("copy");
  fs::create_directory(target + ".tmp");
  std::ofstream(target + ".tmp/precious") << "keep";
  Status s = store->Checkpoint(target);
  EXPECT_EQ(s.code(), Status::Code::kConflict) << s.message();
  EXPECT_TRUE(fs::exists(target + ".tmp/precious"));
  EXPECT_FALSE(fs::exists(target));
  // A staging name taken by a file or a dangling symlink: the same.
  fs::remove_all(target + ".tmp");
  fs::create_symlink(dir.Sub("nowhere"), target + ".tmp");
  EXPECT_EQ(store->Checkpoint(target).code(), Status::Code::kConflict);
  EXPECT_TRUE(fs::is_symlink(target + ".tmp"));
  fs::remove(target + ".tmp");
  // Free again: it works, and leaves no staging directory behind.
  s = store->Checkpoint(target);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(fs::exists(target + ".tmp"));
  EXPECT_TRUE(fs::exists(target + "/CURRENT"));
}

TEST(StoreCheckpoint, ConcurrentCheckpointsIntoOneDirOneSucceeds) {
  TempDir dir;
  auto store = OpenWithData(dir.Sub("db"));
  ASSERT_TRUE(store);
  for (int round = 0; round < 5; ++round) {
    const std::string target = dir.Sub("copy" + std::to_string(round));
    std::atomic<int> ok{0};
    std::atomic<int> conflict{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        Status s = store->Checkpoint(target);
        (s.ok() ? ok : conflict).fetch_add(1);
        EXPECT_TRUE(s.ok() || s.code() == Status::Code::kConflict) << s.message();
      });
    }
    for (std::thread& t : threads) {
      t.join();
    }
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(conflict.load(), 3);
    auto copy = Store::Open(target);
    ASSERT_TRUE(copy.ok()) << copy.status().message();
    EXPECT_EQ((*copy)->Summary().total, 5);
  }
}

TEST(StoreCheckpoint, APlaceTheOsRefusesIsInvalidArgument) {
  TempDir dir;
  auto store = OpenWithData(dir.Sub("db"));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->Checkpoint(dir.Sub("no/such/parent/copy")).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store->Checkpoint("/proc/self/copy").code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace tally::persistence
