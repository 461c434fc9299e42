// WindowStore: the minute, hour and day buckets of issue 15 (time windows), in the `windows`
// column family, written with every flush (a FlushParticipant) and read by the window queries.
//
// Writing. Each committed flush adds each applied delta to the bucket of the flush's time
// (FlushView.now: when tallyd counted it, to the flush interval) at each resolution, for the
// key, for the group it belonged to at that flush (AppliedDelta.group_id) and for the whole,
// all in the flush's synced batch: a committed flush's windows are durable with its totals,
// and a failed flush leaves none of them.
//
// How, cheaply. The group and whole buckets take 3 x (groups + 1) merge operands per flush
// (kWindowsMerge adds varint totals; a bucket is written blind, as cheaply as a Put, and
// RocksDB adds the operands when it is read or compacted). The per-key buckets would take
// 3 x changed keys entries per flush: measured, that made a 100k-key flush 6x slower than
// without windows (skip-list inserts, memtable flushes and compactions of 300k entries a
// flush). So a flush writes its key deltas as ONE journal value (window_journal.h: ~5 bytes a
// key, one memtable insert) and this object keeps the open minute's per-key sums in memory
// (`pending`). Once a later minute has begun, the closed minute is rolled up into the keys'
// minute, hour and day buckets (merge operands), a part of its keys (in key order) in each
// following flush's batch, with the progress (the last key rolled up) stored in the same
// batch, and its journal deleted with the last part. A key then costs 3 bucket writes per
// minute it is active, not per flush, spread so no flush carries a whole minute's. Reads add
// the pending sums to what RocksDB holds, so answers never lag; Load() rebuilds them from
// the journal at a start (after kill -9 too), so nothing committed is lost. Read-modify-write
// of bucket values was rejected: it needs a Get per key and resolution per flush or a cache
// of every open bucket that must be reloaded and kept equal to the disk.
//
// Retention. The buckets are laid out time-major (core/windows.h, "Bucket key layout"), so the
// expired buckets of a resolution are one key range: the flush that first sees a resolution's
// oldest held bucket advance by a sweep step (an hour for minutes, a day for hours and days)
// adds one DeleteRange for [start of the resolution, oldest held) to its own batch. No scan,
// no extra write, no pause; compaction reclaims the space. Queries never read a bucket older
// than the oldest held (core::OldestHeld), so an answer never depends on when the sweep ran.
//
// Thread safety: Load() before the flushes start. Stage/Commit/Abort run under the Store's
// write lock (flush_participant.h). The reads may run from any thread at once, beside
// flushes: each reads one RocksDB snapshot (Db::ReadView) and the pending sums taken with it;
// a flush that rolls a minute up holds the pending sums' lock from its Stage to its Commit or
// Abort, so no read sees a minute both in the buckets and pending.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "core/totals.h"
#include "core/windows.h"
#include "persistence/flush_participant.h"

namespace rocksdb {
class ColumnFamilyHandle;
class MergeOperator;
}  // namespace rocksdb

namespace tally::persistence {

// The `windows` family's merge operator: adds totals (EncodeTotals values), each count
// saturating at 2^63-1. Db's ColumnFamilies() installs it.
std::shared_ptr<rocksdb::MergeOperator> NewWindowsMergeOperator();

// One key's counts over a window (WindowStore::KeyTotals).
struct KeyWindowTotals {
  uint64_t key = 0;
  core::Totals totals;
};

// Counters for /metrics. Relaxed reads: statistics.
struct WindowStats {
  uint64_t buckets_written = 0;  // bucket merge operands written by committed flushes
  uint64_t sweeps = 0;           // DeleteRanges of expired buckets committed
  uint64_t rollups = 0;          // closed minutes wholly rolled up into key buckets
  uint64_t pending_keys = 0;     // key sums held in memory (the minutes not rolled up)
};

// How fast closed minutes are rolled up: each flush rolls up at least `min_rollup_keys`
// keys (or all that remain), and at least an eighth of what remains; a closed minute older
// than `max_rollup_lag` seconds, or one the flush's own minute equals (the clock went back,
// or a start in the same minute), is rolled up whole.
struct WindowOptions {
  size_t min_rollup_keys = 4096;
  int64_t max_rollup_lag = 300;
};

class WindowStore final : public FlushParticipant {
 public:
  // `db` is the Store's (Store::db()), `clock` its clock; both must outlive this.
  WindowStore(const Db& db, const core::Clock& clock, const core::Retention& retention,
              const WindowOptions& options = {});

  // Reads the journal (the minutes not rolled up yet) into memory. Call once, after
  // Store::Open and before the first flush. IoError or Corruption.
  core::Status Load();

  core::Status Stage(const FlushView& flush, rocksdb::WriteBatch* batch) override;
  void Commit(const FlushView& flush) override;
  void Abort() override;

  const core::Retention& retention() const { return retention_; }
  // The store's clock, Unix seconds: the `now` of every query.
  core::UnixSeconds NowSeconds() const;
  WindowStats stats() const;

  // The reads. Preconditions: the windows were planned (core/windows.h) at some `now` whose
  // held buckets they stay within. IoError or Corruption when RocksDB fails or a stored value
  // does not decode. Cost: one MultiGet of every bucket read; KeyTotals scans every key entry
  // of every bucket of the plan.
  //
  // One point per bucket of `w` (zeros for empty buckets), for the whole (scope kWhole, id 0),
  // a group (kGroup, 0 = unassigned) or a key (kKey).
  core::StatusOr<std::vector<core::Totals>> Series(core::Scope scope, uint64_t id,
                                                   const core::Window& w) const;
  // The sum over every bucket of `plan`.
  core::StatusOr<core::Totals> Sum(core::Scope scope, uint64_t id,
                                   const core::SummaryPlan& plan) const;
  // Every key with counts in the buckets of `plan`, in key order, with its sum over them.
  core::StatusOr<std::vector<KeyWindowTotals>> KeyTotals(const core::SummaryPlan& plan) const;

 private:
  const Db& db_;
  const core::Clock& clock_;
  using KeySums = std::unordered_map<uint64_t, core::Totals>;
  // A closed minute: its keys in key order; those before `next` are rolled up.
  struct Closed {
    std::vector<std::pair<uint64_t, core::Totals>> keys;
    size_t next = 0;
  };
  // Load's read of the journal: each journal minute's per-key sums above its stored
  // progress, and that progress. Holds the database's read view, never pending_mu_.
  core::Status ReadJournal(std::map<core::UnixSeconds, std::pair<KeySums, uint64_t>>* minutes);
  // What a staged batch rolls up of one closed minute: keys [from, to) of it.
  struct StagedRollup {
    core::UnixSeconds minute = 0;
    size_t to = 0;
  };

  // Calls add(key, minute, totals) for the pending sums of key `id` (every key when
  // nullopt) in the minutes `covered` accepts. Caller holds pending_mu_ (shared).
  template <typename Covered, typename Add>
  void ForPending(std::optional<uint64_t> id, Covered covered, Add add) const;
  // Merges keys [c.next, to) of closed `minute` into `batch` (key buckets, in key order),
  // then deletes the minute's journal when `to` is the end, else stores the progress.
  core::Status StageRollup(core::UnixSeconds minute, const Closed& c, size_t to,
                           core::UnixSeconds now, rocksdb::ColumnFamilyHandle* cf,
                           rocksdb::WriteBatch* batch);
  void PublishPendingKeys();  // caller holds pending_mu_

  const core::Retention retention_;
  const WindowOptions options_;
  // The minutes not rolled up yet: the open one's sums (open_minute_, open_) and the closed
  // ones. Written under the Store's write lock and pending_mu_ (exclusive); Stage reads
  // them under the Store's lock alone; queries under pending_mu_ (shared).
  mutable std::shared_mutex pending_mu_;
  std::optional<core::UnixSeconds> open_minute_;
  KeySums open_;
  std::map<core::UnixSeconds, Closed> closed_;
  // Held (exclusive) from a Stage that rolls keys up to its Commit or Abort.
  std::unique_lock<std::shared_mutex> rollup_lock_;
  std::vector<StagedRollup> staged_rollup_;  // guarded by the Store's write lock
  // Per resolution: the oldest held start the last committed sweep deleted up to (0: none
  // yet, so the first flush after a start sweeps, e.g. after retention was shortened), and
  // what the staged batch would set it to. Guarded by the Store's write lock.
  std::array<core::UnixSeconds, 3> swept_{};
  std::array<core::UnixSeconds, 3> staged_swept_{};
  uint64_t staged_buckets_ = 0;  // guarded by the Store's write lock
  // Relaxed: statistics for /metrics, written under the Store's write lock.
  std::atomic<uint64_t> buckets_written_{0};
  std::atomic<uint64_t> sweeps_{0};
  std::atomic<uint64_t> rollups_{0};
  std::atomic<uint64_t> pending_keys_{0};
};

}  // namespace tally::persistence
