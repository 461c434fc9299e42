// IngestBuffer: parse a datagram or request body straight into the counter table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/counter_table.h"
#include "core/failure_codes.h"
#include "core/line_parser.h"
#include "core/mapping.h"

namespace tally::core {

// Lines the table refuses (no room for a new key) are counted as refused.
//
// Increments are added in batches of up to kIngestBatch with CounterTable::AddBatch, which
// prefetches the batch's home buckets before adding, so that their cache misses overlap
// (docs/architecture.md, "The counter table").
inline constexpr size_t kIngestBatch = 64;

// `ignored` as in ParseBuffer: what becomes of a line the own-protocol parser ignores.
// `codes`, when given, receives the failures whose code it wants (core/failure_codes.h),
// before they are added to the table; lines without a code pay one compare. Mapped lines
// (below) carry their code too.
template <typename Ignored = KeepIgnored>
inline LineCounts IngestBufferWith(std::string_view buffer, std::string_view prefix,
                                   CounterTable& table, FailureCodes* codes,
                                   Ignored&& ignored = Ignored{}) {
  Increment batch[kIngestBatch];
  size_t pending = 0;
  uint64_t refused = 0;
  LineCounts counts = ParseBuffer(
      buffer, prefix,
      [&](const Increment& inc) {
        if (inc.code != 0 && codes != nullptr && codes->Wants(inc.code)) {
          codes->Add(inc.key, inc.code, inc.failures);
        }
        batch[pending++] = inc;
        if (pending == kIngestBatch) {
          refused += table.AddBatch(batch, pending);
          pending = 0;
        }
        return true;  // refusals are moved from accepted to refused below
      },
      ignored);
  refused += table.AddBatch(batch, pending);
  counts.accepted -= refused;
  counts.refused += refused;
  return counts;
}

// Lines of tallyd's own protocol only.
inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table, FailureCodes* codes = nullptr) {
  return IngestBufferWith(buffer, prefix, table, codes);
}

// With mapping rules (core/mapping.h; null: none): lines of tallyd's own protocol are parsed
// first, and only the lines it ignores go through `mapping`, counted per rule in *mapped.
inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table, const Mapping* mapping, MappedCounts* mapped,
                               FailureCodes* codes = nullptr) {
  if (mapping == nullptr) {
    return IngestBufferWith(buffer, prefix, table, codes);
  }
  return IngestBufferWith(buffer, prefix, table, codes,
                          [mapping, mapped](std::string_view line, Increment* inc) {
                            return mapping->Map(line, inc, mapped);
                          });
}

}  // namespace tally::core
