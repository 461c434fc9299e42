// The operational endpoints: /healthz, /readyz, /metrics (Prometheus text 0.0.4) and
// POST /admin/checkpoint. The router (daemon/api/router.cc) checks the method and, for the
// checkpoint, the admin token; these build the answers from an OpsContext, which holds only
// what they read (the ops room sits below the api room and knows nothing of it). Health, readiness
// and metrics run on the I/O thread that read the request and only read what the hot path writes
// (per-thread counters, relaxed atomics) or the flusher's stats under its short lock, so a scrape
// never makes a receiving thread wait.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/counter_table.h"
#include "daemon/http/server.h"
#include "daemon/ingest/flusher.h"
#include "daemon/metrics.h"
#include "daemon/ops/group_metrics.h"
#include "persistence/ban_keeper.h"
#include "persistence/outbox_store.h"
#include "persistence/sources_store.h"
#include "persistence/store.h"
#include "persistence/window_store.h"

namespace tally::daemon {

// What the operational endpoints read; the references are owned by the Daemon and outlive
// every use.
struct OpsContext {
  uint32_t flush_interval_ms = 0;  // readiness allows 3 intervals without a flush
  std::string data_dir;            // a checkpoint may not go inside it
  std::string checkpoint_root;     // --checkpoint-root; empty: anywhere else
  const core::CounterTable& table;
  persistence::Store& store;  // DiskBytes, health, Checkpoint
  const Flusher& flusher;     // stats
  const CounterRegistry& counters;
  std::function<uint64_t()> kernel_drops;
  const std::atomic<bool>& listening;  // every listener is bound
  const std::atomic<bool>& stopping;
  const GroupMetrics* group_metrics = nullptr;  // per-group increments; none: not rendered
  // The mapping rules' names, by rule index (tallyd_mapped_lines_total); empty: none.
  std::vector<std::string> mapping_rules = {};
  const persistence::WindowStore* windows = nullptr;  // time-window metrics; null: none
  const persistence::BanKeeper* bans = nullptr;       // the ban rule's counts; null: none
  std::function<size_t()> event_streams = {};         // open GET /admin/events streams waiting
  // Forwarding (issue 17): the outbox (null when off) and the receiver's sources.
  const persistence::OutboxStore* outbox = nullptr;
  const persistence::SourcesStore* sources = nullptr;
  uint64_t outbox_max_bytes = 0;
};

// An event loop that has not stamped its heartbeat for this long fails /healthz.
inline constexpr std::chrono::seconds kLoopStallLimit{5};

// 200 {"status":"ok"} while every I/O thread's event loop runs (its heartbeat is recent)
// and no datagram receiver is down (ThreadCounters::receivers_down); otherwise 503 naming
// the stalled thread or the down receiver and its last error.
Response HealthResponse(const OpsContext& ctx);

// What readiness depends on; every time is Unix ns.
struct ReadinessInput {
  bool db_open = true;  // the Api exists only once the store is open
  bool listening = false;
  bool stopping = false;
  bool flush_failing = false;   // the last flush attempt failed
  int64_t last_ok_unix_ns = 0;  // the last successful flush; 0: none yet
  int64_t started_unix_ns = 0;  // when serving began; stands in for a flush before the first
  int64_t now_unix_ns = 0;
  int64_t interval_ns = 0;
};
// Why tallyd is not ready, or nullopt when it is: the database is open, the listeners are
// bound, it is not stopping, and the last flush succeeded within 3 flush intervals.
std::optional<std::string> NotReadyReason(const ReadinessInput& in);

// 200 {"status":"ready"}, or 503 {"error":"<reason>"}.
Response ReadyResponse(const OpsContext& ctx);

// The Prometheus text exposition of every tallyd_ metric.
Response MetricsResponse(const OpsContext& ctx);
// The same text, for tests and tools.
std::string RenderMetrics(const OpsContext& ctx);

// The longest "dir" a checkpoint request may name.
inline constexpr size_t kMaxCheckpointPathBytes = 1024;

// POST /admin/checkpoint {"dir":"/absolute/path"}: a RocksDB checkpoint of the live
// database (hard links where possible) in a new directory. The parent's symlinks are
// resolved first; the target must not exist, nor `dir`.tmp, and is created by tallyd, so
// nothing tallyd did not create is ever deleted. 201 {"dir":<resolved>,"seconds":...} on
// success; 400 for a bad body, a relative path, a NUL, a path over 1024 bytes, a missing
// parent, a target under /proc, /sys, /dev, inside the data dir or outside
// --checkpoint-root, or one the OS refuses to create (permissions, read-only); 409 when the
// target or its .tmp exists or another checkpoint into it is running; 500 when RocksDB fails.
// Blocks for the checkpoint (a memtable flush and file links: milliseconds to a second), so
// the router runs it on the API's worker pool, never on an I/O thread.
Response CheckpointResponse(const OpsContext& ctx, const Request& req);

}  // namespace tally::daemon
