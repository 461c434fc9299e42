// Limits shared by every layer: the one definition of 2^63-1.
//
// Ids (of keys and groups) and counts are signed 64-bit in ez-api's model (gorm's int64
// primary keys, Go's int64 counters), so both stop at 2^63-1. The uint64_t form is for code
// that parses or stores ids unsigned.
#pragma once

#include <cstdint>
#include <limits>

namespace tally::core {

// 2^63-1, the largest signed 64-bit value.
inline constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
// The largest id a key or a group may have; ids are 1..kMaxId (0 is "none" / unassigned).
inline constexpr uint64_t kMaxId = static_cast<uint64_t>(kMaxInt64);

}  // namespace tally::core
