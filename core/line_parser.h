// The statsd counter-line parser: a pure function from bytes to per-key increments.
//
// Accepted forms (prefix configurable, default "apikey"; fields after the type in any order,
// each at most once):
//   <prefix>.<key_id>.<success|failure>:<value>[:<value>...]|c[|@<rate>][|#<tags>]
//       [|c:<container>][|T<timestamp>]
//   <prefix>.requests:<value>[:<value>...]|c|#key:<key_id>,outcome:<success|failure>[,...]
// Rules, one LineResult per line:
//   - key_id is 1..2^63-1 and each value 1..2^32-1, in canonical decimal: digits only, no
//     sign, no space, no leading zero ("007" is not 7: another statsd backend would see another
//     metric name). Packed values are summed.
//   - A sample rate of exactly 1 ("1", "1.0", "10e-1") is accepted; a rate strictly between 0
//     and 1 makes the line kRefused (counts here are exact; scaling would estimate); a rate of
//     0, above 1 or unparsable is kMalformed. The rate is compared exactly, not as a double.
//   - In the tag form other tags are ignored; key and outcome must appear exactly once.
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
#include <string_view>

namespace tally::core {

inline constexpr uint64_t kMaxKeyId = (uint64_t{1} << 63) - 1;
inline constexpr uint64_t kMaxLineValue = (uint64_t{1} << 32) - 1;

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
};

// Parses one line, without its '\n'. A trailing '\r' is tolerated. Fills *out only when the
// result is kAccepted.
LineResult ParseLine(std::string_view line, std::string_view prefix, Increment* out);

// Parses every '\n'-separated line of `buffer`; the last line needs no '\n'. Each accepted
// Increment goes to `sink`, a callable `bool(const Increment&)` that answers false when it
// could not take the increment (the line is then counted as refused).
template <typename Sink>
LineCounts ParseBuffer(std::string_view buffer, std::string_view prefix, Sink&& sink) {
  LineCounts counts;
  size_t pos = 0;
  while (pos < buffer.size()) {
    size_t newline = buffer.find('\n', pos);
    size_t end = newline == std::string_view::npos ? buffer.size() : newline;
    Increment inc;
    LineResult r = ParseLine(buffer.substr(pos, end - pos), prefix, &inc);
    if (r == LineResult::kAccepted && !sink(inc)) {
      r = LineResult::kRefused;
    }
    counts.Count(r);
    if (newline == std::string_view::npos) {
      break;
    }
    pos = newline + 1;
  }
  return counts;
}

}  // namespace tally::core
