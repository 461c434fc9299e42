// KeyDelta: what one key gained since the last drain of the counter table.
//
// The unit of a flush: the counter table produces them (CounterTable::Drain), the store
// applies them (Store::ApplyFlush). A plain value type; no thread-safety concerns.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/totals.h"

namespace tally::core {

struct KeyDelta {
  uint64_t key = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  bool operator==(const KeyDelta&) const = default;
};

// Sorts `deltas` by key and merges the entries of a key into one, so each key appears once.
// A merged count saturates at 2^64-1 (far past what any total can take).
inline void SortAndMergeDeltas(std::vector<KeyDelta>* deltas) {
  std::sort(deltas->begin(), deltas->end(),
            [](const KeyDelta& a, const KeyDelta& b) { return a.key < b.key; });
  size_t merged = 0;
  for (size_t i = 0; i < deltas->size(); ++i) {
    if (merged > 0 && (*deltas)[merged - 1].key == (*deltas)[i].key) {
      KeyDelta& into = (*deltas)[merged - 1];
      into.successes = SaturatingAdd(into.successes, (*deltas)[i].successes);
      into.failures = SaturatingAdd(into.failures, (*deltas)[i].failures);
    } else {
      (*deltas)[merged++] = (*deltas)[i];
    }
  }
  deltas->resize(merged);
}

}  // namespace tally::core
