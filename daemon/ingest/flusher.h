// Flusher: the one thread that moves counts from the CounterTable into the Store.
//
// Every interval it drains the table into its pending deltas and applies them as one atomic,
// synced flush. A failed flush keeps its deltas pending (they merge with the next drain) and
// is retried with backoff on the current streak of failures (interval x 2^streak, at most
// 30 s; the first success resets it); the failure is logged once per change of state. A flush that
// takes longer than the interval is counted (stats().overruns) and logged, rate-limited. Receiving
// threads never wait for it.
//
// wait=flush callers register with AfterFlush(): the callback runs once a flush whose drain
// began after the registration has committed, so every increment added before the call is
// durable when it runs. A waiter is answered within `wait_deadline` (default
// kDefaultWaitDeadline) in any case: past it, without a commit (timed_out), so a failing disk
// cannot hold an HTTP session forever; its counts stay pending and are flushed later.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/counter_table.h"
#include "persistence/store.h"

namespace tally::daemon {

struct FlushStats {
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t error_streak = 0;    // consecutive failed attempts; 0 after a success
  uint64_t overruns = 0;        // flushes that took longer than the interval
  int64_t last_ok_unix_ns = 0;  // 0: none yet
  uint64_t epoch = 0;           // the store's epoch after the last success; 0: none yet
  size_t pending_keys = 0;      // deltas waiting after the last attempt
  bool failing = false;         // the last attempt failed
  double last_duration_s = 0;
  // Increments accepted from traffic and dropped by committed flushes (README, "Exactness"):
  // for keys deleted before the flush, and for keys whose delta would take a total past
  // 2^63-1 (persistence::FlushRules).
  uint64_t dropped_deleted = 0;
  uint64_t dropped_overflow = 0;
};

// What a flush that a waiter was waiting for did.
struct FlushOutcome {
  bool committed = false;   // false: the flusher stopped, or the wait timed out
  bool timed_out = false;   // no commit within the wait deadline (the counts stay pending)
  uint64_t epoch = 0;       // the store's epoch after it
  size_t keys_updated = 0;  // 0 when there was nothing to write
  size_t groups_updated = 0;
};

class Flusher {
 public:
  using FlushCallback = std::function<void(bool committed)>;
  using OutcomeCallback = std::function<void(const FlushOutcome&)>;

  static constexpr std::chrono::milliseconds kDefaultWaitDeadline{30'000};

  Flusher(core::CounterTable& table, persistence::Store& store, std::chrono::milliseconds interval,
          std::chrono::milliseconds wait_deadline = kDefaultWaitDeadline);
  ~Flusher();

  void Start();
  // Stops the loop, then drains and flushes one last time (retrying briefly on failure).
  // Returns true if nothing was left unflushed.
  bool Stop();

  // Runs `done(true)` from the flusher thread once a flush that drained after this call has
  // committed, or `done(false)` if the flusher stopped without committing one.
  void AfterFlush(FlushCallback done);
  // As AfterFlush, telling what that flush wrote (POST /admin/flush).
  void AfterFlushOutcome(OutcomeCallback done);
  // Asks for a flush now instead of at the next tick.
  void Wake();
  // The daemon is stopping: flushes now, and from here on a failed flush answers every
  // waiter at once (not committed) instead of at its deadline, so a stop never waits for a
  // request that a failing disk would hold (Stop still makes the final flush).
  void BeginStop();

  FlushStats stats() const;
  // Observer run on the flusher thread after every attempt (systemd watchdog and status).
  void SetOnAttempt(std::function<void(const FlushStats&)> hook);
  // Run on the flusher thread with each attempt's duration in seconds, before the attempt
  // is counted in stats(): a scrape that reads stats() first never finds the duration
  // histogram behind the attempt count. Set before Start.
  void SetOnDuration(std::function<void(double)> hook) { on_duration_ = std::move(hook); }
  // Asked on the flusher thread when nothing is pending: true makes the tick flush anyway
  // (a ban whose deadline has passed is released by a flush). Set before Start.
  void SetFlushDue(std::function<bool()> due) { flush_due_ = std::move(due); }

 private:
  struct Waiter {
    uint64_t drain;  // the first drain that includes the waiter's increments
    std::chrono::steady_clock::time_point deadline;  // answered without a commit past it
    OutcomeCallback done;
  };

  void Run();
  bool FlushOnce();
  // After an attempt (`error` null when it committed `applied`), with mu_ held: updates
  // stats_, logs a change of state or an overrun (rate-limited), and on a commit moves the
  // waiters released by drain `drain` into *ready.
  void RecordAttempt(const core::Status* error, const persistence::FlushResult& applied,
                     double seconds, uint64_t drain, std::vector<Waiter>* ready);
  // Answers every waiter, not committed; `lock` holds mu_, released meanwhile.
  void ReleaseAllWaiters(std::unique_lock<std::mutex>& lock);
  // Answers (timed_out) the waiters past their deadline; `lock` holds mu_, released meanwhile.
  void ReleaseExpiredWaiters(std::unique_lock<std::mutex>& lock);

  core::CounterTable& table_;
  persistence::Store& store_;
  const std::chrono::milliseconds interval_;
  const std::chrono::milliseconds wait_deadline_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                  // guarded by mu_
  bool wake_ = false;                                  // guarded by mu_
  bool finished_ = false;                              // guarded by mu_; the final flush is done
  uint64_t drains_started_ = 0;                        // guarded by mu_
  std::vector<Waiter> waiters_;                        // guarded by mu_
  bool stopping_ = false;                              // guarded by mu_; BeginStop
  FlushStats stats_;                                   // guarded by mu_
  std::function<void(const FlushStats&)> on_attempt_;  // set before Start
  std::function<void(double)> on_duration_;            // set before Start
  std::function<bool()> flush_due_;                    // set before Start

  std::vector<core::KeyDelta> pending_;  // flusher thread only
};

}  // namespace tally::daemon
