// Window endpoints (issue 15): counts over [since, until) from the minute/hour/day buckets
// (persistence/window_store.h). Admin token; every bad parameter is a 400 naming it.
//
//   GET /admin/apikey-stats/summary?since=&until=[&group_id=]   without since: the lifetime
//       summary (CountingEndpoints::Summary), unchanged
//   GET /admin/api-keys/{id}/stats?since=&until=&step=          one key's series
//   GET /admin/provider-groups/{id}/stats?since=&until=&step=   one group's series
//   GET /admin/apikey-stats/series?since=&until=&step=          the whole's series
//   GET /admin/apikey-stats/top?since=&until=&by=&limit=&min_requests=[&group_id=]
//
// Time rules (core/windows.h): since/until are Unix seconds or RFC 3339; until defaults to
// now; since rounds down and until up to bucket edges, and the answer names the effective
// since and until (Unix seconds). Series: step 60, 3600 or 86400 (default 60), at most
// 10,000 points, and a 400 when the step's buckets no longer reach back to since.
//
// Threads: parameters are checked on the I/O thread; reads run on the Workers.
#pragma once

#include "daemon/api/call.h"
#include "daemon/api/counting.h"
#include "persistence/store.h"
#include "persistence/window_store.h"

namespace tally::daemon {

// Owned by the Daemon; outlive the endpoints.
struct WindowsContext {
  persistence::Store& store;
  const persistence::WindowStore& windows;
};

class WindowEndpoints {
 public:
  WindowEndpoints(WindowsContext ctx, Workers& workers, CountingEndpoints& counting)
      : ctx_(ctx), workers_(workers), counting_(counting) {}

  void Summary(Call call);
  void KeyStats(Call call);
  void GroupStats(Call call);
  void Series(Call call);
  void Top(Call call);

 private:
  void SeriesOf(Call call, core::Scope scope, uint64_t id);

  WindowsContext ctx_;
  Workers& workers_;
  CountingEndpoints& counting_;
};

}  // namespace tally::daemon
