// FlushParticipant: a part of the daemon's state that commits with each flush. Its writes go
// into the flush's one synced WriteBatch, so they are durable exactly when the totals are
// and a failed flush leaves none of them (time windows, ban state, the outbox).
//
// The protocol, all under the store's write lock, in registration order:
//   Stage(flush, batch)  after the totals are staged, before the write: add this part's
//                        writes to `batch`. An error aborts the flush: nothing is written,
//                        and every participant already staged gets Abort().
//   Commit(flush)        the batch is durable: make memory match it. Must not fail.
//   Abort()              the batch will not be written: forget what Stage prepared.
// A flush that applies nothing (every delta dropped) is still staged and committed: its
// epoch advances.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"
#include "core/totals.h"
#include "persistence/records.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace tally::persistence {

class Db;

// One key's applied delta, with the group the key belonged to when it was counted.
struct AppliedDelta {
  uint64_t key = 0;
  uint64_t group_id = kUnassignedGroup;
  core::Totals delta;
  bool created = false;  // the flush created the key's record (unknown until now)
};

// Where a forwarded batch came from (core/delta_batch.h): its source and the range of that
// source's sequences it carries.
struct FlushSource {
  std::string source;
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
};

// What a flush applies, as participants see it.
struct FlushView {
  TimeNs now = 0;                         // the store's clock when the flush took its lock
  uint64_t epoch = 0;                     // the epoch the flush commits
  bool internal = false;                  // POST /internal/apikey-stats/flush (all or nothing)
  std::span<const AppliedDelta> applied;  // in key order; only deltas that were applied
  const Db* db = nullptr;                 // for column family handles while staging
  const FlushSource* source = nullptr;    // FlushRules::source, when the flush has one
};

class FlushParticipant {
 public:
  virtual ~FlushParticipant() = default;
  virtual core::Status Stage(const FlushView& flush, rocksdb::WriteBatch* batch) = 0;
  virtual void Commit(const FlushView& flush) = 0;
  virtual void Abort() = 0;
};

}  // namespace tally::persistence
