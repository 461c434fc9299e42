// OutboxStore: the on-disk outbox of committed deltas on their way upstream (issue 17), read
// by named consumers (the HTTP forwarder, "forward"; the PostgreSQL sink, issue 18), each at
// its own pace.
//
// Writing. The outbox is a FlushParticipant (flush_participant.h): every committed flush that
// applied something adds its applied deltas to the outbox in the flush's own synced
// WriteBatch (so a batch is durable exactly when the totals it reports are): as one batch, or
// as several when it changed more than OutboxOptions::max_batch_keys keys (consecutive key
// ranges, so one upstream request stays under the upstream's body limit: an ez-api body
// entry is at most ~100 bytes, 2 MB at the default 20,000). Each batch is numbered by the
// next sequence of this host's source. The source id is created once (the host name and a
// random suffix, or OutboxOptions::source) and kept in the database; sequences grow by one per
// batch, restarts included, with no holes.
//
// Reading, per consumer (the API the daemon's consumers use):
//   Peek(c)           the next batch for consumer c (its head): the first batch past c's
//                     cursor, or nullopt when c is up to date. Repeated Peeks return the same
//                     batch until c acknowledges or dead-letters it.
//   Ack(c, last)      c's upstream took the batch whose last_sequence is `last`: c's cursor
//                     moves past it (one synced WriteBatch).
//   DeadLetter(c, b, status, reason)
//                     c's upstream refused b for good: b is copied into c's dead letters and
//                     c's cursor moves past it, in one WriteBatch; c goes on with the next.
//   RetryDead(c, id)  a dead letter of c goes back into the outbox as a new batch for c only,
//                     under the next sequence (it was refused, so never applied: renumbering
//                     cannot count it twice, and a receiver's high-water mark, which has moved
//                     past its old sequence, takes it). DeleteDead(c, id) drops it.
//   WaitForBatch(c, timeout) blocks until c has a batch, the timeout passes or Wake().
// A batch is deleted once every configured consumer it is for has moved past it. A consumer
// new to the database starts at sequence 0 (it is sent every batch still held). Consumers are
// fixed at Open; a cursor of a consumer no longer configured is ignored (and kept).
//
// Sending rules the consumers keep (core/delta_batch.h): one batch at a time, in order; the
// next Peek only after Ack or DeadLetter. So each consumer has at most one batch that may have
// been sent and not acknowledged: its head.
//
// Coalescing (bounded growth during an outage): when the outbox holds at least
// OutboxOptions::coalesce_after batches, a new flush's deltas are merged with the outbox's
// never-sent suffix: the run of last batches that are for every consumer and no consumer's
// head (so never sent: see above). Deltas add per key, and the merged deltas are written
// back as batches of at most max_batch_keys keys that replace the suffix: they take the
// sequences from the suffix's first to the new last one (each batch one sequence, the last
// batch the rest of the range), so the sequences stay without holes. So during a long outage
// the outbox grows with the number of distinct keys, not with time (each flush then rewrites
// the suffix: its cost grows with the distinct keys held). A batch that may have been sent is
// never merged or renumbered.
//
// Bytes: the encoded size of every batch and dead letter held (bytes()), for
// --outbox-max-bytes, which the daemon enforces at ingestion (never here: a committed flush
// is never refused for the outbox's sake).
//
// Thread safety: every method may be called from any thread. Stage holds the outbox's lock
// until Commit or Abort (the store's write lock is held around all three), so a consumer never
// sees a batch being merged. Lock order: the store's lock, then the outbox's.
//
// Stored in the `outbox` column family:
//   "m/source" -> the source id; "m/seq" -> big-endian u64, the last sequence assigned
//   "b/" + BE64(first_sequence) -> v1 | varint last | varint created_unix_ns |
//                                  varint len | only_for | deltas
//   "c/" + consumer -> BE64 cursor (the last sequence the consumer is done with)
//   "d/" + consumer + "\0" + BE64(first) -> v1 | varint last | varint created | varint dead_at |
//                                  varint http_status | varint len | reason | deltas
//   deltas: varint count, then per key (ascending) varint key gap, varint successes, failures
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/delta_batch.h"
#include "core/status.h"
#include "persistence/flush_participant.h"
#include "persistence/records.h"

namespace tally::persistence {

class Store;

struct OutboxOptions {
  std::string source;                  // empty: the stored id, or a new one
  std::vector<std::string> consumers;  // 1..16 names of 1..64 bytes [a-z0-9_-]
  size_t coalesce_after = 16;          // merge new flushes into the never-sent suffix past this
  size_t max_batch_keys = 20000;       // keys per batch, >= 1
  // With max_bytes > 0: *full is kept true exactly while bytes() > max_bytes (set under the
  // outbox's lock whenever the bytes change; relaxed stores: a gate, nothing published).
  uint64_t max_bytes = 0;
  std::atomic<bool>* full = nullptr;
};

// One dead letter, as GET /admin/outbox lists it.
struct DeadLetterInfo {
  std::string consumer;
  uint64_t id = 0;  // its first_sequence: unique per consumer
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  size_t keys = 0;
  uint64_t bytes = 0;
  TimeNs created_at = 0;  // when its first flush committed (Unix ns)
  TimeNs dead_at = 0;
  unsigned http_status = 0;
  std::string reason;
};

struct OutboxStats {
  size_t batches = 0;
  uint64_t batch_bytes = 0;
  TimeNs oldest_created_at = 0;  // 0: empty
  uint64_t last_sequence = 0;
  size_t dead_letters = 0;
  uint64_t dead_bytes = 0;
  uint64_t coalesced = 0;  // flushes merged into an earlier batch since Open
  uint64_t bytes() const { return batch_bytes + dead_bytes; }
};

class OutboxStore : public FlushParticipant {
 public:
  // Loads the outbox (source id, sequence, batches, cursors, dead letters) and registers it
  // with `store` (Store::AddParticipant); creates and stores the source id when there is none,
  // or stores options.source when it differs. InvalidArgument for a bad source or consumer
  // name; IoError or Corruption when the read or write fails. `store` must outlive it, and
  // the outbox must outlive the store's flushes.
  static core::StatusOr<std::unique_ptr<OutboxStore>> Open(Store& store, OutboxOptions options);

  const std::string& source() const { return source_; }

  core::StatusOr<std::optional<core::DeltaBatch>> Peek(const std::string& consumer) const;
  core::Status Ack(const std::string& consumer, uint64_t last_sequence);
  core::Status DeadLetter(const std::string& consumer, const core::DeltaBatch& batch,
                          unsigned http_status, const std::string& reason);
  // NotFound when consumer has no dead letter `id`.
  core::Status RetryDead(const std::string& consumer, uint64_t id);
  core::Status DeleteDead(const std::string& consumer, uint64_t id);
  std::vector<DeadLetterInfo> DeadLetters() const;
  // True when `consumer` has a batch to send now; waits up to `timeout` for one (or Wake()).
  bool WaitForBatch(const std::string& consumer, std::chrono::milliseconds timeout);
  void Wake();

  OutboxStats stats() const;
  uint64_t bytes() const;  // batches and dead letters, encoded; cheap (a lock, no scan)

  // FlushParticipant.
  core::Status Stage(const FlushView& flush, rocksdb::WriteBatch* batch) override;
  void Commit(const FlushView& flush) override;
  void Abort() override;

  // A valid source id: 1..128 visible ASCII bytes other than ':' (it is the first part of
  // "<source>:<sequence>").
  static bool ValidSource(const std::string& source);
  // "<host name>-<8 random hex digits>".
  static std::string NewSourceId();

 private:
  struct BatchInfo {
    uint64_t last = 0;
    std::string only_for;  // empty: every consumer
    uint64_t bytes = 0;
    TimeNs created = 0;
  };
  struct Staged {
    bool active = false;
    uint64_t sequence = 0;           // the last sequence after this flush
    bool merged = false;             // the flush was coalesced into the never-sent suffix
    std::vector<uint64_t> replaced;  // the suffix's batches (by first_sequence) it replaces
    std::vector<std::pair<uint64_t, BatchInfo>> parts;  // the batches written, by first
  };

  OutboxStore(Store& store, OutboxOptions options) : store_(store), opts_(std::move(options)) {}
  core::Status Load();
  // Updates *opts_.full from the bytes held; caller holds mu_.
  void UpdateFullLocked();
  // Caller holds mu_.
  uint64_t CursorLocked(const std::string& consumer) const;
  // The first batch for `consumer` past its cursor (index_.end() when none).
  std::map<uint64_t, BatchInfo>::const_iterator HeadLocked(const std::string& consumer) const;
  // The first batch of the never-sent suffix (coalescing, above); index_.end() when empty.
  std::map<uint64_t, BatchInfo>::const_iterator SuffixLocked() const;
  // Batches every consumer they are for has passed, with `cursors` applied.
  std::vector<uint64_t> DeletableLocked(const std::map<std::string, uint64_t>& cursors) const;
  // Moves `consumer`'s cursor to `last` and, with `dead` set, writes that dead letter.
  core::Status Advance(const std::string& consumer, uint64_t last, const DeadLetterInfo* dead,
                       const std::vector<core::KeyDelta>* dead_deltas);

  Store& store_;
  const OutboxOptions opts_;
  std::string source_;

  mutable std::mutex mu_;
  std::unique_lock<std::mutex> flush_lock_;  // held from Stage to Commit/Abort
  std::condition_variable ready_;            // a batch was committed, or Wake()
  std::map<uint64_t, BatchInfo> index_;      // guarded by mu_; by first_sequence
  std::map<std::string, uint64_t> cursors_;  // guarded by mu_; every configured consumer
  std::map<std::pair<std::string, uint64_t>, DeadLetterInfo> dead_;  // guarded by mu_
  uint64_t last_sequence_ = 0;                                       // guarded by mu_
  uint64_t batch_bytes_ = 0;                                         // guarded by mu_
  uint64_t dead_bytes_ = 0;                                          // guarded by mu_
  uint64_t coalesced_ = 0;                                           // guarded by mu_
  uint64_t wakes_ = 0;  // guarded by mu_; counts Wake()s
  Staged staged_;       // guarded by flush_lock_
};

}  // namespace tally::persistence
