// IngestBuffer: parse a datagram or request body straight into the counter table.
#pragma once

#include <string_view>

#include "core/counter_table.h"
#include "core/line_parser.h"

namespace tally::core {

// Lines the table refuses (no room for a new key) are counted as refused.
inline LineCounts IngestBuffer(std::string_view buffer, std::string_view prefix,
                               CounterTable& table) {
  return ParseBuffer(buffer, prefix, [&table](const Increment& inc) {
    return table.Add(inc.key, inc.successes, inc.failures);
  });
}

}  // namespace tally::core
