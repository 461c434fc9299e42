// Mapping::Map: one line through the compiled rules (core/mapping.h). Runs on the ingest
// path for every line the own-protocol parser ignores, so glob rules allocate nothing.
#include "core/mapping.h"

#include <algorithm>

#include "core/mapping_rule.h"

namespace tally::core {
namespace {

using Captures = std::array<std::string_view, 10>;  // [1..9]: the glob's stars

// pieces[j..] against `text`, after pieces[j-1]: each star takes the shortest run (one byte
// or more) that lets the rest match; the last star takes all but the last piece. Stars'
// texts go to caps[capture...].
bool MatchPieces(const std::vector<std::string>& pieces, size_t j, std::string_view text,
                 Captures* caps, size_t capture) {
  const std::string& piece = pieces[j];
  if (j + 1 == pieces.size()) {
    if (text.size() <= piece.size() || !text.ends_with(piece)) {
      return false;
    }
    (*caps)[capture] = text.substr(0, text.size() - piece.size());
    return true;
  }
  for (size_t at = text.find(piece, 1); at != std::string_view::npos;
       at = text.find(piece, at + 1)) {
    if (MatchPieces(pieces, j + 1, text.substr(at + piece.size()), caps, capture + 1)) {
      (*caps)[capture] = text.substr(0, at);
      return true;
    }
  }
  return false;
}

bool MatchSegment(const GlobSegment& s, std::string_view text, Captures* caps, size_t* capture) {
  const std::string& head = s.pieces[0];
  if (s.pieces.size() == 1) {
    return text == head;
  }
  if (!text.starts_with(head) ||
      !MatchPieces(s.pieces, 1, text.substr(head.size()), caps, *capture)) {
    return false;
  }
  *capture += s.pieces.size() - 1;
  return true;
}

bool MatchGlob(const Mapping::Compiled& r, std::string_view name, size_t dots, Captures* caps) {
  if (dots + 1 != r.segments.size()) {
    return false;
  }
  size_t capture = 1;
  size_t begin = 0;
  for (const GlobSegment& s : r.segments) {
    size_t end = begin;
    while (end < name.size() && name[end] != '.') {  // segments are short: no memchr call
      ++end;
    }
    if (!MatchSegment(s, name.substr(begin, end - begin), caps, &capture)) {
      return false;
    }
    begin = end + 1;
  }
  return true;
}

// A tag glob: `*` is any run of bytes, shortest first.
bool MatchTagGlob(std::string_view glob, std::string_view text) {
  size_t star = glob.find('*');
  if (star == std::string_view::npos) {
    return glob == text;
  }
  if (!text.starts_with(glob.substr(0, star))) {
    return false;
  }
  glob.remove_prefix(star + 1);
  text.remove_prefix(star);
  for (size_t skip = 0; skip <= text.size(); ++skip) {
    if (MatchTagGlob(glob, text.substr(skip))) {
      return true;
    }
  }
  return false;
}

// The value of tag `name` in "a:1,b:2,flag"; a tag without ':' has an empty value. The first
// occurrence counts.
bool FindTag(std::string_view tags, std::string_view name, std::string_view* value) {
  while (!tags.empty()) {
    size_t comma = tags.find(',');
    std::string_view tag = tags.substr(0, comma);
    if (tag.starts_with(name) && (tag.size() == name.size() || tag[name.size()] == ':')) {
      *value = tag.size() == name.size() ? std::string_view() : tag.substr(name.size() + 1);
      return true;
    }
    tags.remove_prefix(comma == std::string_view::npos ? tags.size() : comma + 1);
  }
  return false;
}

// The key id in `text` through the rule's key_pattern; false when there is none.
bool KeyId(const Mapping::Compiled& r, std::string_view text, uint64_t* key) {
  if (r.has_key_pattern && r.key_regex) {
    std::match_results<std::string_view::const_iterator> m;
    if (!std::regex_match(text.begin(), text.end(), m, *r.key_regex) || !m[1].matched) {
      return false;
    }
    text = std::string_view(&*m[1].first, static_cast<size_t>(m[1].length()));
  } else if (r.has_key_pattern) {
    if (!text.starts_with(r.key_before)) {
      return false;
    }
    text.remove_prefix(r.key_before.size());
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      ++digits;
    }
    std::string_view after = text.substr(digits);
    if (digits == 0 || !after.starts_with(r.key_after) ||
        (!r.key_after_any && after.size() != r.key_after.size())) {
      return false;
    }
    text = text.substr(0, digits);
  }
  return detail::ParseCanonicalDecimal(text, kMaxId, key);
}

// The common gateway line, "<name>:<digits>|c" with nothing after, read without the general
// parser; false for anything else (ParseCounterParts decides). Same rules: canonical
// decimal, 0..kMaxLineValue.
bool QuickCounterParts(std::string_view line, size_t colon, detail::CounterParts* out) {
  std::string_view rest = line.substr(colon + 1);
  size_t digits = 0;
  uint64_t value = 0;
  while (digits < rest.size() && digits < 10 && rest[digits] >= '0' && rest[digits] <= '9') {
    value = value * 10 + static_cast<uint64_t>(rest[digits] - '0');
    ++digits;
  }
  if (digits == 0 || (rest[0] == '0' && digits > 1) || value > kMaxLineValue ||
      rest.size() != digits + 2 || rest[digits] != '|' || rest[digits + 1] != 'c') {
    return false;
  }
  out->name = line.substr(0, colon);
  out->sum = value;
  out->below_one = false;
  out->tags = std::string_view();
  return true;
}

}  // namespace

Mapping::Mapping() : impl_(std::make_unique<Impl>()) {}
Mapping::~Mapping() = default;

size_t Mapping::size() const { return impl_->rules.size(); }
const std::string& Mapping::rule_name(size_t i) const { return impl_->rules[i].name; }

LineResult Mapping::Map(std::string_view line, Increment* out, MappedCounts* counts) const {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  // Only counters: "<name>:<values>|c[|...]". The name has no ':' (ParseLine's rule).
  const size_t colon = line.find(':');
  const size_t bar = line.find('|', colon);
  if (colon == std::string_view::npos || bar == std::string_view::npos || bar + 1 >= line.size() ||
      line[bar + 1] != 'c' || (bar + 2 < line.size() && line[bar + 2] != '|')) {
    return LineResult::kIgnored;
  }
  const std::string_view name = line.substr(0, colon);
  size_t first_dot = 0;
  while (first_dot < name.size() && name[first_dot] != '.') {
    ++first_dot;
  }
  const std::string_view first = name.substr(0, first_dot);
  const std::vector<uint16_t>* candidates = &impl_->general;
  auto bucket = std::lower_bound(impl_->buckets.begin(), impl_->buckets.end(), first,
                                 [](const auto& b, std::string_view f) { return b.first < f; });
  if (bucket != impl_->buckets.end() && bucket->first == first) {
    candidates = &bucket->second;
  }
  if (candidates->empty()) {
    return LineResult::kIgnored;
  }
  const size_t dots = static_cast<size_t>(std::count(name.begin(), name.end(), '.'));
  Captures caps;
  std::match_results<std::string_view::const_iterator> m;
  detail::CounterParts parts;
  int parsed = -1;  // -1: not yet; 0: malformed; 1: parts hold the line
  auto parse = [&] {
    if (parsed < 0) {
      parsed = QuickCounterParts(line, colon, &parts) || detail::ParseCounterParts(line, &parts);
    }
    return parsed == 1;
  };
  for (uint16_t index : *candidates) {
    const Compiled& r = impl_->rules[index];
    const bool named = r.regex ? std::regex_match(name.begin(), name.end(), m, *r.regex)
                               : MatchGlob(r, name, dots, &caps);
    if (!named) {
      continue;
    }
    auto text = [&](const MappingRef& ref, std::string_view* value) {
      if (ref.capture < 0) {
        return FindTag(parts.tags, ref.tag, value);
      }
      if (r.regex) {
        const auto& g = m[static_cast<size_t>(ref.capture)];
        *value = g.matched ? std::string_view(&*g.first, static_cast<size_t>(g.length()))
                           : std::string_view();
        return g.matched;
      }
      *value = caps[static_cast<size_t>(ref.capture)];
      return true;
    };
    if (r.needs_fields) {
      if (!parse()) {
        ++counts->matched[index];
        return LineResult::kMalformed;
      }
      std::string_view value;
      bool tags_match = std::all_of(r.tags.begin(), r.tags.end(), [&](const auto& t) {
        return FindTag(parts.tags, t.first, &value) && MatchTagGlob(t.second, value);
      });
      for (const MappingRef* ref : {&r.key, &r.outcome_ref}) {
        tags_match = tags_match && (ref->capture >= 0 || ref->tag.empty() ||
                                    FindTag(parts.tags, ref->tag, &value));
      }
      if (!tags_match) {
        continue;
      }
    }
    ++counts->matched[index];
    if (r.outcome == MappingOutcome::kDrop) {
      return LineResult::kIgnored;
    }
    if (!parse()) {
      return LineResult::kMalformed;
    }
    if (parts.below_one) {
      return LineResult::kRefused;
    }
    std::string_view key_text;
    uint64_t key = 0;
    if (!text(r.key, &key_text) || !KeyId(r, key_text, &key)) {
      ++counts->without_key[index];
      return LineResult::kIgnored;
    }
    bool success = r.outcome == MappingOutcome::kSuccess;
    uint16_t code = 0;
    if (r.outcome == MappingOutcome::kStatus || r.outcome == MappingOutcome::kStatusClass) {
      std::string_view s;
      (void)text(r.outcome_ref, &s);
      auto digit = [](char c) { return c >= '0' && c <= '9'; };
      if (r.outcome == MappingOutcome::kStatus) {
        if (s.size() != 3 || s[0] < '1' || s[0] > '5' || !digit(s[1]) || !digit(s[2])) {
          return LineResult::kMalformed;
        }
        code = static_cast<uint16_t>((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
        success = r.success_codes.test(code);
      } else {
        bool xx = s.size() == 3 && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X');
        if ((s.size() != 1 && !xx) || s[0] < '1' || s[0] > '5') {
          return LineResult::kMalformed;
        }
        success = r.success_classes.test(static_cast<size_t>(s[0] - '0'));
      }
    }
    if (parts.sum == 0) {
      return LineResult::kIgnored;
    }
    out->key = key;
    out->successes = success ? parts.sum : 0;
    out->failures = success ? 0 : parts.sum;
    out->code = success ? 0 : code;
    return LineResult::kAccepted;
  }
  return LineResult::kIgnored;
}

}  // namespace tally::core
