#include "daemon/ingest/flusher.h"

#include <algorithm>

#include "core/clock.h"
#include "daemon/log.h"
#include "daemon/threads.h"

namespace tally::daemon {
Flusher::Flusher(core::CounterTable& table, persistence::Store& store,
                 std::chrono::milliseconds interval, std::chrono::milliseconds wait_deadline)
    : table_(table), store_(store), interval_(interval), wait_deadline_(wait_deadline) {}

Flusher::~Flusher() {
  if (thread_.joinable()) {
    Stop();
  }
}

void Flusher::Start() {
  thread_ = std::thread([this] {
    BecomeBackgroundThread("tally-flush");
    Run();
  });
}

void Flusher::SetOnAttempt(std::function<void(const FlushStats&)> hook) {
  on_attempt_ = std::move(hook);
}

void Flusher::AfterFlush(FlushCallback done) {
  AfterFlushOutcome(
      [done = std::move(done)](const FlushOutcome& outcome) { done(outcome.committed); });
}

void Flusher::AfterFlushOutcome(OutcomeCallback done) {
  std::unique_lock lock(mu_);
  if (finished_ || (stopping_ && stats_.failing)) {
    lock.unlock();
    done(FlushOutcome{});  // no flush will commit for it before the stop
    return;
  }
  waiters_.push_back(
      {drains_started_ + 1, std::chrono::steady_clock::now() + wait_deadline_, std::move(done)});
}

void Flusher::BeginStop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    wake_ = true;
  }
  cv_.notify_one();
}

void Flusher::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

FlushStats Flusher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Flusher::Run() {
  auto next = std::chrono::steady_clock::now() + interval_;
  std::unique_lock lock(mu_);
  while (!stop_) {
    auto wake_at = next;
    for (const Waiter& w : waiters_) {
      wake_at = std::min(wake_at, w.deadline);
    }
    cv_.wait_until(lock, wake_at, [this] { return stop_ || wake_; });
    if (stop_) {
      break;
    }
    ReleaseExpiredWaiters(lock);
    if (!wake_ && std::chrono::steady_clock::now() < next) {
      continue;  // woken for a waiter's deadline only
    }
    wake_ = false;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    bool ok = FlushOnce();
    lock.lock();
    if (!ok && stopping_) {
      ReleaseAllWaiters(lock);
    }
    // Back off while failing: interval x 2^(consecutive failures), at most 30 s.
    auto delay = interval_;
    if (!ok) {
      uint64_t streak = std::min<uint64_t>(stats_.error_streak, 5);
      delay =
          std::min<std::chrono::milliseconds>(interval_ * (1 << streak), std::chrono::seconds(30));
    }
    next = std::max(started + delay, std::chrono::steady_clock::now());
  }
}

void Flusher::ReleaseAllWaiters(std::unique_lock<std::mutex>& lock) {
  std::vector<Waiter> released;
  released.swap(waiters_);
  lock.unlock();
  for (Waiter& w : released) {
    w.done(FlushOutcome{});
  }
  lock.lock();
}

void Flusher::ReleaseExpiredWaiters(std::unique_lock<std::mutex>& lock) {
  auto now = std::chrono::steady_clock::now();
  auto split = std::partition(waiters_.begin(), waiters_.end(),
                              [now](const Waiter& w) { return w.deadline > now; });
  if (split == waiters_.end()) {
    return;
  }
  std::vector<Waiter> expired(std::make_move_iterator(split),
                              std::make_move_iterator(waiters_.end()));
  waiters_.erase(split, waiters_.end());
  lock.unlock();
  static RateLimiter limiter(std::chrono::seconds(60));
  if (uint64_t suppressed = 0; limiter.Allow(&suppressed)) {
    LogFlush()->warn(
        "{} flush waiters answered without a commit after {} ms ({} more since the last "
        "message); their counts stay pending",
        expired.size(), wait_deadline_.count(), suppressed);
  }
  FlushOutcome outcome;
  outcome.timed_out = true;
  for (Waiter& w : expired) {
    w.done(outcome);
  }
  lock.lock();
}

bool Flusher::FlushOnce() {
  uint64_t drain;
  {
    std::lock_guard lock(mu_);
    drain = ++drains_started_;
  }
  auto started = std::chrono::steady_clock::now();
  table_.Drain(&pending_);
  bool ok = true;
  core::Status error;
  FlushOutcome outcome;
  persistence::FlushResult applied;
  if (!pending_.empty() || (flush_due_ && flush_due_())) {
    core::StatusOr<persistence::FlushResult> result = store_.ApplyFlush(&pending_);
    ok = result.ok();
    if (ok) {
      pending_.clear();
      applied = *result;
      // From now on the lines of these keys are refused at ingest (README, "Deleted keys").
      for (uint64_t key : result->deleted_keys) {
        (void)table_.Tombstone(key);
      }
      outcome.epoch = result->epoch;
      outcome.keys_updated = result->keys_updated;
      outcome.groups_updated = result->groups_updated;
    } else {
      error = result.status();
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (ok) {
    outcome.committed = true;
    if (outcome.epoch == 0) {
      outcome.epoch = store_.epoch();  // nothing was written: the epoch stands
    }
  }

  if (on_duration_) {
    on_duration_(seconds);
  }
  std::vector<Waiter> ready;
  FlushStats snapshot;
  {
    std::lock_guard lock(mu_);
    RecordAttempt(ok ? nullptr : &error, applied, seconds, drain, &ready);
    if (ok) {
      stats_.epoch = outcome.epoch;
    }
    snapshot = stats_;
  }
  for (Waiter& w : ready) {
    w.done(outcome);
  }
  if (on_attempt_) {
    on_attempt_(snapshot);
  }
  return ok;
}

void Flusher::RecordAttempt(const core::Status* error, const persistence::FlushResult& applied,
                            double seconds, uint64_t drain, std::vector<Waiter>* ready) {
  const bool ok = error == nullptr;
  bool was_failing = stats_.failing;
  stats_.failing = !ok;
  stats_.pending_keys = pending_.size();
  stats_.last_duration_s = seconds;
  if (ok) {
    ++stats_.ok;
    stats_.error_streak = 0;
    stats_.last_ok_unix_ns = core::UnixNowNs();
    stats_.dropped_deleted = core::SaturatingAdd(stats_.dropped_deleted, applied.dropped_deleted);
    stats_.dropped_overflow =
        core::SaturatingAdd(stats_.dropped_overflow, applied.dropped_overflow);
    if (applied.dropped_overflow > 0) {
      static RateLimiter overflow_limiter(std::chrono::seconds(10));
      if (uint64_t suppressed = 0; overflow_limiter.Allow(&suppressed)) {
        LogFlush()->error(
            "dropped {} increments that would take a total past 2^63-1 ({} dropped so far; "
            "{} such messages not logged since the last)",
            applied.dropped_overflow, stats_.dropped_overflow, suppressed);
      }
    }
    auto split = std::partition(waiters_.begin(), waiters_.end(),
                                [drain](const Waiter& w) { return w.drain > drain; });
    std::move(split, waiters_.end(), std::back_inserter(*ready));
    waiters_.erase(split, waiters_.end());
    if (was_failing) {
      LogFlush()->warn("flushes succeed again; {} keys were pending", stats_.pending_keys);
    }
  } else {
    ++stats_.errors;
    ++stats_.error_streak;
    if (!was_failing) {
      LogFlush()->error("flush failed, keeping {} keys pending and retrying: {}", pending_.size(),
                        error->message());
    }
  }
  if (seconds * 1000 > static_cast<double>(interval_.count())) {
    ++stats_.overruns;
    static RateLimiter limiter(std::chrono::seconds(10));
    if (uint64_t suppressed = 0; limiter.Allow(&suppressed)) {
      LogFlush()->warn(
          "flush took {:.3f} s, longer than the {} ms interval ({} overruns so far, {} not "
          "logged since the last message)",
          seconds, interval_.count(), stats_.overruns, suppressed);
    }
  }
}

bool Flusher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
  // The final flush, on the caller's thread now that the loop is gone.
  bool ok = false;
  for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    }
    ok = FlushOnce();
  }
  std::vector<Waiter> abandoned;
  {
    std::lock_guard lock(mu_);
    abandoned.swap(waiters_);
    finished_ = true;
  }
  for (Waiter& w : abandoned) {
    w.done(FlushOutcome{});
  }
  if (!ok) {
    LogFlush()->error("final flush failed; {} keys were not persisted", pending_.size());
  }
  return ok;
}

}  // namespace tally::daemon
