#include "core/line_parser.h"

#include <algorithm>
#include <cstring>

namespace tally::core {
namespace {

// A control byte (C0 or DEL) makes a line malformed wherever it sits: NUL, tab, a stray '\r'.
constexpr bool IsControl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

// Bytes a metric name may hold: anything but control bytes, space, ':' and '|'. Bytes from
// 0x80 up pass, so UTF-8 names of other metrics are merely ignored.
constexpr bool IsNameByte(char c) { return !IsControl(c) && c != ' ' && c != ':' && c != '|'; }

constexpr bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool HasControl(std::string_view s) { return std::any_of(s.begin(), s.end(), IsControl); }

// Canonical decimal: 1-20 digits, no sign, no space, no leading zero; value in [1, max].
bool ParseDecimal(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20 || s[0] == '0') {
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) {
      return false;
    }
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (max - digit) / 10) {
      return false;
    }
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

enum class Rate { kOne, kBelowOne, kInvalid };

// A sample rate, classified exactly (no floating point): <digits>[.<digits>][e[+-]<digits>]
// with at least one mantissa digit, kMaxRateChars at most. Exactly 1 is kOne; strictly
// between 0 and 1 is kBelowOne; 0, above 1, longer or anything unparsable is kInvalid.
Rate ParseRate(std::string_view s) {
  if (s.size() > kMaxRateChars) {
    return Rate::kInvalid;
  }
  size_t i = 0;
  size_t whole_begin = i;
  while (i < s.size() && IsDigit(s[i])) {
    ++i;
  }
  size_t whole_end = i;
  size_t frac_begin = i;
  size_t frac_end = i;
  if (i < s.size() && s[i] == '.') {
    frac_begin = ++i;
    while (i < s.size() && IsDigit(s[i])) {
      ++i;
    }
    frac_end = i;
  }
  if (whole_end == whole_begin && frac_end == frac_begin) {
    return Rate::kInvalid;
  }
  int64_t exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      negative = s[i] == '-';
      ++i;
    }
    size_t exp_begin = i;
    while (i < s.size() && IsDigit(s[i])) {
      // Saturating is exact: the mantissa has fewer than kMaxRateChars digits, so its
      // magnitude lies within +-kMaxRateChars and an exponent of 1000 or more decides alone.
      exponent = std::min<int64_t>(exponent * 10 + (s[i] - '0'), 1000);
      ++i;
    }
    if (i == exp_begin) {
      return Rate::kInvalid;
    }
    exponent = negative ? -exponent : exponent;
  }
  if (i != s.size()) {
    return Rate::kInvalid;
  }
  // value = 0.d1 d2 d3... x 10^magnitude, d1 the first non-zero mantissa digit.
  std::string_view whole = s.substr(whole_begin, whole_end - whole_begin);
  std::string_view frac = s.substr(frac_begin, frac_end - frac_begin);
  size_t lead = whole.find_first_not_of('0');
  int64_t magnitude = 0;
  std::string_view rest;  // the mantissa digits after d1
  if (lead != std::string_view::npos) {
    magnitude = static_cast<int64_t>(whole.size() - lead);
    if (whole[lead] != '1') {
      return magnitude + exponent > 0 ? Rate::kInvalid : Rate::kBelowOne;
    }
    rest = whole.substr(lead + 1);
  } else {
    size_t frac_lead = frac.find_first_not_of('0');
    if (frac_lead == std::string_view::npos) {
      return Rate::kInvalid;  // zero
    }
    magnitude = -static_cast<int64_t>(frac_lead);
    if (frac[frac_lead] != '1') {
      return magnitude + exponent > 0 ? Rate::kInvalid : Rate::kBelowOne;
    }
    frac = frac.substr(frac_lead + 1);
  }
  magnitude += exponent;
  if (magnitude <= 0) {
    return Rate::kBelowOne;
  }
  if (magnitude > 1) {
    return Rate::kInvalid;
  }
  // 1.xxx: exactly one only if every later digit is zero.
  bool rest_zero = rest.find_first_not_of('0') == std::string_view::npos &&
                   frac.find_first_not_of('0') == std::string_view::npos;
  return rest_zero ? Rate::kOne : Rate::kInvalid;
}

enum class Outcome { kSuccess, kFailure, kInvalid };

Outcome ParseOutcome(std::string_view s) {
  if (s == "success") {
    return Outcome::kSuccess;
  }
  if (s == "failure") {
    return Outcome::kFailure;
  }
  return Outcome::kInvalid;
}

// A failure's HTTP status: exactly three digits, 100..599.
bool ParseCode(std::string_view s, uint16_t* code) {
  if (s.size() != 3 || s[0] < '1' || s[0] > '5' || !IsDigit(s[1]) || !IsDigit(s[2])) {
    return false;
  }
  *code = static_cast<uint16_t>((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
  return true;
}

// The tags ParseLine reads out of a DogStatsD tag list; other tags are skipped.
struct Tags {
  uint64_t key = 0;
  Outcome outcome = Outcome::kInvalid;
  uint16_t code = 0;  // 0: no code tag
  bool have_key = false;
  bool have_outcome = false;
};

// One pass over the tags: `code:<status>` (at most once, 100..599) always; `key:<id>` and
// `outcome:<...>` (each at most once) only when `key_and_outcome` (the "requests" form; the
// name form ignores them).
bool ScanTags(std::string_view tags, bool key_and_outcome, Tags* out) {
  bool have_code = false;
  while (true) {
    size_t comma = tags.find(',');
    std::string_view tag = tags.substr(0, comma);
    if (key_and_outcome && tag.starts_with("key:")) {
      if (out->have_key || !ParseDecimal(tag.substr(4), kMaxId, &out->key)) {
        return false;
      }
      out->have_key = true;
    } else if (key_and_outcome && tag.starts_with("outcome:")) {
      if (out->have_outcome) {
        return false;
      }
      out->outcome = ParseOutcome(tag.substr(8));
      out->have_outcome = true;
    } else if (tag.starts_with("code:")) {
      if (have_code || !ParseCode(tag.substr(5), &out->code)) {
        return false;
      }
      have_code = true;
    }
    if (comma == std::string_view::npos) {
      return true;
    }
    tags.remove_prefix(comma + 1);
  }
}

// A statsd type: one or more ASCII letters.
bool ValidType(std::string_view t) {
  if (t.empty()) {
    return false;
  }
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
      return false;
    }
  }
  return true;
}

// DogStatsD events (`_e{...}`) and service checks (`_sc|...`) share statsd streams; they are
// not metrics, so they are ignored rather than malformed.
bool IsEventOrServiceCheck(std::string_view line) {
  return line.starts_with("_e{") || line.starts_with("_sc|");
}

// The optional fields after the type: each at most once, in any order.
struct Fields {
  bool below_one = false;  // a sample rate below 1
  bool have_tags = false;
  std::string_view tags;  // without the '#'
};

// Optional fields, each at most once, in any order: sample rate, tags, DogStatsD container
// and timestamp. `fields` is what follows the type's '|'; false when malformed.
bool ParseFields(std::string_view fields, Fields* out) {
  bool have_rate = false;
  bool have_container = false;
  bool have_timestamp = false;
  bool more = true;
  while (more) {
    size_t next = fields.find('|');
    std::string_view field = fields.substr(0, next);
    more = next != std::string_view::npos;
    fields = more ? fields.substr(next + 1) : std::string_view();
    if (field.empty()) {
      return false;
    }
    switch (field[0]) {
      case '@': {
        Rate rate = ParseRate(field.substr(1));
        if (have_rate || rate == Rate::kInvalid) {
          return false;
        }
        have_rate = true;
        out->below_one = rate == Rate::kBelowOne;
        break;
      }
      case '#':
        if (out->have_tags || HasControl(field)) {
          return false;
        }
        out->have_tags = true;
        out->tags = field.substr(1);
        break;
      case 'c':
        if (have_container || field.size() < 2 || field[1] != ':' || HasControl(field)) {
          return false;
        }
        have_container = true;
        break;
      case 'T':
        if (have_timestamp || field.size() < 2 ||
            !std::all_of(field.begin() + 1, field.end(), IsDigit)) {
          return false;
        }
        have_timestamp = true;
        break;
      default:
        return false;
    }
  }
  return true;
}

// Values: one or more ':'-separated decimals, summed (DogStatsD packing). The sum cannot
// wrap: that would take 2^32 values below 2^32 each, a line of more than 8 GiB.
bool SumValues(std::string_view values, uint64_t* sum) {
  *sum = 0;
  while (true) {
    size_t sep = values.find(':');
    uint64_t v = 0;
    if (!ParseDecimal(values.substr(0, sep), kMaxLineValue, &v)) {
      return false;
    }
    *sum += v;
    if (sep == std::string_view::npos) {
      return true;
    }
    values.remove_prefix(sep + 1);
  }
}

// The key and outcome: from the tags for "requests", else from "<id>.<outcome>" or
// "<id>.failure.<code>". *code: the name's code, else the tags' `code:`, else 0; a name and a
// tag naming different codes are malformed. Kept only for failures (a gateway may tag every
// line with its status; a success's is not a failure code).
bool ParseKeyAndOutcome(std::string_view metric, const Fields& fields, uint64_t* key,
                        Outcome* outcome, uint16_t* code) {
  const bool requests = metric == "requests";
  Tags tags;
  if (fields.have_tags && !ScanTags(fields.tags, requests, &tags)) {
    return false;
  }
  *code = 0;
  if (requests) {
    if (!tags.have_key || !tags.have_outcome || tags.outcome == Outcome::kInvalid) {
      return false;
    }
    *key = tags.key;
    *outcome = tags.outcome;
  } else {
    size_t dot = metric.find('.');
    if (dot == std::string_view::npos || !ParseDecimal(metric.substr(0, dot), kMaxId, key)) {
      return false;
    }
    std::string_view rest = metric.substr(dot + 1);
    if (rest.size() > 8 && rest.starts_with("failure.")) {
      if (!ParseCode(rest.substr(8), code) || (tags.code != 0 && tags.code != *code)) {
        return false;
      }
      *outcome = Outcome::kFailure;
      return true;
    }
    *outcome = ParseOutcome(rest);
    if (*outcome == Outcome::kInvalid) {
      return false;
    }
  }
  *code = *outcome == Outcome::kFailure ? tags.code : 0;
  return true;
}

}  // namespace

bool detail::ParseCanonicalDecimal(std::string_view s, uint64_t max, uint64_t* out) {
  return ParseDecimal(s, max, out);
}

bool detail::ParseCounterParts(std::string_view line, CounterParts* out) {
  size_t name_end = 0;
  while (name_end < line.size() && IsNameByte(line[name_end])) {
    ++name_end;
  }
  if (name_end == 0 || name_end == line.size() || line[name_end] != ':') {
    return false;
  }
  std::string_view rest = line.substr(name_end + 1);
  size_t bar = rest.find('|');
  if (bar == std::string_view::npos) {
    return false;
  }
  std::string_view fields = rest.substr(bar + 1);
  size_t type_end = fields.find('|');
  if (fields.substr(0, type_end) != "c") {
    return false;
  }
  Fields parsed;
  if (type_end != std::string_view::npos && !ParseFields(fields.substr(type_end + 1), &parsed)) {
    return false;
  }
  // Values: SumValues's rules, and "0" (a zero delta) besides.
  std::string_view values = rest.substr(0, bar);
  uint64_t sum = 0;
  while (true) {
    size_t sep = values.find(':');
    std::string_view v = values.substr(0, sep);
    uint64_t n = 0;
    if (v != "0" && !ParseDecimal(v, kMaxLineValue, &n)) {
      return false;
    }
    sum += n;
    if (sep == std::string_view::npos) {
      break;
    }
    values.remove_prefix(sep + 1);
  }
  out->name = line.substr(0, name_end);
  out->sum = sum;
  out->below_one = parsed.below_one;
  out->tags = parsed.have_tags ? parsed.tags : std::string_view();
  return true;
}

bool detail::PrefixIsNameSafe(std::string_view prefix) {
  return std::all_of(prefix.begin(), prefix.end(), IsNameByte);
}

// The hot path of ingestion (every line of every datagram). Its helpers above live in this
// file's anonymous namespace, so the compiler inlines them (bench: BM_ParseBuffer).
LineResult ParseLine(std::string_view line, std::string_view prefix, Increment* out) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (line.empty()) {
    return LineResult::kEmpty;
  }

  // "<name>:<values>|<type>[|<field>...]". The name ends at the first byte that no name holds.
  size_t name_end = 0;
  while (name_end < line.size() && IsNameByte(line[name_end])) {
    ++name_end;
  }
  if (name_end == 0 || name_end == line.size() || line[name_end] != ':') {
    return IsEventOrServiceCheck(line) && !HasControl(line) ? LineResult::kIgnored
                                                            : LineResult::kMalformed;
  }
  std::string_view name = line.substr(0, name_end);
  std::string_view rest = line.substr(name_end + 1);
  const char* bar = static_cast<const char*>(std::memchr(rest.data(), '|', rest.size()));
  if (bar == nullptr) {
    return LineResult::kMalformed;
  }
  size_t bar_pos = static_cast<size_t>(bar - rest.data());
  std::string_view values = rest.substr(0, bar_pos);
  std::string_view fields = rest.substr(bar_pos + 1);
  size_t type_end = fields.find('|');
  std::string_view type = fields.substr(0, type_end);
  if (!ValidType(type)) {
    return LineResult::kMalformed;
  }
  bool ours = name.size() > prefix.size() && name.starts_with(prefix) && name[prefix.size()] == '.';
  if (type != "c" || !ours) {
    // Someone else's metric: its shape is its own business, but bytes no line may hold
    // still make it malformed.
    return HasControl(rest) ? LineResult::kMalformed : LineResult::kIgnored;
  }
  std::string_view metric = name.substr(prefix.size() + 1);

  Fields parsed;
  if (type_end != std::string_view::npos && !ParseFields(fields.substr(type_end + 1), &parsed)) {
    return LineResult::kMalformed;
  }
  uint64_t sum = 0;
  uint64_t key = 0;
  Outcome outcome = Outcome::kInvalid;
  uint16_t code = 0;
  if (!SumValues(values, &sum) || !ParseKeyAndOutcome(metric, parsed, &key, &outcome, &code)) {
    return LineResult::kMalformed;
  }
  if (parsed.below_one) {
    return LineResult::kRefused;
  }
  out->key = key;
  out->successes = outcome == Outcome::kSuccess ? sum : 0;
  out->failures = outcome == Outcome::kFailure ? sum : 0;
  out->code = code;
  return LineResult::kAccepted;
}

}  // namespace tally::core
