// DeltaBatch: committed per-key deltas on their way to an upstream (a central tallyd or
// PostgreSQL), numbered by the host that committed them.
//
// A batch carries the sequences [first_sequence, last_sequence] of its source: one flush's
// deltas (first == last), or several flushes that were never sent, merged (deltas added per
// key). A receiver keeps the highest sequence it applied per source (its high-water mark):
// a batch whose last_sequence is at or below it was applied before and is skipped whole;
// otherwise it is applied whole and the mark becomes last_sequence, in the same commit.
// Sending batches one at a time, in order, and never merging a batch that was sent even
// once, keeps first_sequence above the mark of every receiver that has not applied it.
// A plain value type; no thread-safety concerns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/key_delta.h"

namespace tally::core {

struct DeltaBatch {
  std::string source;  // the committing host's id (--source-id), 1..128 bytes
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  std::vector<KeyDelta> deltas;  // in key order, each key at most once
  bool operator==(const DeltaBatch&) const = default;
};

}  // namespace tally::core
