// The statsd counter-line parser: a pure function from bytes to per-key increments.
//
// Accepted forms (prefix configurable, default "apikey"; fields after the type in any order,
// each at most once):
//   <prefix>.<key_id>.<success|failure>:<value>[:<value>...]|c[|@<rate>][|#<tags>]
//       [|c:<container>][|T<timestamp>]
//   <prefix>.<key_id>.failure.<code>:<value>[:<value>...]|c[|...as above]
//   <prefix>.requests:<value>[:<value>...]|c|#key:<key_id>,outcome:<success|failure>[,...]
// Rules, one LineResult per line:
//   - key_id is 1..2^63-1 and each value 1..2^32-1, in canonical decimal: digits only, no
//     sign, no space, no leading zero ("007" is not 7: another statsd backend would see another
//     metric name). Packed values are summed.
//   - A sample rate is <digits>[.<digits>][e[+-]<digits>], at most kMaxRateChars characters
//     after the '@'. Exactly 1 ("1", "1.0", "10e-1") is accepted; strictly between 0 and 1
//     makes the line kRefused (counts here are exact; scaling would estimate); 0, above 1,
//     longer than kMaxRateChars or unparsable is kMalformed. The value is compared exactly
//     (decimal digits, no floating point), so the class never depends on rounding.
//   - In the tag form other tags are ignored; key and outcome must appear exactly once.
//   - Failure codes (the ban rule, core/ban_policy.h): a failure may name its HTTP status, as
//     ".failure.<code>" in the name or as a `code:<code>` tag (in either form). A code is
//     exactly three digits, 100..599, and a tag list holds at most one; anything else is
//     kMalformed, as is a name and a tag naming different codes. The line still counts as
//     its value's failures in every total; Increment::code carries the code. On a success
//     line a valid `code:` tag is ignored (gateways tag every line with its status), and
//     "success.<code>" is kMalformed. These lines take ParseLine's path; the common line's
//     fast path (ParseCommonLine) is unchanged.
//   - |c:<container> and |T<digits> (DogStatsD) are tolerated and ignored.
//   - kIgnored: a well-formed "<name>:<anything>|<type>" whose name is not "<prefix>." +
//     something, or whose type (ASCII letters) is not "c"; also DogStatsD events ("_e{") and
//     service checks ("_sc|").
//   - kMalformed: everything else, including any control byte (NUL, tab, DEL...) anywhere
//     in the line, a name with a space, ':' or '|', an empty field, a missing type.
//   - A trailing '\r' is stripped; an empty line is kEmpty (skipped, not counted).
//
// Thread safety: stateless; call from any thread. It never reads outside `buffer` and never
// allocates.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/limits.h"

namespace tally::core {

inline constexpr uint64_t kMaxLineValue = (uint64_t{1} << 32) - 1;
// The longest sample rate, in characters after the '@'. Bounding the spelling is what makes
// the exact comparison cheap: a 1 followed by a million zeros and e-2000000 is not a rate.
inline constexpr size_t kMaxRateChars = 32;

enum class LineResult : uint8_t {
  kAccepted,   // a valid counter line for our prefix; produced an Increment
  kIgnored,    // a valid statsd line that is not ours: another prefix or another type
  kMalformed,  // anything else
  kRefused,    // valid but not countable exactly: sample rate below 1, or no room for the key
  kEmpty,      // an empty line; skipped, not counted
};

struct LineCounts {
  uint64_t accepted = 0;
  uint64_t ignored = 0;
  uint64_t malformed = 0;
  uint64_t refused = 0;

  void Count(LineResult r) {
    switch (r) {
      case LineResult::kAccepted:
        ++accepted;
        break;
      case LineResult::kIgnored:
        ++ignored;
        break;
      case LineResult::kMalformed:
        ++malformed;
        break;
      case LineResult::kRefused:
        ++refused;
        break;
      case LineResult::kEmpty:
        break;
    }
  }
  LineCounts& operator+=(const LineCounts& o) {
    accepted += o.accepted;
    ignored += o.ignored;
    malformed += o.malformed;
    refused += o.refused;
    return *this;
  }
  uint64_t lines() const { return accepted + ignored + malformed + refused; }
  bool operator==(const LineCounts&) const = default;
};

// One accepted line: `successes` or `failures` is the line's value (packed values summed).
struct Increment {
  uint64_t key = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  uint16_t code = 0;  // the HTTP status a failure line names (100..599), 0 when it names none
};

// Parses one line, without its '\n'. A trailing '\r' is tolerated. Fills *out only when the
// result is kAccepted.
LineResult ParseLine(std::string_view line, std::string_view prefix, Increment* out);

namespace detail {

// Whether every byte of `prefix` may stand in a metric name (see ParseLine's rules). Only
// then does ParseBuffer try ParseCommonLine first.
bool PrefixIsNameSafe(std::string_view prefix);

// The line nearly every gateway sends, "<prefix>.<key>.<success|failure>:<value>|c" ended by
// '\n', "\r\n", '\r' at the buffer's end, or the buffer's end, with a key of at most 18
// digits and a value of at most 9, parsed in one pass that also finds the line's end. On a
// match it fills *out, sets *next past the line, and answers true; ParseLine would accept
// the same line with the same increment (tests/unit/core/line_parser_common_test.cc checks
// both on every boundary). Anything else answers false and ParseLine decides. Reads only
// within [p, end).
inline bool ParseCommonLine(const char* p, const char* end, std::string_view prefix, Increment* out,
                            const char** next) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  const size_t n = prefix.size();
  if (static_cast<size_t>(end - p) < n + 1 || std::memcmp(p, prefix.data(), n) != 0 ||
      p[n] != '.') {
    return false;
  }
  p += n + 1;
  const char* key_begin = p;
  uint64_t key = 0;
  while (p < end && digit(*p) && p - key_begin < 19) {
    key = key * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  if (p == key_begin || *key_begin == '0' || p - key_begin > 18 || end - p < 9 || *p != '.') {
    return false;
  }
  bool success = std::memcmp(p + 1, "success:", 8) == 0;
  if (!success && std::memcmp(p + 1, "failure:", 8) != 0) {
    return false;
  }
  p += 9;
  const char* value_begin = p;
  uint64_t value = 0;
  while (p < end && digit(*p) && p - value_begin < 10) {
    value = value * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  if (p == value_begin || *value_begin == '0' || p - value_begin > 9 || end - p < 2 ||
      p[0] != '|' || p[1] != 'c') {
    return false;
  }
  p += 2;
  if (p < end && *p == '\r') {
    ++p;
    if (p < end && *p != '\n') {
      return false;
    }
  }
  if (p < end) {
    if (*p != '\n') {
      return false;
    }
    ++p;
  }
  *next = p;
  *out = {key, success ? value : 0, success ? 0 : value};
  return true;
}

// Canonical decimal (ParseLine's rule for key ids and values): 1-20 digits, no sign, no
// leading zero, within 1..max.
bool ParseCanonicalDecimal(std::string_view s, uint64_t max, uint64_t* out);

// A counter line's parts, for the mapping rules (core/mapping.h): "<name>:<values>|c" and
// the optional fields, by ParseLine's rules except that a value may be 0 (gateways send zero
// deltas). `line` has no '\n' and no trailing '\r'. False when it is not such a line.
struct CounterParts {
  std::string_view name;
  uint64_t sum = 0;
  bool below_one = false;  // a sample rate below 1
  std::string_view tags;   // without the '#'; empty when the line has none
};
bool ParseCounterParts(std::string_view line, CounterParts* out);

}  // namespace detail

// What ParseBuffer does by default with a line ParseLine ignores: it stays ignored.
struct KeepIgnored {
  LineResult operator()(std::string_view, Increment*) const { return LineResult::kIgnored; }
};

// Parses every '\n'-separated line of `buffer`; the last line needs no '\n'. Each accepted
// Increment goes to `sink`, a callable `bool(const Increment&)` that answers false when it
// could not take the increment (the line is then counted as refused). `ignored`, a callable
// `LineResult(std::string_view line, Increment* out)`, is asked about each line ParseLine
// ignores and its answer stands instead (the mapping rules, core/ingest.h).
template <typename Sink, typename Ignored = KeepIgnored>
LineCounts ParseBuffer(std::string_view buffer, std::string_view prefix, Sink&& sink,
                       Ignored&& ignored = Ignored{}) {
  LineCounts counts;
  const bool common_first = !prefix.empty() && detail::PrefixIsNameSafe(prefix);
  const char* p = buffer.data();
  const char* const end = p + buffer.size();
  while (p < end) {
    Increment inc;
    const char* next = end;
    LineResult r = LineResult::kAccepted;
    if (!common_first || !detail::ParseCommonLine(p, end, prefix, &inc, &next)) {
      const auto* newline =
          static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* line_end = newline == nullptr ? end : newline;
      const std::string_view line(p, static_cast<size_t>(line_end - p));
      r = ParseLine(line, prefix, &inc);
      if (r == LineResult::kIgnored) {
        r = ignored(line, &inc);
      }
      next = newline == nullptr ? end : newline + 1;
    }
    if (r == LineResult::kAccepted && !sink(inc)) {
      r = LineResult::kRefused;
    }
    counts.Count(r);
    p = next;
  }
  return counts;
}

}  // namespace tally::core
