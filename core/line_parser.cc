#include "core/line_parser.h"

namespace tally::core {
namespace {

// Decimal digits only, no sign, no spaces, value in [1, max].
bool ParsePositive(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20) {
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (max - digit) / 10) {
      return false;
    }
    v = v * 10 + digit;
  }
  if (v == 0) {
    return false;
  }
  *out = v;
  return true;
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

// A metric name is printable ASCII without spaces; anything else marks garbage.
bool ValidName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

bool KnownType(std::string_view t) {
  return t == "c" || t == "g" || t == "ms" || t == "h" || t == "s" || t == "d";
}

enum class Rate { kOne, kBelowOne, kInvalid };

// "1", "1.", "1.000" are one; "0.5", ".25" are below one; anything else is invalid.
Rate ParseRate(std::string_view s) {
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if ((whole.empty() && frac.empty()) || !AllDigits(whole) || !AllDigits(frac)) {
    return Rate::kInvalid;
  }
  bool frac_zero = frac.find_first_not_of('0') == std::string_view::npos;
  size_t first_nonzero = whole.find_first_not_of('0');
  std::string_view significant =
      first_nonzero == std::string_view::npos ? std::string_view() : whole.substr(first_nonzero);
  if (significant == "1" && frac_zero) {
    return Rate::kOne;
  }
  if (significant.empty() && !frac_zero) {
    return Rate::kBelowOne;
  }
  return Rate::kInvalid;
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

// Reads `key:<id>` and `outcome:<...>` out of a DogStatsD tag list; other tags are skipped.
bool ParseTags(std::string_view tags, uint64_t* key, Outcome* outcome) {
  bool have_key = false;
  bool have_outcome = false;
  while (true) {
    size_t comma = tags.find(',');
    std::string_view tag = tags.substr(0, comma);
    if (tag.substr(0, 4) == "key:") {
      if (have_key || !ParsePositive(tag.substr(4), kMaxKeyId, key)) {
        return false;
      }
      have_key = true;
    } else if (tag.substr(0, 8) == "outcome:") {
      if (have_outcome) {
        return false;
      }
      *outcome = ParseOutcome(tag.substr(8));
      have_outcome = true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    tags.remove_prefix(comma + 1);
  }
  return have_key && have_outcome && *outcome != Outcome::kInvalid;
}

}  // namespace

LineResult ParseLine(std::string_view line, std::string_view prefix, Increment* out) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (line.empty()) {
    return LineResult::kEmpty;
  }

  // Split "<name>:<values>|<type>[|<field>...]".
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return LineResult::kMalformed;
  }
  std::string_view name = line.substr(0, colon);
  std::string_view rest = line.substr(colon + 1);
  size_t bar = rest.find('|');
  if (!ValidName(name) || bar == std::string_view::npos) {
    return LineResult::kMalformed;
  }
  std::string_view values = rest.substr(0, bar);
  std::string_view fields = rest.substr(bar + 1);
  size_t type_end = fields.find('|');
  std::string_view type = fields.substr(0, type_end);
  if (!KnownType(type)) {
    return LineResult::kMalformed;
  }
  if (type != "c" || name.size() <= prefix.size() + 1 || name.substr(0, prefix.size()) != prefix ||
      name[prefix.size()] != '.') {
    return LineResult::kIgnored;
  }
  std::string_view metric = name.substr(prefix.size() + 1);

  // Optional fields: sample rate, tags, DogStatsD container and timestamp.
  bool below_one = false;
  bool have_tags = false;
  std::string_view tags;
  fields = type_end == std::string_view::npos ? std::string_view() : fields.substr(type_end + 1);
  bool more = type_end != std::string_view::npos;
  while (more) {
    size_t next = fields.find('|');
    std::string_view field = fields.substr(0, next);
    more = next != std::string_view::npos;
    fields = more ? fields.substr(next + 1) : std::string_view();
    if (field.empty()) {
      return LineResult::kMalformed;
    }
    switch (field[0]) {
      case '@': {
        Rate rate = ParseRate(field.substr(1));
        if (rate == Rate::kInvalid) {
          return LineResult::kMalformed;
        }
        below_one = below_one || rate == Rate::kBelowOne;
        break;
      }
      case '#':
        if (have_tags) {
          return LineResult::kMalformed;
        }
        have_tags = true;
        tags = field.substr(1);
        break;
      case 'c':
        if (field.size() < 2 || field[1] != ':') {
          return LineResult::kMalformed;
        }
        break;
      case 'T':
        if (field.size() < 2 || !AllDigits(field.substr(1))) {
          return LineResult::kMalformed;
        }
        break;
      default:
        return LineResult::kMalformed;
    }
  }

  // Values: one or more ':'-separated decimals, summed (DogStatsD packing).
  uint64_t sum = 0;
  while (true) {
    size_t sep = values.find(':');
    uint64_t v = 0;
    if (!ParsePositive(values.substr(0, sep), kMaxLineValue, &v)) {
      return LineResult::kMalformed;
    }
    sum += v;  // at most 2^32 values of < 2^32 fit in a buffer far smaller than 2^32 bytes
    if (sep == std::string_view::npos) {
      break;
    }
    values.remove_prefix(sep + 1);
  }

  uint64_t key = 0;
  Outcome outcome = Outcome::kInvalid;
  if (metric == "requests") {
    if (!have_tags || !ParseTags(tags, &key, &outcome)) {
      return LineResult::kMalformed;
    }
  } else {
    size_t dot = metric.find('.');
    if (dot == std::string_view::npos || !ParsePositive(metric.substr(0, dot), kMaxKeyId, &key)) {
      return LineResult::kMalformed;
    }
    outcome = ParseOutcome(metric.substr(dot + 1));
    if (outcome == Outcome::kInvalid) {
      return LineResult::kMalformed;
    }
  }
  if (below_one) {
    return LineResult::kRefused;
  }
  out->key = key;
  out->successes = outcome == Outcome::kSuccess ? sum : 0;
  out->failures = outcome == Outcome::kFailure ? sum : 0;
  return LineResult::kAccepted;
}

}  // namespace tally::core
