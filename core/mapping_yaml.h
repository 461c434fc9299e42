// Rule files: the YAML form of the mapping rules (core/mapping.h), read with yaml-cpp.
//
//   mappings:
//     - name: kong-status
//       match: kong.service.*.status.*
//       key: $1
//       key_pattern: 'key-(\d+)'
//       status: $2
//
// Top level: one map with `mappings`, a list of rules; each rule a map of the fields in
// core/mapping.h (name, match, match_type: glob|regex, tags, key, key_pattern, status,
// status_class, outcome: success|failure, action: drop, success_status as a string or a list).
// An unknown field, a duplicate field or a value of the wrong kind is an error. Every error
// is one line: "FILE line N: reason".
//
// Pure: parses text it is given (reading the file is the caller's). Exceptions from yaml-cpp
// stay inside. Thread safety: stateless.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "core/mapping.h"
#include "core/status.h"

namespace tally::core {

StatusOr<std::vector<MappingRule>> ParseMappingYaml(std::string_view text, std::string_view file);

// ParseMappingYaml, then Mapping::Compile; errors carry the file's name.
StatusOr<std::shared_ptr<const Mapping>> LoadMapping(std::string_view text, std::string_view file);

}  // namespace tally::core
