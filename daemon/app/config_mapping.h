// The mapping options (issue 20; README "Your gateway as it is"): --mapping-file PATH,
// --mapping-preset NAME, and the action --print-mapping-preset NAME. Held by Config; the
// rules are read and compiled while the options are validated, so a bad rule file stops
// start-up with exit 2 and one line naming the file, the line and the reason.
#pragma once

#include <boost/program_options/options_description.hpp>
#include <memory>
#include <string>

#include "core/mapping.h"
#include "core/status.h"

namespace tally::daemon {

struct MappingOptions {
  std::string file;    // --mapping-file; empty: none
  std::string preset;  // --mapping-preset; empty: none
  // The compiled rules, set by ValidateMappingOptions; null when neither option is given.
  std::shared_ptr<const core::Mapping> mapping;

  // "mapping=off", "mapping=file:PATH" or "mapping=preset:NAME".
  std::string Redacted() const;
};

// Adds --mapping-file and --mapping-preset (reading into `m`) and --print-mapping-preset.
void DescribeMappingOptions(boost::program_options::options_description& opts, MappingOptions& m);

// Reads and compiles the rules of --mapping-file or --mapping-preset (not both) into
// m.mapping. Errors: "--mapping-file FILE line N: reason", "--mapping-preset: ...".
core::Status ValidateMappingOptions(MappingOptions& m);

// --print-mapping-preset NAME: the preset's text, or an error naming the presets.
core::StatusOr<std::string> PrintMappingPreset(const std::string& name);

}  // namespace tally::daemon
