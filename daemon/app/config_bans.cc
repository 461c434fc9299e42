#include "daemon/app/config_bans.h"

#include <charconv>
#include <sstream>

#include "daemon/app/config.h"

namespace tally::daemon {
namespace po = boost::program_options;
using core::Status;

namespace {

// "401,403" -> codes; "" and "none" -> none. Each code 100..599 (the rest: Validate).
bool ParseCodes(const std::string& text, std::vector<int>* out) {
  out->clear();
  if (text.empty() || text == "none") {
    return true;
  }
  size_t begin = 0;
  while (true) {
    size_t comma = text.find(',', begin);
    std::string_view item(text.data() + begin,
                          (comma == std::string::npos ? text.size() : comma) - begin);
    int code = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), code);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
      return false;
    }
    out->push_back(code);
    if (comma == std::string::npos) {
      return true;
    }
    begin = comma + 1;
  }
}

std::string RateText(double rate) {
  std::ostringstream out;
  out << rate;
  return out.str();
}

}  // namespace

std::string CodesText(const std::vector<int>& codes) {
  std::string out;
  for (int c : codes) {
    out += out.empty() ? "" : ",";
    out += std::to_string(c);
  }
  return out;
}

void AppendBanNumericOptions(std::vector<NumericRange>* r) {
  using P = core::BanPolicy;
  r->push_back({"ban-window-seconds", 1, P::kMaxWindowSeconds,
                [](const Config& c) -> uint64_t { return c.bans.policy.window_seconds; },
                [](Config& c, uint64_t v) { c.bans.policy.window_seconds = int64_t(v); }});
  r->push_back({"ban-min-requests", 1, P::kMaxCount,
                [](const Config& c) -> uint64_t { return c.bans.policy.min_requests; },
                [](Config& c, uint64_t v) { c.bans.policy.min_requests = int64_t(v); }});
  r->push_back({"ban-consecutive-failures", 1, P::kMaxCount,
                [](const Config& c) -> uint64_t { return c.bans.policy.consecutive_failures; },
                [](Config& c, uint64_t v) { c.bans.policy.consecutive_failures = int64_t(v); }});
  r->push_back({"ban-cooldown-seconds", 1, P::kMaxCooldownSeconds,
                [](const Config& c) -> uint64_t { return c.bans.policy.cooldown_seconds; },
                [](Config& c, uint64_t v) { c.bans.policy.cooldown_seconds = int64_t(v); }});
  r->push_back({"ban-max-cooldown-seconds", 1, P::kMaxCooldownSeconds,
                [](const Config& c) -> uint64_t { return c.bans.policy.max_cooldown_seconds; },
                [](Config& c, uint64_t v) { c.bans.policy.max_cooldown_seconds = int64_t(v); }});
}

void DescribeBanOptions(po::options_description& opts, const BanConfig& bans, BanRawOptions& raw,
                        NumericText& numeric) {
  std::vector<NumericRange> ranges;
  AppendBanNumericOptions(&ranges);
  for (const NumericRange& r : ranges) {
    opts.add_options()(r.name, NumericValue(numeric, r.name),
                       ("ban rule: " + std::string(r.name + 4) + " (" + std::to_string(r.min) +
                        ".." + std::to_string(r.max) + ")")
                           .c_str());
  }
  raw.failure_rate = RateText(bans.policy.failure_rate);
  raw.immediate_codes = CodesText(bans.policy.immediate_codes);
  raw.cooldown_codes = CodesText(bans.policy.cooldown_codes);
  raw.keep_one_active = bans.policy.keep_one_active ? "true" : "false";
  // clang-format off
  opts.add_options()
      ("ban-failure-rate", po::value(&raw.failure_rate)->default_value(raw.failure_rate),
       "ban a key whose failures are at least this share of its window (0..1, above 0)")
      ("ban-immediate-codes",
       po::value(&raw.immediate_codes)->default_value(raw.immediate_codes),
       "failure codes that ban at once, comma-separated, or none")
      ("ban-cooldown-codes", po::value(&raw.cooldown_codes)->default_value(raw.cooldown_codes),
       "failure codes that cool a key for --ban-cooldown-seconds, comma-separated, or none")
      ("ban-keep-one-active",
       po::value(&raw.keep_one_active)->default_value(raw.keep_one_active),
       "never ban the last active key of a provider group: true or false");
  // clang-format on
}

Status ValidateBanOptions(const BanRawOptions& raw, BanConfig& bans) {
  core::BanPolicy& p = bans.policy;
  double rate = 0;
  auto [end, ec] = std::from_chars(raw.failure_rate.data(),
                                   raw.failure_rate.data() + raw.failure_rate.size(), rate);
  if (raw.failure_rate.empty() || ec != std::errc() ||
      end != raw.failure_rate.data() + raw.failure_rate.size() || !(rate > 0 && rate <= 1)) {
    return Status::InvalidArgument("--ban-failure-rate: must be a decimal above 0, at most 1");
  }
  p.failure_rate = rate;
  if (!ParseCodes(raw.immediate_codes, &p.immediate_codes)) {
    return Status::InvalidArgument(
        "--ban-immediate-codes: must be HTTP status codes separated by commas, or none");
  }
  if (!ParseCodes(raw.cooldown_codes, &p.cooldown_codes)) {
    return Status::InvalidArgument(
        "--ban-cooldown-codes: must be HTTP status codes separated by commas, or none");
  }
  if (raw.keep_one_active != "true" && raw.keep_one_active != "false") {
    return Status::InvalidArgument("--ban-keep-one-active: must be true or false");
  }
  p.keep_one_active = raw.keep_one_active == "true";
  if (Status s = p.Validate(); !s.ok()) {
    // "ban policy: cooldown_seconds must be ..." names the field; the option is --ban-<field>.
    return Status::InvalidArgument("--ban-* options: " + s.message());
  }
  return Status::Ok();
}

std::string BanOptionsText(const BanConfig& bans) {
  const core::BanPolicy& p = bans.policy;
  std::ostringstream out;
  out << "ban-window-seconds=" << p.window_seconds << " ban-min-requests=" << p.min_requests
      << " ban-failure-rate=" << RateText(p.failure_rate)
      << " ban-consecutive-failures=" << p.consecutive_failures
      << " ban-immediate-codes=" << CodesText(p.immediate_codes)
      << " ban-cooldown-codes=" << CodesText(p.cooldown_codes)
      << " ban-cooldown-seconds=" << p.cooldown_seconds
      << " ban-max-cooldown-seconds=" << p.max_cooldown_seconds
      << " ban-keep-one-active=" << (p.keep_one_active ? "true" : "false");
  return out.str();
}

}  // namespace tally::daemon
