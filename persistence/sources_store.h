// SourcesStore: the receiver's per-source high-water marks (issue 17, "tallyd as the
// upstream"). A forwarded batch (core/delta_batch.h) names its source and the range of that
// source's sequences it carries; the mark is the highest sequence applied per source.
//
// How it joins the flush: the batch's source and sequences travel in FlushRules::source into
// the flush's FlushView, and this participant stages the new mark into the same synced
// WriteBatch as the deltas (a participant rather than code in the flush, so the store's flush
// stays the same for every other caller). So the mark moves exactly when the deltas are
// applied: after a crash either both are durable or neither. Stage refuses (Conflict, the
// flush applies nothing) a batch whose last_sequence is at or below the mark: the caller
// checks Mark() first and answers such a replay without flushing; the refusal here only
// keeps the rule if two flushes from one source ever raced.
//
// A gap (first_sequence above the mark + 1) is applied and counted (gaps); it never blocks.
// Replays are counted by the caller through CountReplay. Counts are since Open.
//
// Stored in the `sources` family: source -> outbox_codec.h's EncodeSourceMark.
// Thread safety: every method from any thread (its own lock; Stage to Commit runs under the
// store's write lock, which orders it with other flushes).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "persistence/flush_participant.h"
#include "persistence/records.h"

namespace tally::persistence {

class Store;

struct SourceInfo {
  std::string source;
  uint64_t last_sequence = 0;
  TimeNs last_seen = 0;  // Unix ns of the last batch applied (or replayed)
  uint64_t replays = 0;  // since Open
  uint64_t gaps = 0;     // since Open
};

class SourcesStore : public FlushParticipant {
 public:
  // Loads every mark and registers with `store`. IoError or Corruption.
  static core::StatusOr<std::unique_ptr<SourcesStore>> Open(Store& store);

  // The source's mark: 0 when it never sent a batch.
  uint64_t Mark(const std::string& source) const;
  // Counts a batch answered as a replay (and refreshes last_seen in memory).
  void CountReplay(const std::string& source, TimeNs now);
  std::vector<SourceInfo> List() const;  // in source order

  core::Status Stage(const FlushView& flush, rocksdb::WriteBatch* batch) override;
  void Commit(const FlushView& flush) override;
  void Abort() override;

 private:
  SourcesStore() = default;

  mutable std::mutex mu_;
  std::map<std::string, SourceInfo> sources_;  // guarded by mu_
  std::optional<SourceInfo> staged_;           // guarded by the store's write lock
  bool staged_gap_ = false;
};

}  // namespace tally::persistence
