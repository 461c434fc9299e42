// The crash test's workload, shared by the test and the helper it SIGKILLs: which groups
// and keys exist before the helper starts, and the deltas of each flush epoch. The test
// recomputes the expected totals of any epoch from it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/counter_table.h"

namespace tally::testing {

inline constexpr uint64_t kCrashGroups = 5;
inline constexpr uint64_t kCrashAssignedKeys = 100;  // keys 1..100, in groups 1..5
inline constexpr uint64_t kCrashKeySpace = 400;      // keys 101..400 appear as unknown keys

inline uint64_t CrashGroupOf(uint64_t key) {
  return key <= kCrashAssignedKeys ? key % kCrashGroups + 1 : 0;
}

inline std::vector<core::KeyDelta> CrashDeltas(uint64_t epoch) {
  std::vector<core::KeyDelta> out;
  for (uint64_t i = 0; i < 200; ++i) {
    out.push_back(
        {(epoch * 37 + i * 101) % kCrashKeySpace + 1, (epoch + i) % 4 + 1, (epoch * i) % 3});
  }
  return out;
}

}  // namespace tally::testing
