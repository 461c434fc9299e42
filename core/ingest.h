// IngestBuffer: parse a datagram or request body straight into the counter table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/counter_table.h"
#include "core/line_parser.h"

namespace tally::core {

// Lines the table refuses (no room for a new key) are counted as refused.
//
// Increments are added in batches of up to kIngestBatch: parsing a line starts loading its
// key's bucket (CounterTable::Prefetch), and the batch is added once parsed, so the adds
// find their lines in cache instead of each waiting for memory in turn (the locked add of one
// increment would otherwise hold back the lookup of the next; docs/performance.md).
inline constexpr size_t kIngestBatch = 64;

inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table) {
  Increment batch[kIngestBatch];
  size_t pending = 0;
  uint64_t refused = 0;
  auto add_pending = [&] {
    for (size_t i = 0; i < pending; ++i) {
      refused += table.Add(batch[i].key, batch[i].successes, batch[i].failures) ? 0 : 1;
    }
    pending = 0;
  };
  LineCounts counts = ParseBuffer(buffer, prefix, [&](const Increment& inc) {
    table.Prefetch(inc.key);
    batch[pending++] = inc;
    if (pending == kIngestBatch) {
      add_pending();
    }
    return true;  // refusals are moved from accepted to refused below
  });
  add_pending();
  counts.accepted -= refused;
  counts.refused += refused;
  return counts;
}

}  // namespace tally::core
