// JsonWriter: renders JSON the way Go's encoding/json does, which ez-api clients expect:
// keys in the order written, shortest round-trip floats ("0.8", "1"), HTML-safe string
// escapes, and RFC 3339 times with trimmed nanoseconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Separate();

  std::string out_;
  bool need_comma_ = false;
};

// Go's RFC 3339 rendering of a Unix-nanosecond time in UTC, e.g. "2026-11-26T08:53:40.5Z".
std::string FormatTime(int64_t unix_ns);
// Parses RFC 3339 (with optional fraction and offset) into Unix nanoseconds.
std::optional<int64_t> ParseTime(std::string_view text);

}  // namespace tally::daemon
