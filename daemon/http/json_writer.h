// JsonWriter: renders JSON the way Go's encoding/json does, which ez-api clients expect:
// keys in the order written, shortest round-trip floats ("0.8", "1"), HTML-safe string
// escapes, and RFC 3339 times with trimmed nanoseconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/offset_time.h"

namespace tally::daemon {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Unix nanoseconds as RFC 3339 UTC (Go's time.Time), or null.
  JsonWriter& Time(std::optional<int64_t> unix_ns);
  // FormatTime(*t), or null. Precondition: t->Valid().
  JsonWriter& Time(const std::optional<core::OffsetTime>& t);

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Separate();

  std::string out_;
  bool need_comma_ = false;
};

// Go's rendering of a time.Time in JSON (MarshalJSON: RFC 3339 with the fraction's trailing
// zeros removed), at the time's own offset: "2026-11-26T08:53:40.5Z", "0000-01-01T00:00:00+14:00"
// ("Z" for offset 0). Precondition: t.Valid() (as ParseTime and the codec guarantee).
std::string FormatTime(const core::OffsetTime& t);
// The same for a Unix-nanosecond time, at UTC.
std::string FormatTime(int64_t unix_ns);
// Parses a time as Go's time.Parse(time.RFC3339Nano, text) does (its parseRFC3339 grammar:
// upper-case 'T' and 'Z', years 0000-9999, no leap second 23:59:60, a fraction of any length
// truncated to nanoseconds, offsets up to +-23:59), keeping the offset as Go does. nullopt
// exactly when Go refuses it; every time it accepts is Valid() and renders back as Go would.
std::optional<core::OffsetTime> ParseTime(std::string_view text);
// The length of the valid UTF-8 sequence at s[i], as Go's utf8.DecodeRune reads it, or 0
// when the byte there starts none (Go then reads it as U+FFFD, one byte long).
size_t Utf8SequenceLength(std::string_view s, size_t i);

}  // namespace tally::daemon
