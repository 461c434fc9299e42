// Mapping::Compile: checks rules as written and builds their compiled form and the dispatch
// on the names' first segment (core/mapping.h).
#include <algorithm>
#include <set>

#include "core/mapping.h"
#include "core/mapping_rule.h"

namespace tally::core {
namespace {

// A rule's error, at the line of the field at fault when known.
class RuleError {
 public:
  explicit RuleError(const MappingRule& rule) : rule_(rule) {}
  Status operator()(const std::string& field, const std::string& reason) const {
    auto it = rule_.fields.find(field);
    int line = it != rule_.fields.end() ? it->second : rule_.line;
    std::string where = line > 0 ? "line " + std::to_string(line) + ": " : std::string();
    std::string who = rule_.name.empty() ? "rule" : "rule '" + rule_.name + "'";
    return Status::InvalidArgument(where + who + ": " + reason);
  }

 private:
  const MappingRule& rule_;
};

bool ValidRuleName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

// Bytes a glob may hold: a metric name's (no control byte, space, ':', '|'), no '#' or ','.
bool GlobByte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u != 0x7f && c != ' ' && c != ':' && c != '|' && c != '#' && c != ',';
}

// "kong.service.*.status.*" into segments; false with *why on a bad glob.
bool CompileGlob(const std::string& glob, std::vector<GlobSegment>* out, size_t* stars,
                 std::string* why) {
  if (glob.empty() || !std::all_of(glob.begin(), glob.end(), GlobByte)) {
    *why = "match: a glob of metric-name bytes (no space, ':', '|', '#' or ',')";
    return false;
  }
  size_t begin = 0;
  while (true) {
    size_t dot = glob.find('.', begin);
    std::string segment = glob.substr(begin, dot == std::string::npos ? dot : dot - begin);
    if (segment.empty()) {
      *why = "match: empty segment (a leading, trailing or doubled '.')";
      return false;
    }
    if (segment.find("**") != std::string::npos) {
      *why = "match: two '*' side by side capture nothing definite";
      return false;
    }
    GlobSegment s;
    size_t from = 0;
    while (true) {
      size_t star = segment.find('*', from);
      s.pieces.push_back(segment.substr(from, star == std::string::npos ? star : star - from));
      if (star == std::string::npos) {
        break;
      }
      ++*stars;
      from = star + 1;
    }
    out->push_back(std::move(s));
    if (dot == std::string::npos) {
      break;
    }
    begin = dot + 1;
  }
  if (*stars > 9) {
    *why = "match: at most 9 '*' captures ($1..$9)";
    return false;
  }
  return true;
}

// std::regex (ECMAScript) has no named groups: `(?<name>` and `(?P<name>` become plain
// groups, their numbers recorded in *names. *groups counts every capturing group.
bool TranslateRegex(const std::string& in, std::string* out, std::map<std::string, int>* names,
                    size_t* groups, std::string* why) {
  bool in_class = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\\' && i + 1 < in.size()) {
      *out += in.substr(i, 2);
      ++i;
      continue;
    }
    if (in_class) {
      in_class = c != ']';
      *out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      *out += c;
      if (i + 1 < in.size() && in[i + 1] == '^') {
        *out += in[++i];
      }
      if (i + 1 < in.size() && in[i + 1] == ']') {
        *out += in[++i];
      }
      continue;
    }
    if (c != '(') {
      *out += c;
      continue;
    }
    std::string_view rest = std::string_view(in).substr(i + 1);
    size_t skip = rest.starts_with("?P<") ? 3 : rest.starts_with("?<") ? 2 : 0;
    if (skip != 0 && rest.size() > skip && rest[skip] != '=' && rest[skip] != '!') {
      size_t close = rest.find('>', skip);
      std::string name(rest.substr(skip, close == std::string_view::npos ? 0 : close - skip));
      if (close == std::string_view::npos || name.empty() || names->contains(name)) {
        *why = "match: a named group needs a unique name: (?<name>...)";
        return false;
      }
      (*names)[name] = static_cast<int>(++*groups);
      *out += '(';
      i += 1 + close;
      continue;
    }
    if (!rest.starts_with("?")) {
      ++*groups;
    }
    *out += c;
  }
  return true;
}

// `$1`..`$9` or `${name}` into *ref; the name is a regex group's or else a tag's.
bool CompileRef(const std::string& text, size_t captures, const std::map<std::string, int>& names,
                MappingRef* ref) {
  if (text.size() == 2 && text[0] == '$' && text[1] >= '1' && text[1] <= '9') {
    ref->capture = text[1] - '0';
    return static_cast<size_t>(ref->capture) <= captures;
  }
  if (text.size() > 3 && text.starts_with("${") && text.back() == '}') {
    std::string name = text.substr(2, text.size() - 3);
    if (name.find_first_of(",:|${} ") != std::string::npos) {
      return false;
    }
    auto it = names.find(name);
    if (it != names.end()) {
      ref->capture = it->second;
    } else {
      ref->tag = name;
    }
    return true;
  }
  return false;
}

// "key-(\d+)" or "key-(\d+)@.*": the literal before and after the digits. Escaped
// punctuation counts as literal; anything else is left to std::regex.
bool FastKeyPattern(const std::string& p, Mapping::Compiled* r) {
  auto literal = [&p](size_t* i, std::string* out) {
    while (*i < p.size()) {
      char c = p[*i];
      if (c == '\\' && *i + 1 < p.size() && std::ispunct(static_cast<unsigned char>(p[*i + 1]))) {
        *out += p[*i + 1];
        *i += 2;
      } else if (std::string_view(".^$|?*+()[]{}\\").find(c) == std::string_view::npos) {
        *out += c;
        ++*i;
      } else {
        return;
      }
    }
  };
  size_t i = 0;
  std::string before;
  std::string after;
  literal(&i, &before);
  if (p.compare(i, 5, "(\\d+)") != 0) {
    return false;
  }
  i += 5;
  literal(&i, &after);
  std::string_view rest = std::string_view(p).substr(i);
  // A digit right after the group would let \d+ give digits back; std::regex decides then.
  if ((rest != "" && rest != ".*") || (!after.empty() && after[0] >= '0' && after[0] <= '9')) {
    return false;
  }
  r->key_before = before;
  r->key_after = after;
  r->key_after_any = rest == ".*";
  return true;
}

// "1xx,2xx,3xx" or exact codes, into the rule's sets.
bool CompileSuccessStatus(const std::string& text, Mapping::Compiled* r) {
  size_t begin = 0;
  bool any = false;
  while (begin <= text.size()) {
    size_t comma = text.find(',', begin);
    std::string item = text.substr(begin, comma == std::string::npos ? comma : comma - begin);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.size() != 3 || item[0] < '1' || item[0] > '5') {
      return false;
    }
    int digit = item[0] - '0';
    if ((item[1] == 'x' || item[1] == 'X') && (item[2] == 'x' || item[2] == 'X')) {
      r->success_classes.set(static_cast<size_t>(digit));
      for (int code = digit * 100; code < digit * 100 + 100; ++code) {
        r->success_codes.set(static_cast<size_t>(code));
      }
    } else if (std::isdigit(static_cast<unsigned char>(item[1])) &&
               std::isdigit(static_cast<unsigned char>(item[2]))) {
      r->success_codes.set(static_cast<size_t>(std::stoi(item)));
    } else {
      return false;
    }
    any = true;
    if (comma == std::string::npos) {
      break;
    }
    begin = comma + 1;
  }
  return any;
}

StatusOr<Mapping::Compiled> CompileRule(const MappingRule& rule) {
  RuleError error(rule);
  Mapping::Compiled r;
  if (!ValidRuleName(rule.name)) {
    return error("name", "name: 1 to 64 bytes of [A-Za-z0-9_.-] (the rule's label in /metrics)");
  }
  r.name = rule.name;
  std::map<std::string, int> names;
  std::string why;
  if (rule.regex) {
    std::string translated;
    if (rule.match.empty() || !TranslateRegex(rule.match, &translated, &names, &r.captures, &why)) {
      return error("match", why.empty() ? "match: an empty regex" : why);
    }
    try {
      r.regex.emplace(translated, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      return error("match", std::string("match: not a regex: ") + e.what());
    }
  } else if (!CompileGlob(rule.match, &r.segments, &r.captures, &why)) {
    return error("match", why);
  }
  for (const auto& [tag, glob] : rule.tags) {
    if (tag.empty() || tag.find_first_of(",:|# ") != std::string::npos || glob.empty() ||
        glob.find_first_of(",|#") != std::string::npos) {
      return error("tags", "tags: each a tag name and a glob (no ',', '|' or '#')");
    }
    r.tags.emplace_back(tag, glob);
  }
  const bool drop = rule.outcome == MappingOutcome::kDrop;
  if (drop && (!rule.key.empty() || !rule.key_pattern.empty())) {
    return error("action", "action: drop takes no key, key_pattern or outcome");
  }
  if (rule.outcome == MappingOutcome::kNone) {
    return error("", "one of status, status_class, outcome or action: drop is needed");
  }
  if (!drop) {
    if (rule.key.empty()) {
      return error("", "key: needed (a reference: $1..$9 or ${name})");
    }
    if (!CompileRef(rule.key, r.captures, names, &r.key)) {
      return error("key", "key: '" + rule.key + "' is not $1..$9 (within the " +
                              std::to_string(r.captures) + " captures) or ${name}");
    }
  }
  if (!rule.key_pattern.empty()) {
    r.has_key_pattern = true;
    if (!FastKeyPattern(rule.key_pattern, &r)) {
      std::string translated;
      std::map<std::string, int> pattern_names;
      size_t groups = 0;
      if (!TranslateRegex(rule.key_pattern, &translated, &pattern_names, &groups, &why) ||
          groups != 1) {
        return error("key_pattern", "key_pattern: a regex with exactly one group, the key id");
      }
      try {
        r.key_regex.emplace(translated, std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error& e) {
        return error("key_pattern", std::string("key_pattern: not a regex: ") + e.what());
      }
    }
  }
  r.outcome = rule.outcome;
  if (rule.outcome == MappingOutcome::kStatus || rule.outcome == MappingOutcome::kStatusClass) {
    const char* field = rule.outcome == MappingOutcome::kStatus ? "status" : "status_class";
    if (!CompileRef(rule.outcome_ref, r.captures, names, &r.outcome_ref)) {
      return error(field, std::string(field) + ": '" + rule.outcome_ref +
                              "' is not $1..$9 (within the captures) or ${name}");
    }
    if (!CompileSuccessStatus(rule.success_status, &r)) {
      return error("success_status",
                   "success_status: comma-separated classes (2xx) or codes (100..599)");
    }
  } else if (rule.fields.contains("success_status")) {
    return error("success_status", "success_status: only with status or status_class");
  }
  for (const MappingRef* ref : {&r.key, &r.outcome_ref}) {
    if (ref->capture < 0 && !ref->tag.empty()) {
      r.needs_fields = true;
    }
  }
  r.needs_fields = r.needs_fields || !r.tags.empty();
  return r;
}

}  // namespace

StatusOr<std::shared_ptr<const Mapping>> Mapping::Compile(std::vector<MappingRule> rules) {
  if (rules.size() > kMaxMappingRules) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxMappingRules) +
                                   " rules (there are " + std::to_string(rules.size()) + ")");
  }
  std::shared_ptr<Mapping> mapping(new Mapping());
  Impl& impl = *mapping->impl_;
  std::set<std::string> seen;
  for (const MappingRule& rule : rules) {
    StatusOr<Compiled> compiled = CompileRule(rule);
    if (!compiled.ok()) {
      return compiled.status();
    }
    if (!seen.insert(rule.name).second) {
      return RuleError(rule)("name", "name: used by an earlier rule");
    }
    impl.rules.push_back(std::move(compiled).value());
  }
  for (size_t i = 0; i < impl.rules.size(); ++i) {
    const Compiled& r = impl.rules[i];
    const bool literal_first = !r.regex && r.segments[0].pieces.size() == 1;
    if (!literal_first) {
      impl.general.push_back(static_cast<uint16_t>(i));
      continue;
    }
    const std::string& first = r.segments[0].pieces[0];
    auto it = std::find_if(impl.buckets.begin(), impl.buckets.end(),
                           [&first](const auto& b) { return b.first == first; });
    if (it == impl.buckets.end()) {
      impl.buckets.push_back({first, {}});
      it = impl.buckets.end() - 1;
    }
    it->second.push_back(static_cast<uint16_t>(i));
  }
  for (auto& [first, list] : impl.buckets) {
    list.insert(list.end(), impl.general.begin(), impl.general.end());
    std::sort(list.begin(), list.end());
  }
  std::sort(impl.buckets.begin(), impl.buckets.end());
  return std::shared_ptr<const Mapping>(std::move(mapping));
}

}  // namespace tally::core
