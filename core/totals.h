// Totals: a record's request counts and the rates derived from them.
//
// Rates are computed from the counts whenever they are read, never stored, so they cannot
// disagree with the counts: part / total, 0 when total is 0, a fraction from 0 to 1.
#pragma once

#include <cstdint>

namespace tally::core {

struct Totals {
  int64_t total = 0;
  int64_t success = 0;
  int64_t failure = 0;

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
  bool consistent() const { return total == success + failure && success >= 0 && failure >= 0; }

  double success_rate() const {
    return total == 0 ? 0.0 : static_cast<double>(success) / static_cast<double>(total);
  }
  double failure_rate() const {
    return total == 0 ? 0.0 : static_cast<double>(failure) / static_cast<double>(total);
  }
};

}  // namespace tally::core
