#include "daemon/upstream/pg_consumer.h"

#include <algorithm>

#include "daemon/log.h"
#include "daemon/threads.h"

namespace tally::daemon {

PgConsumer::PgConsumer(PgSink* sink, BatchSource* source, PostgresSinkMetrics* metrics,
                       PgConsumerOptions options)
    : sink_(sink), source_(source), metrics_(metrics), options_(options) {}

PgConsumer::~PgConsumer() { Stop(); }

void PgConsumer::Start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    BecomeBackgroundThread("tally-postgres");
    Loop();
  });
}

void PgConsumer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void PgConsumer::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

bool PgConsumer::WaitFor(std::chrono::milliseconds d, bool wake_ends) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this, wake_ends] { return stopping_ || (wake_ends && woken_); });
  woken_ = false;
  return !stopping_;
}

PgConsumer::Step PgConsumer::RunOnce(core::Status* failure) {
  std::optional<core::DeltaBatch> batch = source_->Peek();
  if (!batch) {
    pending_head_.reset();
    metrics_->oldest_pending_since_ns.Set(0);
    return Step::kIdle;
  }
  if (pending_head_ != batch->last_sequence) {
    // A new head: its wait starts now (the one before it was acknowledged).
    pending_head_ = batch->last_sequence;
    metrics_->oldest_pending_since_ns.Set(SteadyNowNs());
  }
  core::StatusOr<PgApplyResult> applied = sink_->Apply(*batch);
  if (!applied.ok()) {
    if (failure != nullptr) {
      *failure = applied.status();
    }
    return Step::kFailed;
  }
  if (core::Status s = source_->Ack(batch->last_sequence); !s.ok()) {
    if (failure != nullptr) {
      *failure = s;
    }
    return Step::kFailed;  // applied: the next attempt is a replay, then the Ack again
  }
  pending_head_.reset();
  metrics_->oldest_pending_since_ns.Set(0);
  return Step::kApplied;
}

void PgConsumer::Loop() {
  RateLimiter limiter(std::chrono::seconds(10));
  std::chrono::milliseconds backoff = options_.backoff_min;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        return;
      }
    }
    core::Status failure;
    Step step = RunOnce(&failure);
    if (step == Step::kApplied) {
      backoff = options_.backoff_min;
      continue;
    }
    std::chrono::milliseconds wait = options_.idle_poll;
    bool wake_ends = step == Step::kIdle;  // a new batch ends an idle wait, not a backoff
    if (step == Step::kFailed) {
      uint64_t suppressed = 0;
      if (limiter.Allow(&suppressed)) {
        LogPostgres()->error("batch not applied, retrying in {} ms: {} ({} more failures)",
                             backoff.count(), failure.message(), suppressed);
      }
      wait = backoff;
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
    if (!WaitFor(wait, wake_ends)) {
      return;
    }
  }
}

}  // namespace tally::daemon
