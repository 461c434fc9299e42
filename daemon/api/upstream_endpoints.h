// Upstream endpoints (issue 17): the outbox's state and its dead letters on an edge
// (GET /admin/outbox, POST /admin/outbox/dead/{id}/retry, DELETE /admin/outbox/dead/{id}),
// and the sources a central tallyd has applied batches from (GET /admin/sources). The
// receiving side of forwarded batches is CountingEndpoints::SourcedFlush (sourced_flush.cc).
//
// Threads: every handler runs its store work on the Workers (writes on the write strand).
#pragma once

#include <cstdint>

#include "daemon/api/call.h"
#include "persistence/outbox_store.h"
#include "persistence/sources_store.h"

namespace tally::daemon {

// What the upstream endpoints read; owned by the Daemon, outliving the endpoints.
struct UpstreamContext {
  persistence::OutboxStore* outbox = nullptr;  // null: forwarding is off
  const persistence::SourcesStore* sources = nullptr;
  uint64_t outbox_max_bytes = 0;
};

class UpstreamEndpoints {
 public:
  UpstreamEndpoints(UpstreamContext ctx, Workers& workers) : ctx_(ctx), workers_(workers) {}

  // 200 {"enabled":false} without --forward-url; else the outbox's state (README).
  void Outbox(Call call);
  // 200 {"retried":id,"consumer":"forward"}; 404 when there is no such dead letter.
  void RetryDead(Call call);
  // 204; 404 when there is no such dead letter.
  void DeleteDead(Call call);
  // 200 {"sources":[{"source","last_sequence","last_seen","replays","gaps"}]}.
  void Sources(Call call);

 private:
  UpstreamContext ctx_;
  Workers& workers_;
};

}  // namespace tally::daemon
