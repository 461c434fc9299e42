// The built-in mapping presets: the rule files in mapping/presets/ (kong, envoy, traefik,
// nginx), compiled into the binary (core/embed_presets.cmake) so that --mapping-preset and
// --print-mapping-preset need no file on disk. Thread safety: constant data.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace tally::core {

// The YAML text of preset `name`, or nullopt.
std::optional<std::string_view> MappingPreset(std::string_view name);
// The presets' names, in the order --help lists them.
const std::vector<std::string_view>& MappingPresetNames();

}  // namespace tally::core
