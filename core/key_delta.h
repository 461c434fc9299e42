// KeyDelta: what one key gained since the last drain of the counter table.
//
// The unit of a flush: the counter table produces them (CounterTable::Drain), the store
// applies them (Store::ApplyFlush). A plain value type; no thread-safety concerns.
#pragma once

#include <cstdint>

namespace tally::core {

struct KeyDelta {
  uint64_t key = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  bool operator==(const KeyDelta&) const = default;
};

}  // namespace tally::core
