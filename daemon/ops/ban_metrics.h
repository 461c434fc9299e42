// The ban rule's metrics (README "Bans"): bans by the rule that fired, the keys banned now,
// the bans withheld, the failure codes dropped, and the GET /admin/events streams waiting.
// Rendered into /metrics by RenderMetrics (endpoints.cc). Reads the BanKeeper's counters
// (its stats()) and the streams' count only: callable from any thread.
#pragma once

#include <cstddef>
#include <functional>

#include "daemon/ops/prom_text.h"
#include "persistence/ban_keeper.h"

namespace tally::daemon {

// Appends tallyd_bans_total, tallyd_keys_banned, tallyd_bans_withheld_total and
// tallyd_ban_codes_dropped_total to `p`, then tallyd_event_streams_waiting when
// `event_streams` is set. The caller renders none of them when the ban rule is off.
void RenderBanMetrics(PromText& p, const persistence::BanKeeper& bans,
                      const std::function<size_t()>& event_streams);

}  // namespace tally::daemon
