// Ban endpoints (issue 16; README "Bans"), admin token:
//
//   GET  /admin/ban-policy            200 the policy the next flush applies
//   PUT  /admin/ban-policy            200 the new policy | 400 naming the bad field (nothing
//                                     changed). The body is a JSON object of the policy's
//                                     fields; a field left out keeps its current value, an
//                                     unknown one is 400. Validated as a whole, persisted
//                                     (synced) with a `policy` event; the next flush applies it.
//   POST /admin/api-keys/{id}/unban   200 the key, back to `active` with ban_reason and
//                                     ban_until cleared and its backoff reset (an `unban`
//                                     event when it was auto_disabled) | 404
//   GET  /admin/events                text/event-stream of ban, unban and policy events
//                                     (ban_events.h); HTTP/1.1 only (chunked), 400 otherwise.
#pragma once

#include <memory>
#include <string>

#include "core/ban_policy.h"
#include "core/status.h"
#include "daemon/api/ban_events.h"
#include "daemon/api/call.h"
#include "persistence/ban_keeper.h"
#include "persistence/store.h"

namespace tally::daemon {

struct BansContext {
  persistence::Store* store = nullptr;
  persistence::BanKeeper* keeper = nullptr;  // null: the endpoints answer 503
  std::shared_ptr<BanEventHub> hub;
};

// The policy as JSON ({"window_seconds":60,...}), and back: a field left out of `body` keeps
// its value in `current`; InvalidArgument naming an unknown field, a wrong type or the
// policy's first bad field.
std::string RenderBanPolicy(const core::BanPolicy& p);
core::StatusOr<core::BanPolicy> ParseBanPolicy(std::string_view body,
                                               const core::BanPolicy& current);

class BanEndpoints {
 public:
  BanEndpoints(BansContext ctx, Workers& workers) : ctx_(std::move(ctx)), workers_(workers) {}

  void GetPolicy(Call call);
  void PutPolicy(Call call);
  void Unban(Call call);
  void Events(Call call);

 private:
  BansContext ctx_;
  Workers& workers_;
};

}  // namespace tally::daemon
