#include "daemon/http/json_writer.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace tally::daemon {

void JsonWriter::Separate() {
  if (need_comma_) {
    out_.push_back(',');
  }
  need_comma_ = true;
}

JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_.push_back('{');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_.push_back('}');
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_.push_back('[');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_.push_back(']');
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  String(key);
  out_.push_back(':');
  need_comma_ = false;
  return *this;
}

namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 if it is not one (Go replaces each
// invalid byte with U+FFFD).
size_t Utf8Length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (c < 0x80) {
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) {
      return 0;
    }
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) {
      return 0;  // overlong, or a UTF-16 surrogate
    }
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) {
      return 0;
    }
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) {
      return 0;
    }
    return 4;
  }
  return 0;
}

}  // namespace

size_t Utf8SequenceLength(std::string_view s, size_t i) { return Utf8Length(s, i); }

JsonWriter& JsonWriter::String(std::string_view value) {
  Separate();
  static constexpr char kHex[] = "0123456789abcdef";
  out_.push_back('"');
  for (size_t i = 0; i < value.size();) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      size_t n = Utf8Length(value, i);
      if (n == 0) {
        out_ += "\\ufffd";
        ++i;
      } else if (n == 3 && c == 0xE2 && static_cast<unsigned char>(value[i + 1]) == 0x80 &&
                 (static_cast<unsigned char>(value[i + 2]) & 0xFE) == 0xA8) {
        // U+2028 and U+2029, which Go escapes for JavaScript.
        out_ += (static_cast<unsigned char>(value[i + 2]) == 0xA8) ? "\\u2028" : "\\u2029";
        i += 3;
      } else {
        out_.append(value.data() + i, n);
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      case '\b':
        out_ += "\\b";  // Go 1.22 and later
        break;
      case '\f':
        out_ += "\\f";
        break;
      default:
        // Control characters, and <, >, & as Go escapes them for HTML safety.
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          out_ += "\\u00";
          out_.push_back(kHex[c >> 4]);
          out_.push_back(kHex[c & 15]);
        } else {
          out_.push_back(static_cast<char>(c));
        }
    }
  }
  out_.push_back('"');
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  Separate();
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t value) {
  Separate();
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  Separate();
  if (!std::isfinite(value)) {
    out_ += "0";
    return *this;
  }
  char buf[64];
  // Go: shortest fixed notation for 1e-6 <= |v| < 1e21, else shortest scientific.
  double magnitude = std::fabs(value);
  bool fixed = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e21);
  auto result = std::to_chars(buf, buf + sizeof buf, value,
                              fixed ? std::chars_format::fixed : std::chars_format::scientific);
  size_t n = static_cast<size_t>(result.ptr - buf);
  // Go writes a one-digit exponent without its leading zero: "1e-07" becomes "1e-7".
  if (!fixed && n >= 4 && buf[n - 4] == 'e' && buf[n - 3] == '-' && buf[n - 2] == '0') {
    buf[n - 2] = buf[n - 1];
    --n;
  }
  out_.append(buf, n);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  Separate();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::Time(std::optional<int64_t> unix_ns) {
  if (!unix_ns) {
    return Null();
  }
  return String(FormatTime(*unix_ns));
}

JsonWriter& JsonWriter::Time(const std::optional<core::OffsetTime>& t) {
  if (!t) {
    return Null();
  }
  return String(FormatTime(*t));
}

std::string FormatTime(const core::OffsetTime& t) {
  using namespace std::chrono;
  // The date and time shown are the local ones, at the time's offset (as Go's absDate).
  const int64_t local = t.local_seconds();
  int64_t days_since_epoch = local / 86400;
  int64_t second_of_day = local % 86400;
  if (second_of_day < 0) {
    --days_since_epoch;
    second_of_day += 86400;
  }
  year_month_day ymd{sys_days(days(days_since_epoch))};
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", int(ymd.year()),
                        unsigned(ymd.month()), unsigned(ymd.day()), int(second_of_day / 3600),
                        int(second_of_day / 60 % 60), int(second_of_day % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (t.nanos != 0) {
    n = std::snprintf(buf, sizeof buf, ".%09u", static_cast<unsigned>(t.nanos));
    while (buf[n - 1] == '0') {
      --n;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  if (t.offset_minutes == 0) {
    out += "Z";
  } else {
    const int minutes = t.offset_minutes < 0 ? -t.offset_minutes : t.offset_minutes;
    n = std::snprintf(buf, sizeof buf, "%c%02d:%02d", t.offset_minutes < 0 ? '-' : '+',
                      minutes / 60, minutes % 60);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string FormatTime(int64_t unix_ns) {
  return FormatTime(core::OffsetTime::FromUnixNs(unix_ns));
}

std::optional<core::OffsetTime> ParseTime(std::string_view s) {
  // Go's parseRFC3339 (time/format_rfc3339.go), the grammar time.Parse(time.RFC3339Nano)
  // and Time.UnmarshalJSON accept: "YYYY-MM-DDThh:mm:ss[.f...](Z|+hh:mm|-hh:mm)", upper-case
  // 'T' and 'Z' only, year 0000-9999, a day that exists in that month (proleptic Gregorian),
  // hour 00-23, minute and second 00-59 (no leap second), any number of fraction digits
  // (truncated to nanoseconds), an offset up to 23:59.
  using namespace std::chrono;
  auto num = [&](size_t pos, size_t len, int min, int max, int* out) {
    if (pos + len > s.size()) {
      return false;
    }
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') {
        return false;
      }
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v >= min && v <= max;
  };
  int y, mo, d, h, mi, sec;
  if (s.size() < 20 || !num(0, 4, 0, 9999, &y) || s[4] != '-' || !num(5, 2, 1, 12, &mo) ||
      s[7] != '-' || !num(8, 2, 1, 31, &d) || s[10] != 'T' || !num(11, 2, 0, 23, &h) ||
      s[13] != ':' || !num(14, 2, 0, 59, &mi) || s[16] != ':' || !num(17, 2, 0, 59, &sec)) {
    return std::nullopt;
  }
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok()) {
    return std::nullopt;  // 02-30, or 02-29 outside a leap year
  }
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos + 1 < s.size() && s[pos] == '.' && s[pos + 1] >= '0' && s[pos + 1] <= '9') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 9) {
        frac_ns = frac_ns * 10 + (s[pos] - '0');
      }
      ++digits;
      ++pos;
    }
    for (int i = digits; i < 9; ++i) {
      frac_ns *= 10;
    }
  }
  std::string_view zone = s.substr(pos);
  int64_t offset_s = 0;
  if (zone != "Z") {
    int oh, om;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' ||
        !num(pos + 1, 2, 0, 23, &oh) || !num(pos + 4, 2, 0, 59, &om)) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (zone[0] == '-' ? -1 : 1);
  }
  // Years 0000-9999 and offsets of +-23:59 fit in int64 seconds with room to spare.
  const int64_t local =
      int64_t{sys_days(ymd).time_since_epoch().count()} * 86400 + h * 3600 + mi * 60 + sec;
  core::OffsetTime t{local - offset_s, static_cast<uint32_t>(frac_ns),
                     static_cast<int16_t>(offset_s / 60)};
  return t;
}

}  // namespace tally::daemon
