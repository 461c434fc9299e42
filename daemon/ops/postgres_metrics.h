// The PostgreSQL sink's metrics (daemon/upstream/pg_sink.h; docs/operations.md,
// "PostgreSQL"): batches applied and replayed, deltas applied, keys skipped, retries by
// cause, the lag of the oldest batch waiting, the connection. Rendered into /metrics by
// RenderMetrics (endpoints.cc). Reads relaxed atomics only: callable from any thread.
#pragma once

#include "daemon/metrics.h"
#include "daemon/ops/prom_text.h"

namespace tally::daemon {

// Appends the tallyd_postgres_* families to `p`; all zero without --postgres-url.
void RenderPostgresMetrics(PromText& p, const PostgresSinkMetrics& pg);

}  // namespace tally::daemon
