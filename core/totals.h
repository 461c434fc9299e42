// Totals: a record's request counts and the rates derived from them.
//
// Rates are computed from the counts whenever they are read, never stored, so they cannot
// disagree with the counts: part / total, 0 when total is 0, a fraction from 0 to 1.
//
// The overflow rule: no total ever passes kMaxCount (2^63-1). Code that adds increments it
// did not produce itself (a flush, a stored value) checks CanAdd() first and refuses what does
// not fit; Add() and the operators are then plain arithmetic on values known to fit, so the
// signed arithmetic never overflows (no undefined behaviour).
#pragma once

#include <cstdint>
#include <limits>

#include "core/limits.h"

namespace tally::core {

// The largest count a total may hold, 2^63-1 (core/limits.h).
inline constexpr int64_t kMaxCount = kMaxInt64;

// a + b, or UINT64_MAX where that would overflow: for counting refused or dropped increments
// (exact below 2^64).
inline uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

struct Totals {
  int64_t total = 0;
  int64_t success = 0;
  int64_t failure = 0;

  // Precondition: the result fits (CanAdd, or a subtraction of totals already included).
  void Add(int64_t successes, int64_t failures) {
    success += successes;
    failure += failures;
    total += successes + failures;
  }
  Totals& operator+=(const Totals& o) {
    Add(o.success, o.failure);
    return *this;
  }
  Totals& operator-=(const Totals& o) {
    Add(-o.success, -o.failure);
    return *this;
  }
  bool operator==(const Totals&) const = default;
  // Non-negative parts that add up to the total (checked without overflow).
  bool consistent() const {
    return success >= 0 && failure >= 0 && success <= kMaxCount - failure &&
           total == success + failure;
  }

  // Whether adding `successes` and `failures` keeps every count within 0..kMaxCount. For any
  // arguments, without overflow. Precondition: consistent() (so success, failure <= total,
  // and only the total needs checking).
  bool CanAdd(uint64_t successes, uint64_t failures) const {
    const uint64_t room = static_cast<uint64_t>(kMaxCount - total);
    return successes <= room && failures <= room - successes;
  }
  // As CanAdd(o.success, o.failure) for a consistent `o`.
  bool CanAdd(const Totals& o) const {
    return CanAdd(static_cast<uint64_t>(o.success), static_cast<uint64_t>(o.failure));
  }

  double success_rate() const {
    return total == 0 ? 0.0 : static_cast<double>(success) / static_cast<double>(total);
  }
  double failure_rate() const {
    return total == 0 ? 0.0 : static_cast<double>(failure) / static_cast<double>(total);
  }
};

}  // namespace tally::core
