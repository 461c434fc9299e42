// Mapping rules: turn a gateway's own statsd lines (Kong, Envoy, Traefik, nginx) into per-key
// outcomes (issue 20; README "Your gateway as it is").
//
// A rule, as written in a rule file (core/mapping_yaml.h reads the YAML):
//   match        a glob on the metric name: dot-separated segments, each literal text and
//                `*` captures; a `*` is one or more bytes other than '.', so the segment
//                count is fixed ("kong.service.*.status.*"). With `match_type: regex`, an
//                ECMAScript regex matched against the whole name, with numbered groups and
//                named groups `(?<name>...)` / `(?P<name>...)`.
//   tags         DogStatsD tags the line must carry: name -> glob whose `*` is any run of
//                bytes (0 or more). A tag named by a reference is required as well.
//   key          a reference: `$1`..`$9` (a glob capture or regex group), `${name}` (a named
//                regex group, else the value of the tag `name`).
//   key_pattern  optional regex with exactly one group, matched against the whole key text;
//                the group is the key id ("key-(\d+)"). Without it the text is the id. The id
//                is canonical decimal 1..2^63-1 as everywhere; anything else is no key.
//   one outcome  `status: <ref>` (an HTTP status 100..599, decided by `success_status`,
//                default "1xx,2xx,3xx", items `Nxx` or exact codes), `status_class: <ref>`
//                ("2xx", "5XX" or "5"; a class is success when success_status lists `Nxx`),
//                `outcome: success|failure`, or `action: drop`.
//   name         [A-Za-z0-9_.-]{1,64}, unique: the rule's label in /metrics.
// At most kMaxMappingRules rules.
//
// Applying (Mapping::Map), to a line the own-protocol parser ignored:
//   - only counter lines (type "c") are considered; rules are tried in file order and the
//     first whose name pattern and tags match wins; no match: kIgnored, as before.
//   - the winning rule counts the line (MappedCounts::matched). Then: drop -> kIgnored;
//     values or fields that do not parse -> kMalformed (values are canonical decimals, and 0
//     is allowed: Envoy sends zero deltas); a sample rate below 1 -> kRefused; no key id ->
//     kIgnored and MappedCounts::without_key; a status that is not 100..599 or a class that
//     is not 1..5 -> kMalformed; a sum of 0 -> kIgnored; else kAccepted with the sum as
//     successes or failures, and a failure's exact status in Increment::code.
//   - a rule with tags (to match or read) parses the line's fields before it can match: a
//     line whose name it matches but whose fields do not parse is kMalformed under it.
//
// Cost: glob rules are dispatched on the name's first segment (a literal first segment
// selects its rules; the others are tried for every name), then checked segment by segment
// without allocating. Regex rules and a key_pattern that is not `<literal>(\d+)<literal>`
// run std::regex on the line, where the rule file asks for them.
//
// Thread safety: a compiled Mapping is immutable; Map may run on any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/line_parser.h"
#include "core/status.h"

namespace tally::core {

inline constexpr size_t kMaxMappingRules = 64;

enum class MappingOutcome : uint8_t { kNone, kStatus, kStatusClass, kSuccess, kFailure, kDrop };

// One rule as the file spells it; Mapping::Compile checks it.
struct MappingRule {
  std::string name;
  std::string match;
  bool regex = false;
  std::vector<std::pair<std::string, std::string>> tags;  // tag name, glob
  std::string key;                                        // a reference
  std::string key_pattern;                                // optional
  MappingOutcome outcome = MappingOutcome::kNone;
  std::string outcome_ref;  // the reference of status / status_class
  std::string success_status = "1xx,2xx,3xx";
  int line = 0;                       // the rule's line in its file (1-based; 0: unknown)
  std::map<std::string, int> fields;  // each field's line, for errors
};

// Lines per rule, by rule index; a caller adds them to its own counters and clears them.
struct MappedCounts {
  std::array<uint64_t, kMaxMappingRules> matched{};
  std::array<uint64_t, kMaxMappingRules> without_key{};
};

class Mapping {
 public:
  // Checks and compiles `rules`. An error reads "line N: rule 'name': reason" (the line of
  // the field at fault when known).
  static StatusOr<std::shared_ptr<const Mapping>> Compile(std::vector<MappingRule> rules);

  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  // Maps one line (without '\n'; a trailing '\r' is tolerated) as the header says. Fills
  // *out only on kAccepted; counts the winning rule in *counts.
  LineResult Map(std::string_view line, Increment* out, MappedCounts* counts) const;

  size_t size() const;
  const std::string& rule_name(size_t i) const;

  struct Compiled;  // one compiled rule (mapping.cc)

 private:
  Mapping();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::core
