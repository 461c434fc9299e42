// Crash atomicity: a child process flushes in a loop and is SIGKILLed at random moments.
// After each kill the store reopens with the invariant holding, and with exactly the totals
// of every epoch up to the one it reports: the last batch is wholly there or wholly absent.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "persistence/store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/persistence/crash_workload.h"

namespace tally::persistence {
namespace {

using testing::CrashDeltas;
using testing::CrashGroupOf;
using testing::TempDir;

std::string HelperPath() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() /
          "tally_store_crash_helper")
      .string();
}

void CheckEpoch(Store& store, uint64_t epoch) {
  std::map<uint64_t, core::Totals> keys;
  for (uint64_t e = 1; e <= epoch; ++e) {
    for (const core::KeyDelta& d : CrashDeltas(e)) {
      keys[d.key].Add(static_cast<int64_t>(d.successes), static_cast<int64_t>(d.failures));
    }
  }
  std::map<uint64_t, core::Totals> groups;
  for (const auto& [id, t] : keys) {
    groups[CrashGroupOf(id)] += t;
  }
  for (uint64_t id = 1; id <= testing::kCrashKeySpace; ++id) {
    auto k = store.GetKey(id);
    if (keys.contains(id)) {
      ASSERT_TRUE(k.ok()) << "key " << id << " epoch " << epoch;
      ASSERT_EQ(k->totals, keys[id]) << "key " << id << " epoch " << epoch;
    } else if (id > testing::kCrashAssignedKeys) {
      ASSERT_FALSE(k.ok()) << "key " << id << " exists before its first flush";
    }
  }
  for (uint64_t g = 0; g <= testing::kCrashGroups; ++g) {
    auto t = store.GroupSummary(g);
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(*t, groups[g]) << "group " << g << " epoch " << epoch;
  }
  core::Status v = store.Verify();
  ASSERT_TRUE(v.ok()) << v.message();
}

TEST(StoreCrash, SigkillDuringFlushesLeavesWholeEpochs) {
  TempDir dir;
  const std::string db = dir.Sub("db");
  {
    auto store = Store::Open(db);
    ASSERT_TRUE(store.ok());
    for (uint64_t g = 1; g <= testing::kCrashGroups; ++g) {
      ProviderGroup group;
      group.id = g;
      group.name = std::string("g") + std::to_string(g);
      group.type = "openai";
      group.base_url = "u";
      ASSERT_TRUE((*store)->CreateGroup(group).ok());
    }
    for (uint64_t k = 1; k <= testing::kCrashAssignedKeys; ++k) {
      ApiKey key;
      key.id = k;
      key.group_id = CrashGroupOf(k);
      key.api_key = "sk";
      ASSERT_TRUE((*store)->CreateKey(key).ok());
    }
  }
  const std::string helper = HelperPath();
  ASSERT_TRUE(std::filesystem::exists(helper)) << helper;
  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  uint64_t last_epoch = 0;
  int rounds_with_progress = 0;
  for (int round = 0; round < 12; ++round) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(helper.c_str(), helper.c_str(), db.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    // Wait for the helper's first flush (whatever the build's speed), then kill it at a
    // random moment among the following ones.
    char ready[16] = {};
    ssize_t got = read(out[0], ready, sizeof ready);
    close(out[0]);
    ASSERT_GT(got, 0) << "helper ended before flushing";
    // Not a wait: a random moment to kill at is the point.
    std::this_thread::sleep_for(
        std::chrono::microseconds(std::uniform_int_distribution<int>(0, 300'000)(rng)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "helper exited early with status " << status;

    auto store = Store::Open(db);
    ASSERT_TRUE(store.ok()) << store.status().message();
    uint64_t epoch = (*store)->epoch();
    ASSERT_GE(epoch, last_epoch);
    rounds_with_progress += epoch > last_epoch ? 1 : 0;
    last_epoch = epoch;
    CheckEpoch(**store, epoch);
    if (HasFatalFailure()) {
      return;
    }
  }
  // Every round flushed at least once before its kill.
  EXPECT_EQ(rounds_with_progress, 12) << "last epoch " << last_epoch;
}

}  // namespace
}  // namespace tally::persistence
