#include "daemon/upstream/pg_sink.h"

#include <charconv>
#include <limits>
#include <pqxx/pqxx>

#include "daemon/log.h"
#include "daemon/upstream/pg_conninfo.h"
#include "daemon/upstream/pg_schema.h"

namespace tally::daemon {
namespace {

// Keys remembered as logged; past it, skipped keys are counted and summarised.
constexpr size_t kMaxLoggedSkips = 100'000;

// One statement for every key and its group. k: the live keys of the batch, updated, with
// their group and deltas; the groups updated once each, with the sums of their keys'
// deltas (data-modifying CTEs run to completion whatever the final SELECT reads). Returns
// how many keys were updated; fewer than the batch's means some were missing or
// soft-deleted (kSkippedSql names them, in the same transaction).
constexpr const char* kApplySql = R"(
WITH k AS (
  UPDATE api_keys AS t SET
    total_requests = t.total_requests + d.s + d.f,
    success_requests = t.success_requests + d.s,
    failure_requests = t.failure_requests + d.f,
    success_rate = CASE WHEN t.total_requests + d.s + d.f = 0 THEN 0 ELSE
      (t.success_requests + d.s)::double precision / (t.total_requests + d.s + d.f) END,
    failure_rate = CASE WHEN t.total_requests + d.s + d.f = 0 THEN 0 ELSE
      (t.failure_requests + d.f)::double precision / (t.total_requests + d.s + d.f) END,
    updated_at = now()
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(id, s, f)
  WHERE t.id = d.id AND t.deleted_at IS NULL
  RETURNING t.group_id, d.s, d.f),
x AS (SELECT group_id, sum(s)::bigint AS s, sum(f)::bigint AS f FROM k GROUP BY group_id),
g AS (
  UPDATE provider_groups AS t SET
    total_requests = t.total_requests + x.s + x.f,
    success_requests = t.success_requests + x.s,
    failure_requests = t.failure_requests + x.f,
    success_rate = CASE WHEN t.total_requests + x.s + x.f = 0 THEN 0 ELSE
      (t.success_requests + x.s)::double precision / (t.total_requests + x.s + x.f) END,
    failure_rate = CASE WHEN t.total_requests + x.s + x.f = 0 THEN 0 ELSE
      (t.failure_requests + x.f)::double precision / (t.total_requests + x.s + x.f) END,
    updated_at = now()
  FROM x WHERE t.id = x.group_id
  RETURNING t.id)
SELECT count(*) FROM k
)";

// The batch's keys that are missing or soft-deleted (so kApplySql did not update them).
constexpr const char* kSkippedSql =
    "SELECT d.id FROM unnest($1::bigint[]) AS d(id) WHERE NOT EXISTS "
    "(SELECT 1 FROM api_keys AS t WHERE t.id = d.id AND t.deleted_at IS NULL)";

// A PostgreSQL array literal of the values picked from every delta: "{1,2,3}".
template <typename Pick>
std::string ArrayLiteral(const core::DeltaBatch& batch, Pick pick) {
  std::string out;
  out.reserve(batch.deltas.size() * 8 + 2);
  out += '{';
  char buf[24];
  for (size_t i = 0; i < batch.deltas.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, pick(batch.deltas[i]));
    out.append(buf, end);
  }
  out += '}';
  return out;
}

// True for the SQLSTATEs of a connection PostgreSQL ended or never gave: class 08
// (connection exception) and 57P01..57P03 (admin shutdown, crash shutdown, cannot connect
// now), and of a server out of connections (53300).
bool ConnectionState(const std::string& state) {
  return state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03" ||
         state == "53300";
}

constexpr int64_t kMaxBigint = std::numeric_limits<int64_t>::max();

}  // namespace

PgSink::PgSink(std::string conninfo, PostgresSinkMetrics* metrics)
    : conninfo_(std::move(conninfo)), metrics_(metrics) {}

PgSink::~PgSink() = default;

void PgSink::ConnectionDeleter::operator()(pqxx::connection_base* conn) const {
  delete static_cast<pqxx::connection*>(conn);  // made as one in Connect()
}

core::Status PgSink::Connect() {
  conn_.reset();
  metrics_->connected.Set(0);
  try {
    conn_.reset(new pqxx::connection(conninfo_));
  } catch (const std::exception& e) {
    return core::Status::Unavailable(std::string("PostgreSQL: cannot connect: ") + PgMessage(e));
  }
  metrics_->connected.Set(1);
  return core::Status::Ok();
}

core::Status PgSink::Open(bool create_schema) {
  if (core::Status s = Connect(); !s.ok()) {
    return s;
  }
  if (create_schema) {
    if (core::Status s = CreateEzApiTables(*conn_); !s.ok()) {
      return s;
    }
  }
  return CheckOnce();
}

core::Status PgSink::CheckOnce() {
  if (schema_checked_) {
    return core::Status::Ok();
  }
  if (core::Status s = EnsureSourcesTable(*conn_); !s.ok()) {
    return s;
  }
  core::Status s = CheckSchema(*conn_);
  schema_checked_ = s.ok();
  return s;
}

int PgSink::BackendPid() const { return conn_ ? conn_->backendpid() : 0; }

core::StatusOr<uint64_t> PgSink::Mark(const std::string& source) {
  if (!conn_) {
    if (core::Status s = Connect(); !s.ok()) {
      return s;
    }
  }
  try {
    pqxx::work tx(*conn_);
    pqxx::result r =
        tx.exec_params("SELECT last_sequence FROM tallyd_sources WHERE source = $1", source);
    tx.commit();
    return r.empty() ? uint64_t{0} : r[0][0].as<uint64_t>();
  } catch (const std::exception& e) {
    conn_.reset();
    metrics_->connected.Set(0);
    return core::Status::Unavailable(std::string("PostgreSQL: ") + PgMessage(e));
  }
}

core::StatusOr<PgApplyResult> PgSink::Apply(const core::DeltaBatch& batch) {
  if (batch.last_sequence > static_cast<uint64_t>(kMaxBigint)) {
    return core::Status::InvalidArgument("batch sequence past PostgreSQL's bigint");
  }
  for (const core::KeyDelta& d : batch.deltas) {
    if (d.key > static_cast<uint64_t>(kMaxBigint) ||
        d.successes > static_cast<uint64_t>(kMaxBigint) ||
        d.failures > static_cast<uint64_t>(kMaxBigint)) {
      return core::Status::InvalidArgument("a delta past PostgreSQL's bigint (key " +
                                           std::to_string(d.key) + ")");
    }
  }
  for (int attempt = 1;; ++attempt) {
    if (!conn_) {
      if (core::Status s = Connect(); !s.ok()) {
        metrics_->retries_connection.Add(1);
        return s;
      }
    }
    if (core::Status s = CheckOnce(); !s.ok()) {
      conn_.reset();  // whatever failed, the next call starts over
      metrics_->connected.Set(0);
      return s;
    }
    std::string why;
    try {
      return ApplyOnce(batch);
    } catch (const pqxx::deadlock_detected& e) {
      metrics_->retries_deadlock.Add(1);
      why = PgMessage(e);
    } catch (const pqxx::serialization_failure& e) {
      metrics_->retries_serialization.Add(1);
      why = PgMessage(e);
    } catch (const pqxx::transaction_rollback& e) {
      // Another rollback class (40000, 40002, 40003): retried like a serialization failure;
      // should the commit have happened after all, the retry finds the mark moved.
      metrics_->retries_serialization.Add(1);
      why = PgMessage(e);
    } catch (const pqxx::sql_error& e) {
      if (!ConnectionState(e.sqlstate()) && conn_->is_open()) {
        return core::Status::IoError(std::string("PostgreSQL: ") + PgMessage(e));
      }
      conn_.reset();
      metrics_->connected.Set(0);
      metrics_->retries_connection.Add(1);
      return core::Status::Unavailable(std::string("PostgreSQL: connection lost: ") + PgMessage(e));
    } catch (const std::exception& e) {
      // broken_connection, in_doubt_error (the commit's outcome unknown: the next attempt
      // reads the mark and finds out), or anything on a connection that is gone.
      conn_.reset();
      metrics_->connected.Set(0);
      metrics_->retries_connection.Add(1);
      return core::Status::Unavailable(std::string("PostgreSQL: connection lost: ") + PgMessage(e));
    }
    if (attempt >= kMaxTransactionAttempts) {
      return core::Status::Unavailable("PostgreSQL: " + std::to_string(attempt) +
                                       " attempts in a row rolled back; last: " + why);
    }
  }
}

core::StatusOr<PgApplyResult> PgSink::ApplyOnce(const core::DeltaBatch& batch) {
  PgApplyResult result;
  pqxx::work tx(*conn_);
  tx.exec_params0(
      "INSERT INTO tallyd_sources (source, last_sequence, updated_at) VALUES ($1, 0, now()) "
      "ON CONFLICT (source) DO NOTHING",
      batch.source);
  pqxx::row mark_row = tx.exec_params1(
      "SELECT last_sequence FROM tallyd_sources WHERE source = $1 FOR UPDATE", batch.source);
  uint64_t mark = mark_row[0].as<uint64_t>();
  if (batch.last_sequence <= mark) {
    tx.commit();  // releases the row lock; nothing was written but the mark's row
    result.replayed = true;
    result.mark = mark;
    metrics_->batches_replayed.Add(1);
    return result;
  }
  if (batch.first_sequence > mark + 1 && mark != 0) {
    LogPostgres()->warn(
        "source {}: sequences {}..{} never reached PostgreSQL (mark {}, batch {}..{})",
        batch.source, mark + 1, batch.first_sequence - 1, mark, batch.first_sequence,
        batch.last_sequence);
  }
  std::vector<uint64_t> skipped;
  if (!batch.deltas.empty()) {
    std::string ids = ArrayLiteral(batch, [](const core::KeyDelta& d) { return d.key; });
    pqxx::row updated = tx.exec_params1(
        kApplySql, ids, ArrayLiteral(batch, [](const core::KeyDelta& d) { return d.successes; }),
        ArrayLiteral(batch, [](const core::KeyDelta& d) { return d.failures; }));
    if (updated[0].as<uint64_t>() < batch.deltas.size()) {
      for (const pqxx::row& row : tx.exec_params(kSkippedSql, ids)) {
        skipped.push_back(row[0].as<uint64_t>());
      }
    }
  }
  tx.exec_params0(
      "UPDATE tallyd_sources SET last_sequence = $2, updated_at = now() WHERE source = $1",
      batch.source, static_cast<int64_t>(batch.last_sequence));
  tx.commit();
  result.mark = batch.last_sequence;
  result.keys_skipped = skipped.size();
  result.deltas_applied = batch.deltas.size() - skipped.size();
  metrics_->batches_applied.Add(1);
  metrics_->deltas_applied.Add(result.deltas_applied);
  metrics_->keys_skipped.Add(result.keys_skipped);
  for (uint64_t key : skipped) {
    LogSkipped(batch.source, key);
  }
  return result;
}

void PgSink::LogSkipped(const std::string& source, uint64_t key) {
  if (logged_skips_.count(key) != 0) {
    return;
  }
  if (logged_skips_.size() >= kMaxLoggedSkips) {
    // Counted in tallyd_postgres_keys_skipped_total; the log line would repeat for ever.
    if (unlogged_skips_++ % 100'000 == 0) {
      LogPostgres()->warn(
          "more keys missing or soft-deleted in PostgreSQL than are logged "
          "one by one ({}); see tallyd_postgres_keys_skipped_total",
          kMaxLoggedSkips);
    }
    return;
  }
  logged_skips_.insert(key);
  LogPostgres()->warn(
      "key {} (from source {}) is missing or soft-deleted in PostgreSQL: its deltas are "
      "skipped, never created (logged once per key)",
      key, source);
}

}  // namespace tally::daemon
