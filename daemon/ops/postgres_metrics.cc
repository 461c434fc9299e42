#include "daemon/ops/postgres_metrics.h"

namespace tally::daemon {

void RenderPostgresMetrics(PromText& p, const PostgresSinkMetrics& pg) {
  p.Family("tallyd_postgres_batches_total", "counter",
           "Outbox batches the PostgreSQL sink finished, by result: applied (committed) or "
           "replayed (at or below the source's mark in tallyd_sources: nothing written).");
  p.Sample("tallyd_postgres_batches_total", "result=\"applied\"", pg.batches_applied.Get());
  p.Sample("tallyd_postgres_batches_total", "result=\"replayed\"", pg.batches_replayed.Get());
  p.Single("tallyd_postgres_deltas_applied_total", "counter",
           "Key deltas written to api_keys (and their groups) in PostgreSQL.",
           pg.deltas_applied.Get());
  p.Single("tallyd_postgres_keys_skipped_total", "counter",
           "Key deltas not written: the key is missing or soft-deleted in PostgreSQL.",
           pg.keys_skipped.Get());
  p.Family("tallyd_postgres_retries_total", "counter",
           "PostgreSQL transactions retried whole, by cause (serialization, deadlock, "
           "connection: lost or refused, then reconnected with backoff).");
  p.Sample("tallyd_postgres_retries_total", "cause=\"serialization\"",
           pg.retries_serialization.Get());
  p.Sample("tallyd_postgres_retries_total", "cause=\"deadlock\"", pg.retries_deadlock.Get());
  p.Sample("tallyd_postgres_retries_total", "cause=\"connection\"", pg.retries_connection.Get());
  uint64_t since = pg.oldest_pending_since_ns.Get();
  uint64_t now = SteadyNowNs();
  p.Single("tallyd_postgres_lag_seconds", "gauge",
           "How long the oldest outbox batch not yet applied to PostgreSQL has waited; 0 when "
           "none waits.",
           since == 0 || now < since ? 0.0 : static_cast<double>(now - since) / 1e9);
  p.Single("tallyd_postgres_connected", "gauge",
           "1 while the PostgreSQL sink holds a working connection.", pg.connected.Get());
}

}  // namespace tally::daemon
