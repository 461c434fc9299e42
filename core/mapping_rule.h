// The compiled form of one mapping rule, shared by its compiler (mapping_compile.cc) and its
// matcher (mapping.cc). Internal to core/: include core/mapping.h instead.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "core/mapping.h"

namespace tally::core {

// Where a reference reads its text: a capture (glob `*` index or regex group number) or the
// value of a DogStatsD tag.
struct MappingRef {
  int capture = -1;  // >= 0: the capture; else `tag`
  std::string tag;
};

// One glob segment: pieces[0] * pieces[1] * ... * pieces[n-1]; a `*` is one or more bytes.
struct GlobSegment {
  std::vector<std::string> pieces;
};

struct Mapping::Compiled {
  std::string name;
  // The name pattern: glob segments, or a regex.
  std::vector<GlobSegment> segments;
  std::optional<std::regex> regex;
  size_t captures = 0;  // glob stars, or regex groups (1-based: group i is capture i)
  // Required tags: name and glob (a `*` is any run); and tags read by references.
  std::vector<std::pair<std::string, std::string>> tags;
  bool needs_fields = false;  // tags to match or read
  MappingRef key;
  // key_pattern: either <before>(\d+)<after>[.*] checked by hand, or a regex with one group.
  bool has_key_pattern = false;
  std::string key_before;
  std::string key_after;
  bool key_after_any = false;  // the pattern ends in ".*"
  std::optional<std::regex> key_regex;
  MappingOutcome outcome = MappingOutcome::kNone;
  MappingRef outcome_ref;
  std::bitset<600> success_codes;  // by exact status
  std::bitset<6> success_classes;  // by class digit (listed as Nxx)
};

struct Mapping::Impl {
  std::vector<Compiled> rules;
  // Rules whose first name segment is literal, by that segment (sorted), each list merged in
  // file order with `general`; `general`: the other rules (regex, or a `*` in the first
  // segment), tried for every name.
  std::vector<std::pair<std::string, std::vector<uint16_t>>> buckets;
  std::vector<uint16_t> general;
};

}  // namespace tally::core
