// The time-window options (issue 15): how long each resolution's buckets are kept.
// --retention-minute (default 48h), --retention-hour (90d), --retention-day (0 = forever);
// values as core::ParseDuration reads them (0, or <count>m|h|d). Part of Config (config.h).
#pragma once

namespace boost::program_options {
class options_description;
}  // namespace boost::program_options
#include <string>

#include "core/status.h"
#include "core/windows.h"

namespace tally::daemon {

struct WindowsConfig {
  // As given (text until ValidateWindowsOptions parses it into `retention`).
  std::string retention_minute = "48h";
  std::string retention_hour = "90d";
  std::string retention_day = "0";
  core::Retention retention;  // parsed
};

// Adds the --retention-* options to the --help table, reading into `c`.
void DescribeWindowsOptions(boost::program_options::options_description& opts, WindowsConfig& c);
// Parses the three values into c.retention; InvalidArgument "--retention-<r>: ..." otherwise.
core::Status ValidateWindowsOptions(WindowsConfig& c);

}  // namespace tally::daemon
