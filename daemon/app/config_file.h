// The --config file (config.h): an INI file of `option = value` lines under the same names
// as the command line's. Read here into lines; ParseArgs stores them under the command line,
// which wins.
#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace tally::daemon {

// One `name = value` line of the --config file.
struct FileOption {
  std::string name;
  std::string value;
  int line = 0;
};

// Reads the INI file: `name = value` lines, whole-line comments starting with '#' or ';',
// blank lines. Each name must be an option of `opts` other than config, help, version and
// print-mapping-preset, given once. An error (InvalidArgument) names the file, the line
// number and (when it is a known option) the option, never the rest of the line: it may hold
// a token.
core::StatusOr<std::vector<FileOption>> ReadConfigFile(
    const std::string& path, const boost::program_options::options_description& opts);

}  // namespace tally::daemon
