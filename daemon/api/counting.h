// Counting endpoints: POST /v1/ingest (statsd lines over HTTP), POST
// /internal/apikey-stats/flush (ez-api's deltas, optionally idempotent), POST /admin/flush
// and GET /admin/apikey-stats/summary. The router (router.h) checks path, method and token
// first; these validate the request as a whole before anything is counted or applied.
//
// Threads: Ingest counts on the I/O thread (the table is lock-free); store calls run on the
// Workers (InternalFlush on the write strand); wait=flush and /admin/flush answer from the
// flusher thread.
#pragma once

#include <cstdint>
#include <string>

#include "core/counter_table.h"
#include "core/failure_codes.h"
#include "core/mapping.h"
#include "daemon/api/call.h"
#include "daemon/ingest/flusher.h"
#include "daemon/metrics.h"
#include "persistence/sources_store.h"
#include "persistence/store.h"

namespace tally::daemon {

// What the counting endpoints read and drive; the references are owned by the Daemon and
// outlive the endpoints.
struct CountingContext {
  std::string metric_prefix;  // --metric-prefix: statsd lines outside it are ignored
  uint64_t max_keys = 0;      // --max-keys: an internal flush creates no key records past it
  core::CounterTable& table;
  Flusher& flusher;
  persistence::Store& store;
  ProcessMetrics& process;  // internal_flush_dropped_deleted
  // --mapping-file / --mapping-preset: rules for lines the own protocol ignores; null: none.
  std::shared_ptr<const core::Mapping> mapping = nullptr;
  core::FailureCodes* failure_codes = nullptr;  // the ban rule's codes (core/failure_codes.h)
  // The receiver's per-source marks (Tally-Source/Tally-Sequence; sourced_flush.cc).
  persistence::SourcesStore* sources = nullptr;
};

class CountingEndpoints {
 public:
  CountingEndpoints(CountingContext ctx, Workers& workers)
      : ctx_(std::move(ctx)), workers_(workers) {}

  void Ingest(Call call);
  void InternalFlush(Call call);
  void AdminFlush(Call call);
  void Summary(Call call);

 private:
  // An internal flush that carries Tally-Source and Tally-Sequence (sourced_flush.cc).
  void SourcedFlush(Call call, std::vector<core::KeyDelta> deltas);
  // Counts what an internal flush dropped (deleted keys) in /metrics.
  void CountDropped(const persistence::FlushResult& r);

  CountingContext ctx_;
  Workers& workers_;
};

}  // namespace tally::daemon
