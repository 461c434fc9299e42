#include "daemon/ops/endpoints.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "core/clock.h"
#include "daemon/http/json_writer.h"
#include "daemon/log.h"
#include "daemon/ops/ban_metrics.h"
#include "daemon/ops/postgres_metrics.h"
#include "daemon/ops/process_stats.h"
#include "daemon/ops/prom_text.h"
#include "daemon/ops/upstream_metrics.h"

#ifndef TALLYD_VERSION
#define TALLYD_VERSION "0.0.0"
#endif

namespace tally::daemon {
namespace {

constexpr std::array<const char*, 4> kResults = {"accepted", "ignored", "malformed", "refused"};

// The first datagram receiver that is down (daemon/ingest/datagram_receiver.h), as a reason.
std::optional<std::string> DownReceiver(const CounterRegistry& counters) {
  std::optional<std::string> reason;
  counters.ForEach([&](size_t index, const ThreadCounters& c) {
    for (size_t t = 0; t < kTransports && !reason; ++t) {
      if (c.receivers_down[t].Get() != 0) {
        reason =
            fmt::format("the {} datagram receiver on I/O thread {} is down: {}", kTransportNames[t],
                        index, std::strerror(static_cast<int>(c.receive_errno[t].Get())));
      }
    }
  });
  return reason;
}

}  // namespace

Response HealthResponse(const OpsContext& ctx) {
  if (ctx.stopping.load(std::memory_order_relaxed)) {
    // Alive and stopping in order; the heartbeats are cancelled by then.
    return JsonResponse(http::status::ok, R"({"status":"stopping"})");
  }
  const uint64_t now = SteadyNowNs();
  const auto limit = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(kLoopStallLimit).count());
  std::string stalled;
  ctx.counters.ForEach([&](size_t index, const ThreadCounters& c) {
    uint64_t beat = c.loop_heartbeat_ns.Get();
    if (beat != 0 && now > beat && now - beat > limit && stalled.empty()) {
      stalled = fmt::format("I/O thread {} has not run its event loop for {:.1f} s", index,
                            static_cast<double>(now - beat) / 1e9);
    }
  });
  if (!stalled.empty()) {
    return JsonError(http::status::service_unavailable, stalled);
  }
  if (std::optional<std::string> down = DownReceiver(ctx.counters)) {
    return JsonError(http::status::service_unavailable, *down);
  }
  return JsonResponse(http::status::ok, R"({"status":"ok"})");
}

std::optional<std::string> NotReadyReason(const ReadinessInput& in) {
  if (in.stopping) {
    return "stopping";
  }
  if (!in.db_open) {
    return "the database is not open";
  }
  if (!in.listening) {
    return "the listeners are not bound yet";
  }
  if (in.flush_failing) {
    return "the last flush failed";
  }
  int64_t since = in.last_ok_unix_ns != 0 ? in.last_ok_unix_ns : in.started_unix_ns;
  if (in.now_unix_ns - since > 3 * in.interval_ns) {
    return fmt::format("no successful flush for {:.1f} s, more than 3 flush intervals",
                       static_cast<double>(in.now_unix_ns - since) / 1e9);
  }
  return std::nullopt;
}

Response ReadyResponse(const OpsContext& ctx) {
  FlushStats stats = ctx.flusher.stats();
  ReadinessInput in;
  in.listening = ctx.listening.load(std::memory_order_relaxed);
  in.stopping = ctx.stopping.load(std::memory_order_relaxed);
  in.flush_failing = stats.failing;
  in.last_ok_unix_ns = stats.last_ok_unix_ns;
  in.started_unix_ns = ctx.counters.process.started_unix_ns.load(std::memory_order_relaxed);
  in.now_unix_ns = core::UnixNowNs();
  in.interval_ns = int64_t{ctx.flush_interval_ms} * 1'000'000;
  if (std::optional<std::string> reason = NotReadyReason(in)) {
    return JsonError(http::status::service_unavailable, *reason);
  }
  // Relaxed: a gate (ForwardMetrics).
  if (ctx.outbox != nullptr &&
      ctx.counters.process.forward.outbox_full.load(std::memory_order_relaxed)) {
    return JsonError(http::status::service_unavailable,
                     fmt::format("the outbox holds {} bytes, past --outbox-max-bytes {}: new "
                                 "lines are refused until the upstream takes batches",
                                 ctx.outbox->bytes(), ctx.outbox_max_bytes));
  }
  return JsonResponse(http::status::ok, R"({"status":"ready"})");
}

namespace {

// The families of one part of tallyd: datagrams and lines; HTTP; the key table and the store;
// flushes. Each appends to `p`.
void RenderIngestMetrics(PromText& p, const OpsContext& ctx) {
  const CounterRegistry& reg = ctx.counters;
  auto sum = [&reg](auto pick) { return reg.Sum(pick); };
  p.Family("tallyd_lines_total", "counter", "Statsd lines received, by transport and result.");
  for (size_t t = 0; t < kTransports; ++t) {
    for (size_t r = 0; r < kResults.size(); ++r) {
      p.Sample("tallyd_lines_total",
               fmt::format("transport=\"{}\",result=\"{}\"", kTransportNames[t], kResults[r]),
               sum([&](const ThreadCounters& c) -> const OwnedCounter& { return c.lines[t][r]; }));
    }
  }
  p.Family("tallyd_mapped_lines_total", "counter",
           "Lines a mapping rule matched (--mapping-file, --mapping-preset), by rule.");
  for (size_t i = 0; i < ctx.mapping_rules.size(); ++i) {
    p.Sample(
        "tallyd_mapped_lines_total", fmt::format("rule=\"{}\"", ctx.mapping_rules[i]),
        sum([i](const ThreadCounters& c) -> const OwnedCounter& { return c.mapped_lines[i]; }));
  }
  p.Family("tallyd_mapped_lines_without_key_total", "counter",
           "Lines a mapping rule matched whose key part held no key id (ignored), by rule.");
  for (size_t i = 0; i < ctx.mapping_rules.size(); ++i) {
    p.Sample("tallyd_mapped_lines_without_key_total",
             fmt::format("rule=\"{}\"", ctx.mapping_rules[i]),
             sum([i](const ThreadCounters& c) -> const OwnedCounter& {
               return c.mapped_without_key[i];
             }));
  }
  p.Family("tallyd_datagrams_total", "counter", "Datagrams received, by transport.");
  for (Transport t : {Transport::kUdp, Transport::kUnix}) {
    auto i = static_cast<size_t>(t);
    p.Sample("tallyd_datagrams_total", fmt::format("transport=\"{}\"", kTransportNames[i]),
             sum([i](const ThreadCounters& c) -> const OwnedCounter& { return c.datagrams[i]; }));
  }
  p.Single(
      "tallyd_datagrams_truncated_total", "counter",
      "Datagrams longer than tallyd receives whole (UDP 64 KiB, Unix 512 KiB), refused whole: "
      "none of their lines counted.",
      sum([](const ThreadCounters& c) -> const OwnedCounter& { return c.truncated_datagrams; }));
  p.Single("tallyd_unix_datagrams_with_fds_total", "counter",
           "Unix datagrams that carried descriptors (SCM_RIGHTS); the descriptors were closed "
           "unopened and the lines counted.",
           sum([](const ThreadCounters& c) -> const OwnedCounter& {
             return c.unix_datagrams_with_fds;
           }));
  p.Family("tallyd_datagram_receive_errors_total", "counter",
           "Datagram receive failures other than EAGAIN, by transport (each is retried).");
  for (Transport t : {Transport::kUdp, Transport::kUnix}) {
    auto i = static_cast<size_t>(t);
    p.Sample(
        "tallyd_datagram_receive_errors_total", fmt::format("transport=\"{}\"", kTransportNames[i]),
        sum([i](const ThreadCounters& c) -> const OwnedCounter& { return c.receive_errors[i]; }));
  }
  p.Family("tallyd_datagram_receivers_down", "gauge",
           "Datagram receivers failing for 5 s or closed for good, by transport (/healthz 503).");
  for (Transport t : {Transport::kUdp, Transport::kUnix}) {
    auto i = static_cast<size_t>(t);
    uint64_t down = 0;
    reg.ForEach([&](size_t, const ThreadCounters& c) { down += c.receivers_down[i].Get(); });
    p.Sample("tallyd_datagram_receivers_down", fmt::format("transport=\"{}\"", kTransportNames[i]),
             down);
  }
  p.Single("tallyd_udp_kernel_drops_total", "counter",
           "Datagrams the kernel dropped for want of receive buffer (SO_RXQ_OVFL), over the "
           "life of the socket.",
           ctx.kernel_drops ? ctx.kernel_drops() : uint64_t{0});
}

void RenderHttpMetrics(PromText& p, const OpsContext& ctx) {
  const CounterRegistry& reg = ctx.counters;
  auto sum = [&reg](auto pick) { return reg.Sum(pick); };
  p.Family("tallyd_http_requests_total", "counter", "HTTP answers sent, by status code.");
  for (size_t i = 0; i <= kHttpCodes.size(); ++i) {
    std::string code = i < kHttpCodes.size() ? std::to_string(kHttpCodes[i]) : "other";
    p.Sample("tallyd_http_requests_total", fmt::format("code=\"{}\"", code),
             sum([i](const ThreadCounters& c) -> const OwnedCounter& { return c.http_status[i]; }));
  }
  p.Single("tallyd_http_connections", "gauge", "Open HTTP connections.",
           uint64_t{reg.process.http_connections.load(std::memory_order_relaxed)});
  p.Single(
      "tallyd_http_connections_refused_total", "counter",
      "Connections closed at once because --max-connections were open.",
      sum([](const ThreadCounters& c) -> const OwnedCounter& { return c.connections_refused; }));
  p.Single("tallyd_http_accept_errors_total", "counter",
           "accept() failures (e.g. out of file descriptors).",
           sum([](const ThreadCounters& c) -> const OwnedCounter& { return c.accept_errors; }));
}

void RenderStoreMetrics(PromText& p, const OpsContext& ctx) {
  p.Single("tallyd_keys", "gauge", "Distinct keys in the in-memory counter table.",
           uint64_t{ctx.table.keys()});
  p.Single("tallyd_keys_max", "gauge", "The counter table's capacity in keys (--max-keys).",
           uint64_t{ctx.table.max_keys()});
  p.Single("tallyd_keys_refused_total", "counter",
           "Increments refused because the counter table was full.", ctx.table.refused());
  p.Single("tallyd_deleted_lines_refused_total", "counter",
           "Lines refused at ingest because their key was deleted.", ctx.table.deleted_refused());
  // RocksDB's own bookkeeping, not the Store's lock (which a flush holds through its write).
  p.Single("tallyd_db_size_bytes", "gauge", "RocksDB files on disk (SST and WAL), bytes.",
           ctx.store.DiskBytes());

  persistence::StoreHealth health = ctx.store.health();
  p.Single("tallyd_store_background_errors_total", "counter",
           "RocksDB background errors (failed writes, memtable flushes, compactions).",
           health.background_errors);
  p.Family("tallyd_store_write_stalls_total", "counter",
           "Times a column family's writes entered a RocksDB write stall, by state.");
  p.Sample("tallyd_store_write_stalls_total", "state=\"delayed\"", health.stalls_delayed);
  p.Sample("tallyd_store_write_stalls_total", "state=\"stopped\"", health.stalls_stopped);
  p.Single("tallyd_store_write_stalled", "gauge",
           "1 while RocksDB delays or stops writes to some column family.",
           uint64_t{health.stalled ? 1u : 0u});
  p.Single("tallyd_store_wal_damage_recovered", "gauge",
           "1 when this start replayed the write-ahead log only up to damage "
           "(--wal-recovery=point-in-time): flushes after it were lost.",
           uint64_t{health.wal_damage_skipped ? 1u : 0u});
  if (ctx.windows != nullptr) {
    const persistence::WindowStats w = ctx.windows->stats();
    p.Single("tallyd_window_buckets_written_total", "counter",
             "Time-window bucket updates (merge operands) written by committed flushes.",
             w.buckets_written);
    p.Single("tallyd_window_rollups_total", "counter",
             "Minutes of per-key counts rolled up from the journal into key buckets.", w.rollups);
    p.Single("tallyd_window_sweeps_total", "counter",
             "Range deletions of expired time-window buckets committed.", w.sweeps);
    p.Single("tallyd_window_pending_keys", "gauge",
             "Per-key sums of the minutes not yet rolled up, held in memory.", w.pending_keys);
  }
}

void RenderFlushMetrics(PromText& p, const OpsContext& ctx) {
  const CounterRegistry& reg = ctx.counters;
  FlushStats stats = ctx.flusher.stats();
  p.Family("tallyd_flushes_total", "counter",
           "Flush attempts by result (an attempt with nothing pending is a drain only).");
  p.Sample("tallyd_flushes_total", "result=\"ok\"", stats.ok);
  p.Sample("tallyd_flushes_total", "result=\"error\"", stats.errors);
  p.Single("tallyd_flush_overruns_total", "counter",
           "Flushes that took longer than --flush-interval-ms.", stats.overruns);
  p.Single("tallyd_last_flush_timestamp_seconds", "gauge",
           "When the last successful flush committed, Unix seconds; 0 before the first.",
           static_cast<double>(stats.last_ok_unix_ns) / 1e9);
  p.Single("tallyd_flush_epoch", "gauge",
           "The store's epoch after the last successful flush (0 before the first): grows by one "
           "with each flush that wrote something.",
           stats.epoch);
  p.Single("tallyd_flush_pending_keys", "gauge",
           "Keys whose deltas wait for the next flush after the last attempt (non-zero while "
           "flushes fail).",
           uint64_t{stats.pending_keys});
  p.Family("tallyd_increments_dropped_total", "counter",
           "Increments accepted (from traffic, or in an internal flush) and dropped at the "
           "flush: for a key deleted before it, or that would take a total past 2^63-1.");
  p.Sample("tallyd_increments_dropped_total", "source=\"traffic\",reason=\"deleted\"",
           stats.dropped_deleted);
  p.Sample("tallyd_increments_dropped_total", "source=\"traffic\",reason=\"overflow\"",
           stats.dropped_overflow);
  p.Sample("tallyd_increments_dropped_total", "source=\"internal_flush\",reason=\"deleted\"",
           reg.process.internal_flush_dropped_deleted.load(std::memory_order_relaxed));
  p.Single("tallyd_flush_interval_seconds", "gauge", "--flush-interval-ms, in seconds.",
           static_cast<double>(ctx.flush_interval_ms) / 1000);

  DurationHistogram::Snapshot h = reg.process.flush_seconds.Read();
  p.Family("tallyd_flush_duration_seconds", "histogram", "Time per flush attempt.");
  for (size_t i = 0; i < DurationHistogram::kBounds.size(); ++i) {
    p.Sample("tallyd_flush_duration_seconds_bucket",
             fmt::format("le=\"{}\"", DurationHistogram::kBounds[i]), h.cumulative[i]);
  }
  p.Sample("tallyd_flush_duration_seconds_bucket", "le=\"+Inf\"", h.count);
  p.Sample("tallyd_flush_duration_seconds_sum", "", h.sum_seconds);
  p.Sample("tallyd_flush_duration_seconds_count", "", h.count);
}

}  // namespace

std::string RenderMetrics(const OpsContext& ctx) {
  PromText p;
  const CounterRegistry& reg = ctx.counters;

  p.Family("tallyd_build_info", "gauge", "Always 1; the version in a label.");
  p.Sample("tallyd_build_info", fmt::format("version=\"{}\"", TALLYD_VERSION), uint64_t{1});
  p.Single("tallyd_start_time_seconds", "gauge", "When tallyd started serving, Unix seconds.",
           static_cast<double>(reg.process.started_unix_ns.load(std::memory_order_relaxed)) / 1e9);

  RenderIngestMetrics(p, ctx);
  RenderHttpMetrics(p, ctx);
  RenderStoreMetrics(p, ctx);
  RenderFlushMetrics(p, ctx);
  if (ctx.bans != nullptr) {
    RenderBanMetrics(p, *ctx.bans, ctx.event_streams);
  }
  RenderPostgresMetrics(p, reg.process.postgres);
  if (std::optional<uint64_t> rss = ResidentMemoryBytes()) {
    p.Single("tallyd_process_resident_memory_bytes", "gauge",
             "Resident memory of the tallyd process (VmRSS), bytes.", *rss);
  }
  if (std::optional<uint64_t> fds = OpenDescriptors()) {
    p.Single("tallyd_process_open_fds", "gauge", "Descriptors open in the tallyd process.", *fds);
  }
  std::string text = p.Take();
  if (ctx.group_metrics != nullptr) {
    ctx.group_metrics->Render(&text);
  }
  RenderUpstreamMetrics(&text, reg.process.forward, ctx.outbox, ctx.sources);
  return text;
}

Response MetricsResponse(const OpsContext& ctx) {
  Response res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = RenderMetrics(ctx);
  res.prepare_payload();
  return res;
}

namespace {

// True when `path` is `dir` or lies under it (both absolute and resolved).
bool Within(const std::filesystem::path& path, const std::filesystem::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end();
}

// The directory a checkpoint may be written to, its parent's symlinks resolved, or why not.
// 400-class problems are InvalidArgument, 409 ones Conflict.
core::StatusOr<std::string> CheckpointTarget(const OpsContext& ctx, const std::string& dir) {
  namespace fs = std::filesystem;
  using core::Status;
  // A control character (NUL, a newline that would forge a log line, an escape) has no
  // place in a path an operator types.
  if (std::any_of(dir.begin(), dir.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return Status::InvalidArgument("\"dir\" must not contain a control character");
  }
  if (dir.size() > kMaxCheckpointPathBytes) {
    return Status::InvalidArgument(
        fmt::format("\"dir\" is longer than {} bytes", kMaxCheckpointPathBytes));
  }
  if (dir.front() != '/') {
    return Status::InvalidArgument("\"dir\" must be an absolute path");
  }
  fs::path target = fs::path(dir).lexically_normal();
  if (!target.has_filename()) {  // "/x/" normalises to "/x/"
    target = target.parent_path();
  }
  const std::string name = target.filename().string();
  if (name.empty() || name == "." || name == ".." || name.size() > NAME_MAX - 4) {
    return Status::InvalidArgument("\"dir\" must end in a directory name of at most " +
                                   std::to_string(NAME_MAX - 4) + " bytes");
  }
  std::error_code ec;
  fs::path parent = fs::canonical(target.parent_path(), ec);
  if (ec || !fs::is_directory(parent, ec)) {
    return Status::InvalidArgument("the parent directory " + target.parent_path().string() +
                                   " does not exist");
  }
  target = parent / name;
  for (const char* special : {"/proc", "/sys", "/dev"}) {
    if (Within(target, special)) {
      return Status::InvalidArgument(std::string("\"dir\" must not be under ") + special);
    }
  }
  fs::path data = fs::canonical(ctx.data_dir, ec);
  if (!ec && Within(target, data)) {
    return Status::InvalidArgument("\"dir\" must not be inside the data directory " +
                                   data.string());
  }
  if (!ctx.checkpoint_root.empty()) {
    fs::path root = fs::canonical(ctx.checkpoint_root, ec);
    if (ec || !Within(target, root) || target == root) {
      return Status::InvalidArgument("\"dir\" must lie under --checkpoint-root " +
                                     ctx.checkpoint_root);
    }
  }
  struct stat st {};
  if (lstat(target.c_str(), &st) == 0) {
    return Status::Conflict(target.string() + " already exists");
  }
  return target.string();
}

}  // namespace

Response CheckpointResponse(const OpsContext& ctx, const Request& req) {
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(req.body(), ec);
  if (ec || !body.is_object()) {
    return JsonError(http::status::bad_request, R"(the body must be a JSON object {"dir":"..."})");
  }
  const boost::json::value* dir_value = body.as_object().if_contains("dir");
  if (dir_value == nullptr || !dir_value->is_string() || dir_value->as_string().empty()) {
    return JsonError(http::status::bad_request, "\"dir\" must be a non-empty string");
  }
  auto to_http = [](const core::Status& s) {
    return s.code() == core::Status::Code::kConflict          ? http::status::conflict
           : s.code() == core::Status::Code::kInvalidArgument ? http::status::bad_request
                                                              : http::status::internal_server_error;
  };
  core::StatusOr<std::string> target = CheckpointTarget(ctx, std::string(dir_value->as_string()));
  if (!target.ok()) {
    return JsonError(to_http(target.status()), target.status().message());
  }
  const std::string& dir = *target;
  auto started = std::chrono::steady_clock::now();
  core::Status s = ctx.store.Checkpoint(dir);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!s.ok()) {
    if (s.code() == core::Status::Code::kConflict ||
        s.code() == core::Status::Code::kInvalidArgument) {
      LogStore()->info("checkpoint into {} refused: {}", dir, s.message());
    } else {
      LogStore()->error("checkpoint into {} failed: {}", dir, s.message());
    }
    return JsonError(to_http(s), s.message());
  }
  LogStore()->info("checkpoint into {} in {:.3f} s", dir, seconds);
  JsonWriter w;
  w.BeginObject().Key("dir").String(dir).Key("seconds").Double(seconds).EndObject();
  return JsonResponse(http::status::created, w.Take());
}

}  // namespace tally::daemon
