// Metrics: counters owned by one thread each and summed when read.
//
// Each I/O thread gets its own cache-line-aligned ThreadCounters block and is its only writer,
// so a bump is a relaxed load and store with no locked instruction and no shared line.
// Readers (/metrics) sum the blocks with relaxed loads; a sum may miss a bump in flight,
// which the next scrape shows. Process-wide values with other writers (the flusher's
// histogram, the connection gauge) live in ProcessMetrics, each with its writer named.
// /metrics renders all of it (daemon/ops/endpoints.cc); no reader ever takes a lock a
// receiving thread needs.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "core/ingest.h"
#include "core/line_parser.h"
#include "core/mapping.h"

namespace tally::daemon {

enum class Transport : uint8_t { kUdp, kUnix, kHttp };
inline constexpr size_t kTransports = 3;
inline constexpr std::array<const char*, kTransports> kTransportNames = {"udp", "unix", "http"};

// A counter with a single writer thread.
class OwnedCounter {
 public:
  void Add(uint64_t n) {
    // Relaxed load and store: this thread is the only writer, readers only need some value
    // at least as new as their last read, which relaxed atomics on one object guarantee.
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Relaxed: a statistic; see Add.
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A gauge with a single writer thread.
class OwnedGauge {
 public:
  // Relaxed: one writer; readers want a recent value and nothing is published through it.
  void Set(uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A Prometheus histogram of durations in seconds with one writer at a time (the flusher
// thread; the final flush runs on the stopping thread only after the flusher joined, which
// orders the two). Buckets are stored per bucket and made cumulative when read.
class DurationHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) {
      ++i;
    }
    buckets_[i].Add(1);
    sum_ns_.Add(seconds <= 0 ? 0 : static_cast<uint64_t>(seconds * 1e9));
  }

  struct Snapshot {
    std::array<uint64_t, kBounds.size() + 1> cumulative{};  // last: +Inf, equal to count
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot Read() const {
    Snapshot s;
    uint64_t running = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      running += buckets_[i].Get();
      s.cumulative[i] = running;
    }
    s.count = running;
    s.sum_seconds = static_cast<double>(sum_ns_.Get()) / 1e9;
    return s;
  }

 private:
  std::array<OwnedCounter, kBounds.size() + 1> buckets_;  // last: above every bound
  OwnedCounter sum_ns_;
};

// The HTTP status codes tallyd answers with; anything else counts under "other".
inline constexpr std::array<unsigned, 14> kHttpCodes = {200, 201, 202, 204, 400, 401, 404,
                                                        405, 409, 413, 422, 431, 500, 503};

struct alignas(64) ThreadCounters {
  // lines[transport][result], result order: accepted, ignored, malformed, refused.
  std::array<std::array<OwnedCounter, 4>, kTransports> lines;
  std::array<OwnedCounter, kTransports> datagrams;
  OwnedCounter truncated_datagrams;
  std::array<OwnedCounter, kHttpCodes.size() + 1> http_status;  // last slot: other codes
  OwnedCounter connections_refused;
  OwnedCounter accept_errors;
  // Steady-clock ns of this thread's event loop's last heartbeat tick; 0 for a block whose
  // thread runs no heartbeat. /healthz fails when a loop stops ticking.
  OwnedGauge loop_heartbeat_ns;
  // Datagram receivers (daemon/ingest/datagram_receiver.h), by transport: recvmmsg failures other
  // than EAGAIN; how many of this thread's receivers are down (failing for
  // DatagramReceiver::kDownAfter, or closed for good), which fails /healthz; the errno of
  // the last failure, for /healthz's reason.
  std::array<OwnedCounter, kTransports> receive_errors;
  std::array<OwnedGauge, kTransports> receivers_down;
  std::array<OwnedGauge, kTransports> receive_errno;
  // Unix datagrams that carried descriptors (SCM_RIGHTS); the kernel closed them unseen.
  OwnedCounter unix_datagrams_with_fds;
  // Mapping rules (core/mapping.h), by rule index: the lines each rule matched, and of those
  // the lines whose key part held no key id.
  std::array<OwnedCounter, core::kMaxMappingRules> mapped_lines;
  std::array<OwnedCounter, core::kMaxMappingRules> mapped_without_key;

  void CountStatus(unsigned code) {
    size_t slot = kHttpCodes.size();
    for (size_t i = 0; i < kHttpCodes.size(); ++i) {
      if (kHttpCodes[i] == code) {
        slot = i;
        break;
      }
    }
    http_status[slot].Add(1);
  }

  // Adds the first `rules` entries of *m and clears them.
  void CountMapped(core::MappedCounts* m, size_t rules) {
    for (size_t i = 0; i < rules; ++i) {
      if (m->matched[i] != 0) {
        mapped_lines[i].Add(m->matched[i]);
        mapped_without_key[i].Add(m->without_key[i]);
        m->matched[i] = 0;
        m->without_key[i] = 0;
      }
    }
  }

  void CountLines(Transport t, const core::LineCounts& c) {
    auto& row = lines[static_cast<size_t>(t)];
    row[0].Add(c.accepted);
    row[1].Add(c.ignored);
    row[2].Add(c.malformed);
    row[3].Add(c.refused);
  }
};
static_assert(alignof(ThreadCounters) == 64);

// Forwarding (daemon/upstream/forwarder.h). Writer: the forwarder thread, except
// lines_refused_outbox_full (every receiving thread). Relaxed everywhere: statistics, nothing
// is published through them.
struct ForwardMetrics {
  static constexpr std::array<const char*, 5> kRetryReasons = {"timeout", "connection", "5xx",
                                                               "408", "429"};
  std::atomic<uint64_t> batches{0};  // acknowledged by the upstream (2xx)
  std::atomic<uint64_t> deltas{0};   // key deltas in those batches
  std::array<std::atomic<uint64_t>, kRetryReasons.size()> retries{};
  std::atomic<uint64_t> dead_letters{0};  // batches moved to the dead letters
  std::atomic<uint64_t> lines_refused_outbox_full{0};
  // Set while the outbox holds more than --outbox-max-bytes: the receivers and POST /v1/ingest
  // then refuse new lines (counted above) and /readyz fails.
  std::atomic<bool> outbox_full{false};
};

// The PostgreSQL sink's counters (daemon/upstream/pg_sink.h). Writer: the sink's consumer
// thread, one at a time (a test may drive a sink from its own thread instead).
struct PostgresSinkMetrics {
  OwnedCounter batches_applied;   // committed in PostgreSQL
  OwnedCounter batches_replayed;  // at or below the source's mark: skipped whole, acked
  OwnedCounter deltas_applied;    // key deltas written (skipped keys not included)
  OwnedCounter keys_skipped;      // unknown or soft-deleted in PostgreSQL
  // Whole-transaction retries by cause: serialization failure (40001), deadlock (40P01),
  // connection lost or refused (then a reconnect with backoff).
  OwnedCounter retries_serialization;
  OwnedCounter retries_deadlock;
  OwnedCounter retries_connection;
  // Steady-clock ns since the oldest batch not yet applied has waited (first seen by the
  // consumer); 0 when none is waiting. The lag is now minus this.
  OwnedGauge oldest_pending_since_ns;
  OwnedGauge connected;  // 1 while the sink holds a working connection
};

// Process-wide metrics that are not per-thread counters.
struct ProcessMetrics {
  PostgresSinkMetrics postgres;     // all zero unless --postgres-url is set
  DurationHistogram flush_seconds;  // writer: the flusher (see DurationHistogram)
  // Open HTTP connections; the HttpListeners' shared connection cap counts in it. Relaxed:
  // a gauge, nothing is published through it.
  std::atomic<uint32_t> http_connections{0};
  // Unix ns when the daemon started serving; set once before the I/O threads start.
  // Relaxed: written before the threads that read it are created (thread start orders it).
  std::atomic<int64_t> started_unix_ns{0};
  // Increments for deleted keys that POST /internal/apikey-stats/flush dropped. Writer: the
  // API pool's write strand, one at a time; mutable because the Api sees the registry through
  // a const reference. Relaxed: a statistic, nothing is published through it.
  mutable std::atomic<uint64_t> internal_flush_dropped_deleted{0};
  // Forwarding; mutable for the same reason (the refusals are counted by the receivers).
  mutable ForwardMetrics forward;
};

// The process's forwarding metrics and outbox gate, for the receivers, which see no registry
// (set by the Daemon when it forwards, reset with nullptr when it goes; a shared fallback
// otherwise).
ForwardMetrics& ProcessForwardMetrics();
void SetProcessForwardMetrics(ForwardMetrics* metrics);

// Ingests `buffer` into `table` (with the mapping rules and the ban rule's failure codes
// when given, as core::IngestBuffer), or, while the outbox is full
// (ForwardMetrics::outbox_full), counts its valid lines as refused without counting them
// (lines_refused_outbox_full).
inline core::LineCounts IngestOrRefuse(std::string_view buffer, std::string_view prefix,
                                       core::CounterTable& table,
                                       const core::Mapping* mapping = nullptr,
                                       core::MappedCounts* mapped = nullptr,
                                       core::FailureCodes* codes = nullptr) {
  ForwardMetrics& forward = ProcessForwardMetrics();
  // Relaxed: a gate; a line racing with its change is either counted or refused, each once.
  if (!forward.outbox_full.load(std::memory_order_relaxed)) [[likely]] {
    return core::IngestBuffer(buffer, prefix, table, mapping, mapped, codes);
  }
  auto none = [](const core::Increment&) { return true; };
  core::LineCounts counts =
      mapping == nullptr
          ? core::ParseBuffer(buffer, prefix, none)
          : core::ParseBuffer(buffer, prefix, none,
                              [mapping, mapped](std::string_view line, core::Increment* inc) {
                                return mapping->Map(line, inc, mapped);
                              });
  counts.refused += counts.accepted;
  // Relaxed: a statistic.
  forward.lines_refused_outbox_full.fetch_add(counts.accepted, std::memory_order_relaxed);
  counts.accepted = 0;
  return counts;
}

inline uint64_t SteadyNowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Owns every thread's block. Blocks live as long as the registry and never move.
class CounterRegistry {
 public:
  // Gives the calling thread a block of its own; call once per writer thread.
  ThreadCounters* NewBlock() {
    std::lock_guard lock(mu_);
    return &blocks_.emplace_back();
  }

  // Calls f(index, block) for every block, in creation order.
  template <typename F>
  void ForEach(F&& f) const {
    std::lock_guard lock(mu_);
    size_t i = 0;
    for (const ThreadCounters& b : blocks_) {
      f(i++, b);
    }
  }

  template <typename F>
  uint64_t Sum(F&& pick) const {
    std::lock_guard lock(mu_);
    uint64_t total = 0;
    for (const ThreadCounters& b : blocks_) {
      total += pick(b).Get();
    }
    return total;
  }

  ProcessMetrics process;

 private:
  mutable std::mutex mu_;
  std::deque<ThreadCounters> blocks_;  // a deque never moves its elements
};

// The calling I/O thread's counter block, set once per thread by the Daemon before its event
// loop runs; a shared fallback block for threads the Daemon did not set up (tests, tools).
ThreadCounters& ThisThreadCounters();
void SetThisThreadCounters(ThreadCounters* counters);

}  // namespace tally::daemon
