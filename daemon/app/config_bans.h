// The ban rule's options (issue 16; README "Bans"): the policy's defaults at start-up. A
// policy set by PUT /admin/ban-policy is persisted and wins over them at later starts.
//
//   --ban-window-seconds, --ban-min-requests, --ban-consecutive-failures,
//   --ban-cooldown-seconds, --ban-max-cooldown-seconds   integers (ranges in NumericOptions)
//   --ban-failure-rate       a decimal in (0, 1]
//   --ban-immediate-codes    HTTP statuses, comma-separated ("" or "none": none)
//   --ban-cooldown-codes     the same
//   --ban-keep-one-active    true or false
// Checked as a whole (core::BanPolicy::Validate) after each alone.
#pragma once

#include <boost/program_options/options_description.hpp>
#include <map>
#include <string>
#include <vector>

#include "core/ban_policy.h"
#include "core/status.h"

namespace tally::daemon {

struct Config;
struct NumericRange;

struct BanConfig {
  core::BanPolicy policy;
};

// The options read as text, checked by ValidateBanOptions.
struct BanRawOptions {
  std::string failure_rate;
  std::string immediate_codes;
  std::string cooldown_codes;
  std::string keep_one_active;
};

// The integer options, for NumericOptions().
void AppendBanNumericOptions(std::vector<NumericRange>* ranges);
// The ban options' lines of --help: the integer ones reading into `numeric` (NumericText,
// config.h, preset to their defaults), then the text ones reading into `raw` (defaults from
// `bans`).
void DescribeBanOptions(boost::program_options::options_description& opts, const BanConfig& bans,
                        BanRawOptions& raw, std::map<std::string, std::string>& numeric);
// Parses `raw` into `bans` and validates the policy; InvalidArgument naming the option.
core::Status ValidateBanOptions(const BanRawOptions& raw, BanConfig& bans);
// "ban-window-seconds=60 ..." for the start-up log line.
std::string BanOptionsText(const BanConfig& bans);
// "401,403" (empty for none).
std::string CodesText(const std::vector<int>& codes);

}  // namespace tally::daemon
