// PgSink: applies committed DeltaBatches to ez-api's tables in PostgreSQL, each exactly once.
//
// One transaction per batch (read committed):
//   1. the source's row in tallyd_sources is created at mark 0 if missing and locked
//      (SELECT ... FOR UPDATE), so two appliers of one source take turns;
//   2. last_sequence at or below the mark: applied before, nothing is written (a replay);
//   3. otherwise one statement updates every key (UPDATE api_keys ... FROM unnest of three
//      bigint arrays: totals increased, rates recomputed, updated_at set) and, from the rows
//      it updated, each key's group by the group_id PostgreSQL holds; keys missing or
//      soft-deleted (deleted_at set) are not written, and come back as skipped;
//   4. the mark becomes last_sequence; commit.
// Because the mark moves in the same commit as the counts, a batch is in PostgreSQL's
// totals exactly when the mark covers it: a crash or a lost answer anywhere before the
// consumer's Ack leads to a re-apply that finds the mark and writes nothing.
//
// Serialization failures (40001) and deadlocks (40P01) retry the whole transaction at once
// (a few times, then Unavailable); a lost connection (or one PostgreSQL ends: restart,
// pg_terminate_backend) drops it and returns Unavailable, and the next call reconnects, so
// the caller's backoff paces reconnects. Counted in PostgresSinkMetrics.
//
// Thread safety: none; one thread (the consumer's) uses a sink. Metrics may be read from
// any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>

#include "core/delta_batch.h"
#include "core/status.h"
#include "daemon/metrics.h"

namespace pqxx {
class connection_base;
}

namespace tally::daemon {

struct PgApplyResult {
  bool replayed = false;        // at or below the mark: nothing written
  uint64_t deltas_applied = 0;  // keys written
  uint64_t keys_skipped = 0;    // unknown or soft-deleted keys
  uint64_t mark = 0;            // the source's mark after the transaction
};

class PgSink {
 public:
  // `conninfo`: a libpq keyword/value string (BuildConninfo). `metrics` outlives the sink.
  PgSink(std::string conninfo, PostgresSinkMetrics* metrics);
  ~PgSink();
  PgSink(const PgSink&) = delete;
  PgSink& operator=(const PgSink&) = delete;

  // Start-up: connects, creates ez-api's tables when `create_schema`, creates tallyd_sources
  // when missing, and checks every column (CheckSchema). Refused naming the column;
  // Unavailable when PostgreSQL cannot be reached.
  core::Status Open(bool create_schema);

  // Applies `batch` exactly once (above). Unavailable when PostgreSQL cannot be reached
  // or kept failing with serialization failures and deadlocks: call again later, with the
  // same batch. IoError for another error from PostgreSQL (a value out of range, a column
  // dropped since start-up): nothing was written; also worth calling again later.
  core::StatusOr<PgApplyResult> Apply(const core::DeltaBatch& batch);

  // The source's mark (0 when it has none yet); for tests and tools.
  core::StatusOr<uint64_t> Mark(const std::string& source);

  // The server process of the current connection (0 when none), for pg_terminate_backend.
  int BackendPid() const;

  // How many times in a row Apply retries a serialization failure or deadlock.
  static constexpr int kMaxTransactionAttempts = 16;

 private:
  core::Status Connect();
  // tallyd_sources created and the schema checked, once per sink (on conn_).
  core::Status CheckOnce();
  core::StatusOr<PgApplyResult> ApplyOnce(const core::DeltaBatch& batch);
  void LogSkipped(const std::string& source, uint64_t key);

  std::string conninfo_;
  PostgresSinkMetrics* metrics_;
  // libpqxx 6's connection_base has no virtual destructor: the connection is deleted as the
  // pqxx::connection it was made as (ASan: new-delete-type-mismatch otherwise).
  struct ConnectionDeleter {
    void operator()(pqxx::connection_base* conn) const;
  };
  std::unique_ptr<pqxx::connection_base, ConnectionDeleter> conn_;
  bool schema_checked_ = false;
  std::unordered_set<uint64_t> logged_skips_;  // keys already logged as skipped
  uint64_t unlogged_skips_ = 0;                // skips past the logged set's cap
};

}  // namespace tally::daemon
