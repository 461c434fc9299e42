#include "daemon/ops/ban_metrics.h"

#include <fmt/format.h>

#include "core/ban_policy.h"

namespace tally::daemon {

void RenderBanMetrics(PromText& p, const persistence::BanKeeper& bans,
                      const std::function<size_t()>& event_streams) {
  const persistence::BanKeeper::Stats s = bans.stats();
  p.Family("tallyd_bans_total", "counter", "Keys banned by the ban rule, by the rule that fired.");
  for (core::BanRule rule : {core::BanRule::kImmediateCode, core::BanRule::kCooldownCode,
                             core::BanRule::kFailureRate, core::BanRule::kRun}) {
    p.Sample("tallyd_bans_total", fmt::format("reason=\"{}\"", core::BanRuleName(rule)),
             s.bans[static_cast<size_t>(rule)]);
  }
  p.Single("tallyd_keys_banned", "gauge", "Live keys whose status is auto_disabled.", s.banned_now);
  p.Single("tallyd_bans_withheld_total", "counter",
           "Bans not made because keep_one_active kept the group's last active key.", s.withheld);
  p.Single("tallyd_ban_codes_dropped_total", "counter",
           "Failure codes the ban rule's side channel had no room for (their failures still "
           "count).",
           s.codes_dropped);
  if (event_streams) {
    p.Single("tallyd_event_streams_waiting", "gauge",
             "GET /admin/events streams waiting for their next event.",
             static_cast<uint64_t>(event_streams()));
  }
}

}  // namespace tally::daemon
