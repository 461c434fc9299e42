#include "daemon/app/config_windows.h"

#include <boost/program_options.hpp>

namespace tally::daemon {
namespace po = boost::program_options;

void DescribeWindowsOptions(po::options_description& opts, WindowsConfig& c) {
  // clang-format off
  opts.add_options()
      ("retention-minute", po::value(&c.retention_minute)->default_value(c.retention_minute),
       "how long minute buckets of the time windows are kept: <n>m, <n>h, <n>d, or 0 "
       "(forever)")
      ("retention-hour", po::value(&c.retention_hour)->default_value(c.retention_hour),
       "how long hour buckets are kept (as --retention-minute)")
      ("retention-day", po::value(&c.retention_day)->default_value(c.retention_day),
       "how long day buckets are kept; 0: forever (as --retention-minute)");
  // clang-format on
}

core::Status ValidateWindowsOptions(WindowsConfig& c) {
  core::Retention r;
  for (auto [name, text, target] :
       {std::tuple{"--retention-minute", &c.retention_minute, &r.minute},
        std::tuple{"--retention-hour", &c.retention_hour, &r.hour},
        std::tuple{"--retention-day", &c.retention_day, &r.day}}) {
    core::StatusOr<int64_t> seconds = core::ParseDuration(name, *text);
    if (!seconds.ok()) {
      return seconds.status();
    }
    *target = *seconds;
  }
  if (core::Status s = r.Validate(); !s.ok()) {
    return core::Status::InvalidArgument("--" + s.message());
  }
  c.retention = r;
  return core::Status::Ok();
}

}  // namespace tally::daemon
