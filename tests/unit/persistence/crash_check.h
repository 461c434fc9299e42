// Checks a store reopened after a crash, a damaged WAL or a power cut against the crash
// workload (crash_workload.h): it holds exactly the flushes of epochs 1..epoch.
#pragma once

#include <gtest/gtest.h>

#include <map>

#include "persistence/store.h"
#include "tests/unit/persistence/crash_workload.h"

namespace tally::testing {

// The store is at `epoch`, every key's totals equal those of CrashDeltas(1..epoch), the
// summary is their sum, and Verify() holds.
inline void ExpectCrashEpoch(persistence::Store& store, uint64_t epoch) {
  ASSERT_EQ(store.epoch(), epoch);
  std::map<uint64_t, core::Totals> keys;
  for (uint64_t e = 1; e <= epoch; ++e) {
    for (const core::KeyDelta& d : CrashDeltas(e)) {
      keys[d.key].Add(static_cast<int64_t>(d.successes), static_cast<int64_t>(d.failures));
    }
  }
  core::Totals all;
  for (const auto& [id, t] : keys) {
    auto k = store.GetKey(id);
    ASSERT_TRUE(k.ok()) << "key " << id << " missing at epoch " << epoch;
    EXPECT_EQ(k->totals, t) << "key " << id;
    all += t;
  }
  EXPECT_EQ(store.Summary(), all);
  core::Status v = store.Verify();
  EXPECT_TRUE(v.ok()) << v.message();
}

}  // namespace tally::testing
