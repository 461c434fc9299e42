// OffsetTime: an instant and the fixed UTC offset it was written with, i.e. what Go's
// time.Time carries through JSON (time.Parse(time.RFC3339Nano) in, MarshalJSON out). It holds
// Go's whole RFC 3339 range: local dates 0000-01-01 to 9999-12-31, nanoseconds, offsets up to
// +-23:59. Unix nanoseconds in an int64 cannot (they span 1677-09-21 to 2262-04-11).
//
// operator== compares the representation (same instant AND same offset: the same text);
// compare instants with SameInstant. Plain value; thread-compatible.
#pragma once

#include <cstdint>

namespace tally::core {

struct OffsetTime {
  // The instant: seconds since 1970-01-01T00:00:00Z (negative before), plus `nanos`.
  int64_t unix_seconds = 0;
  uint32_t nanos = 0;  // 0 to 999'999'999
  // Minutes east of UTC, -1439 to 1439 (+-23:59); 0 is rendered "Z".
  int16_t offset_minutes = 0;

  bool operator==(const OffsetTime&) const = default;

  // The wall-clock seconds at the offset (the date and time the text shows), since 1970.
  int64_t local_seconds() const { return unix_seconds + int64_t{offset_minutes} * 60; }

  // True when Go's MarshalJSON can render it: nanos and offset in range, the local date
  // within years 0000 to 9999.
  bool Valid() const;

  // A Unix-nanosecond instant, at UTC.
  static OffsetTime FromUnixNs(int64_t unix_ns);
};

inline constexpr int64_t kNanosPerSecond = 1'000'000'000;
inline constexpr int kMaxOffsetMinutes = 23 * 60 + 59;
// Local seconds of 0000-01-01T00:00:00 and 9999-12-31T23:59:59 (proleptic Gregorian).
inline constexpr int64_t kMinLocalSeconds = -62'167'219'200;
inline constexpr int64_t kMaxLocalSeconds = 253'402'300'799;

inline bool SameInstant(const OffsetTime& a, const OffsetTime& b) {
  return a.unix_seconds == b.unix_seconds && a.nanos == b.nanos;
}

inline bool OffsetTime::Valid() const {
  return nanos < kNanosPerSecond && offset_minutes >= -kMaxOffsetMinutes &&
         offset_minutes <= kMaxOffsetMinutes && local_seconds() >= kMinLocalSeconds &&
         local_seconds() <= kMaxLocalSeconds;
}

inline OffsetTime OffsetTime::FromUnixNs(int64_t unix_ns) {
  int64_t seconds = unix_ns / kNanosPerSecond;
  int64_t nanos = unix_ns % kNanosPerSecond;
  if (nanos < 0) {  // floor, so that nanos is never negative
    --seconds;
    nanos += kNanosPerSecond;
  }
  return {seconds, static_cast<uint32_t>(nanos), 0};
}

}  // namespace tally::core
