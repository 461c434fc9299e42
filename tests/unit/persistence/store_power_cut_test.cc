// Durability against a power cut, which kill -9 cannot test (the kernel keeps the page
// cache, so a store writing with sync=false passes every SIGKILL test): the store runs over
// PowerCutFs, which at a simulated cut throws away everything not synced. Every flush and
// admin change the Store reported committed must be there after the cut and a reopen.
// With the store's write changed to sync=false this test fails (docs/reliability.md).
#include <gtest/gtest.h>

#include "persistence/store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/persistence/crash_check.h"
#include "tests/unit/persistence/power_cut_fs.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using testing::CrashDeltas;
using testing::ExpectCrashEpoch;
using testing::PowerCutEnv;
using testing::TempDir;

constexpr int kRounds = 4;
constexpr uint64_t kFlushesPerRound = 25;

TEST(StorePowerCut, EveryCommittedFlushAndChangeSurvivesAPowerCut) {
  TempDir dir;
  PowerCutEnv power;
  StoreOptions opts;
  opts.env = power.env.get();
  const std::string db = dir.Sub("db");
  uint64_t epoch = 0;
  for (int round = 0; round <= kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto opened = Store::Open(db, opts);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    std::unique_ptr<Store> store = std::move(*opened);
    // Everything committed before the last cut is there.
    ExpectCrashEpoch(*store, epoch);
    ASSERT_EQ(store->live_groups(), static_cast<size_t>(round));
    if (HasFatalFailure() || round == kRounds) {
      return;
    }
    ASSERT_TRUE(store->CreateGroup(TestGroup(round + 1)).ok());
    for (uint64_t i = 0; i < kFlushesPerRound; ++i) {
      if (round == 2 && i == kFlushesPerRound / 2) {
        // Memtables to SST files, a new MANIFEST entry and a new WAL: durable or not,
        // the later flushes must be too.
        ASSERT_TRUE(store->Compact().ok());
      }
      std::vector<core::KeyDelta> d = CrashDeltas(epoch + 1);
      auto r = store->ApplyFlush(&d);
      ASSERT_TRUE(r.ok()) << r.status().message();
      epoch = r->epoch;
    }
    // The cut: nothing more reaches the disk, the store goes away, and what was not
    // synced is lost.
    power.fs->CutPower();
    store.reset();
    power.fs->LoseUnsynced();
  }
}

}  // namespace
}  // namespace tally::persistence
