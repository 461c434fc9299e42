// ServiceMonitor: what tallyd tells the service manager and the operator about itself while
// it runs, driven by the flusher loop.
//
// It records each flush attempt's duration in tallyd_flush_duration_seconds
// (Flusher::SetOnDuration: before the attempt is counted in tallyd_flushes_total, so a
// scrape never finds the histogram behind the count), and after every attempt
// (Flusher::SetOnAttempt, on the flusher thread) it
//   - pings the systemd watchdog (WATCHDOG=1), at most every WatchdogSec/4, so a flusher
//     that hangs stops the pings and systemd restarts the service;
//   - refreshes STATUS= (keys tracked, the last flush) every few seconds and at once when
//     flushes start or stop failing;
//   - logs the repeated conditions that are counted rather than logged one by one
//     (malformed and refused lines, kernel drops, truncated datagrams, keys near --max-keys):
//     at most one warning per condition per minute, carrying the count since the last one.
//
// A flusher that is alive but idle (a long --flush-interval-ms, or a retry backoff) would
// ping too seldom, so when the watchdog is on a supervisor thread wakes the flusher whenever
// no attempt happened for WatchdogSec/2: a live flusher then attempts (a drain, and a write
// only if something is pending) and pings; a stuck one does not.
//
// Thread safety: OnFlushDuration and OnFlushAttempt on the flusher thread (or, for the final flush,
// the stopping thread after the flusher joined); the rest from the main thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/counter_table.h"
#include "daemon/ingest/flusher.h"
#include "daemon/metrics.h"
#include "daemon/ops/notify.h"

namespace tally::daemon {

class ServiceMonitor {
 public:
  ServiceMonitor(const core::CounterTable& table, CounterRegistry& counters, Flusher& flusher,
                 std::function<uint64_t()> kernel_drops);
  ~ServiceMonitor();
  ServiceMonitor(const ServiceMonitor&) = delete;
  ServiceMonitor& operator=(const ServiceMonitor&) = delete;

  // READY=1 with a first STATUS=, and starts the watchdog supervisor if the watchdog is on.
  void Ready();
  // STOPPING=1 and a STATUS= saying so.
  void Stopping();
  // Ends the supervisor thread. Call before Flusher::Stop (it wakes the flusher).
  void StopSupervisor();

  // The flusher hook; see the file comment.
  void OnFlushDuration(double seconds);
  void OnFlushAttempt(const FlushStats& stats);
  // Logs what the once-a-minute summaries still hold back. Call after Flusher::Stop.
  void FinalReport();

  const Notifier& notifier() const { return notifier_; }

 private:
  // One repeated condition, summarized at most once per kRepeatPeriod.
  struct Repeat {
    uint64_t reported = 0;     // the count when the last warning went out
    uint64_t next_log_ns = 0;  // steady ns before which no new warning goes out
  };
  static constexpr std::chrono::seconds kRepeatPeriod{60};
  static constexpr std::chrono::seconds kStatusPeriod{5};

  void Supervise();
  void SendStatus(const FlushStats& stats);
  void WarnRepeats(uint64_t now_ns, bool force);
  void Summarize(Repeat& r, uint64_t current, uint64_t now_ns, bool force, const char* what);

  const core::CounterTable& table_;
  CounterRegistry& counters_;
  Flusher& flusher_;
  std::function<uint64_t()> kernel_drops_;
  Notifier notifier_;

  // Steady ns of the last flush attempt. Relaxed: read by the supervisor only to decide
  // whether to wake the flusher; a stale value costs at most one extra wake.
  std::atomic<uint64_t> last_attempt_ns_{0};

  // Flusher thread only.
  uint64_t last_ping_ns_ = 0;
  uint64_t last_status_ns_ = 0;
  bool last_failing_ = false;
  bool keys_warned_ = false;
  Repeat malformed_, refused_, drops_, truncated_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread supervisor_;
};

}  // namespace tally::daemon
