// IngestBuffer: parse a datagram or request body straight into the counter table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/counter_table.h"
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
template <typename Ignored = KeepIgnored>
inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table, Ignored&& ignored = Ignored{}) {
  Increment batch[kIngestBatch];
  size_t pending = 0;
  uint64_t refused = 0;
  LineCounts counts = ParseBuffer(
      buffer, prefix,
      [&](const Increment& inc) {
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

// With mapping rules (core/mapping.h; null: none): lines of tallyd's own protocol are parsed
// first, and only the lines it ignores go through `mapping`, counted per rule in *mapped.
inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table, const Mapping* mapping, MappedCounts* mapped) {
  if (mapping == nullptr) {
    return IngestBuffer(buffer, prefix, table);
  }
  return IngestBuffer(buffer, prefix, table,
                      [mapping, mapped](std::string_view line, Increment* inc) {
                        return mapping->Map(line, inc, mapped);
                      });
}

}  // namespace tally::core
