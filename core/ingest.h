// IngestBuffer: parse a datagram or request body straight into the counter table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/counter_table.h"
#include "core/failure_codes.h"
#include "core/line_parser.h"

namespace tally::core {

// Lines the table refuses (no room for a new key) are counted as refused.
//
// Increments are added in batches of up to kIngestBatch with CounterTable::AddBatch, which
// prefetches the batch's home buckets before adding, so that their cache misses overlap
// (docs/architecture.md, "The counter table").
inline constexpr size_t kIngestBatch = 64;

//
// `codes`, when given, receives the failures whose code it wants (core/failure_codes.h),
// before they are added to the table; lines without a code pay one compare.
inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table, FailureCodes* codes = nullptr) {
  Increment batch[kIngestBatch];
  size_t pending = 0;
  uint64_t refused = 0;
  LineCounts counts = ParseBuffer(buffer, prefix, [&](const Increment& inc) {
    if (inc.code != 0 && codes != nullptr && codes->Wants(inc.code)) {
      codes->Add(inc.key, inc.code, inc.failures);
    }
    batch[pending++] = inc;
    if (pending == kIngestBatch) {
      refused += table.AddBatch(batch, pending);
      pending = 0;
    }
    return true;  // refusals are moved from accepted to refused below
  });
  refused += table.AddBatch(batch, pending);
  counts.accepted -= refused;
  counts.refused += refused;
  return counts;
}

}  // namespace tally::core
