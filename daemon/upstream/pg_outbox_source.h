// OutboxBatchSource: the PostgreSQL sink's cursor in the on-disk outbox (issue 18 on top of
// issue 17): the BatchSource a PgConsumer reads, over persistence::OutboxStore's consumer
// "postgres". Each consumer of the outbox keeps its own cursor; a batch is deleted once every
// configured consumer has acknowledged it.
//
// Thread safety: as OutboxStore (any thread); one PgConsumer reads it.
#pragma once

#include <optional>
#include <string>

#include "daemon/log.h"
#include "daemon/upstream/pg_consumer.h"
#include "persistence/outbox_store.h"

namespace tally::daemon {

inline constexpr char kPostgresConsumer[] = "postgres";

class OutboxBatchSource : public BatchSource {
 public:
  // `outbox` outlives this source and was opened with kPostgresConsumer among its consumers.
  explicit OutboxBatchSource(persistence::OutboxStore& outbox) : outbox_(outbox) {}

  // A read error is logged (at most once per 10 s) and answered as "nothing waits": the
  // consumer polls again, and the batch stays in the outbox.
  std::optional<core::DeltaBatch> Peek() override {
    core::StatusOr<std::optional<core::DeltaBatch>> batch = outbox_.Peek(kPostgresConsumer);
    if (!batch.ok()) {
      static RateLimiter limiter(std::chrono::seconds(10));
      if (uint64_t suppressed = 0; limiter.Allow(&suppressed)) {
        LogPostgres()->error("reading the outbox failed ({} such errors not logged): {}",
                             suppressed, batch.status().message());
      }
      return std::nullopt;
    }
    return std::move(batch).value();
  }
  core::Status Ack(uint64_t last_sequence) override {
    return outbox_.Ack(kPostgresConsumer, last_sequence);
  }

 private:
  persistence::OutboxStore& outbox_;
};

}  // namespace tally::daemon
