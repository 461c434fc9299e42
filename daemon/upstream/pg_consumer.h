// PgConsumer: moves batches from a BatchSource (the outbox's cursor for PostgreSQL) into a
// PgSink, one at a time, in order, acknowledging each only after PostgreSQL committed it.
//
// The loop: Peek the oldest unacknowledged batch; Apply it (PgSink: exactly once by the
// source's mark); on success (applied or found applied before) Ack its last_sequence. On
// any failure the batch stays unacknowledged and is applied again after a backoff (100 ms
// doubling to 10 s, reset by a success): a crash between the commit and the Ack re-applies
// it on restart, which PostgreSQL's mark turns into a replay. Nothing is ever dropped.
//
// Threads: Start() runs the loop on a thread of its own, which alone calls the source's
// Peek/Ack and the sink; Wake() and Stop() may be called from any thread. RunOnce() drives
// one step from the caller's thread instead (tests), and must not be mixed with Start().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "core/delta_batch.h"
#include "core/status.h"
#include "daemon/metrics.h"
#include "daemon/upstream/pg_sink.h"

namespace tally::daemon {

// A named cursor over committed batches. The outbox implements it; tests do too.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // The oldest batch this cursor has not acknowledged, or nullopt when none waits. Called
  // again after a failed Apply, it returns the same batch (or its merge with later ones,
  // never a batch starting past an unacknowledged sequence).
  virtual std::optional<core::DeltaBatch> Peek() = 0;
  // The batch ending at `last_sequence` is in PostgreSQL: the cursor moves past it. A failed
  // Ack leaves the batch to be applied again, which the sink's mark makes a replay.
  virtual core::Status Ack(uint64_t last_sequence) = 0;
};

struct PgConsumerOptions {
  std::chrono::milliseconds idle_poll{200};  // Peek again after this when nothing waited
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{10'000};
};

class PgConsumer {
 public:
  // `sink`, `source` and `metrics` outlive the consumer.
  PgConsumer(PgSink* sink, BatchSource* source, PostgresSinkMetrics* metrics,
             PgConsumerOptions options = {});
  ~PgConsumer();  // Stop()s
  PgConsumer(const PgConsumer&) = delete;
  PgConsumer& operator=(const PgConsumer&) = delete;

  void Start();
  // Ends the loop after the step in flight (an Apply under way finishes or fails first)
  // and joins the thread. Idempotent.
  void Stop();
  // A batch was committed: Peek now instead of after the idle poll.
  void Wake();

  // What one step did.
  enum class Step { kIdle, kApplied, kFailed };
  // Peek, Apply, Ack once on the caller's thread; the status of a failure in *failure.
  Step RunOnce(core::Status* failure = nullptr);

 private:
  void Loop();
  // Waits up to `d` or until Stop() (or Wake(), when `wake_ends`); false when stopping.
  bool WaitFor(std::chrono::milliseconds d, bool wake_ends);

  PgSink* sink_;
  BatchSource* source_;
  PostgresSinkMetrics* metrics_;
  PgConsumerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool woken_ = false;     // guarded by mu_
  std::thread thread_;
  // The last_sequence of the head batch whose wait metrics_->oldest_pending_since_ns
  // measures; the consumer's thread only.
  std::optional<uint64_t> pending_head_;
};

}  // namespace tally::daemon
