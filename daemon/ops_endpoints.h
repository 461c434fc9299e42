// The operational endpoints: /metrics (Prometheus text 0.0.4) and /readyz.
#pragma once

#include "daemon/api.h"
#include "daemon/http_server.h"

namespace tally::daemon {

Response MetricsResponse(const ApiContext& ctx);
// 200 when the database is open, the listeners are bound, tallyd is not stopping and the
// last flush succeeded; otherwise 503 with the reason.
Response ReadyResponse(const ApiContext& ctx);

}  // namespace tally::daemon
