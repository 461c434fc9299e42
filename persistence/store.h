// Store: ProviderGroup and ApiKey records in RocksDB, and the atomic flush of counter deltas.
//
// Column families:
//   groups     : IdKey(id) -> EncodeGroup (the whole group, totals included)
//   keys       : IdKey(id) -> EncodeKey   (every key field but its totals)
//   key_totals : IdKey(id) -> EncodeTotals
//   meta       : "format" -> version byte, "epoch" -> u64, "idem/<key>" -> idempotent answers
//
// Every group and every key's group id, liveness and totals are kept in memory, loaded at
// Open, so a flush never reads RocksDB: it computes the new totals in memory, writes them in
// one synced WriteBatch, and only then updates memory. A failed write changes nothing.
//
// Thread safety: all methods may be called from any thread. Writers (flush, admin changes)
// serialize on an exclusive lock; readers share it (ListKeys only to take its snapshot).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/counter_table.h"
#include "core/status.h"
#include "core/totals.h"
#include "persistence/records.h"

namespace rocksdb {
class DB;
class Env;
class Logger;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace tally::persistence {

// An idempotent write's first answer, kept 24 hours (restarts included) and written in the
// same batch as the write it answers for.
struct IdempotentAnswer {
  std::string key;  // the client's Idempotency-Key
  // The request's digest: SHA-256 of its body (32 bytes), compared byte for byte. An answer
  // stored by an older build (format version 1) holds the 8-byte FNV-1a-64 hash of the body
  // instead (record_codec.h); callers tell the two apart by the size.
  std::string request_digest;
  std::string response;  // the answer body returned the first time
};

// Inline constexpr so tests and the HTTP layer agree on how long an answer is kept.
inline constexpr int64_t kIdempotencyTtlNs = 24LL * 3600 * 1'000'000'000;

// How Open treats a damaged write-ahead log (docs/operations.md, "The write-ahead log").
enum class WalRecovery : uint8_t {
  // The default. A torn last record (a crash in the middle of a write, which was never
  // acknowledged) is dropped; any other damage fails Open with Corruption naming the file,
  // because the records after it may hold acknowledged flushes.
  kStrict,
  // Replays up to the last good record before the damage; whatever follows is lost. Open
  // first tries kStrict; when that fails on the WAL it reopens this way, reports an error
  // through on_event and sets StoreHealth::wal_damage_skipped.
  kPointInTime,
};

// Severity of a StoreEvent: a warning (a write stall, a RocksDB warning) or an error (a
// background error, damage found at open).
enum class StoreEventLevel : uint8_t { kWarn, kError };

// Receives RocksDB's warnings and errors (its info log at WARN and above), background errors
// and write-stall changes, one line each. Called from RocksDB's threads and from Open, never
// under the store's lock; must be thread-safe, quick, and rate-limit what it logs.
using StoreEventFn = std::function<void(StoreEventLevel level, const std::string& message)>;

// Counters of what RocksDB reported since Open, for metrics. Cheap to read (relaxed atomics).
struct StoreHealth {
  uint64_t background_errors = 0;   // RocksDB background errors (failed writes, flushes, ...)
  uint64_t stalls_delayed = 0;      // a column family's writes entered the delayed state
  uint64_t stalls_stopped = 0;      // a column family's writes entered the stopped state
  bool stalled = false;             // some column family is delayed or stopped now
  bool wal_damage_skipped = false;  // Open replayed past WAL damage (WalRecovery::kPointInTime)
};

struct StoreHealthState;  // store_internal.h

// How a Store is opened. The defaults are what tallyd uses; tests override them.
struct StoreOptions {
  // RocksDB environment (file system, clock, threads). Not owned; must outlive the Store.
  // nullptr: rocksdb::Env::Default(). Tests pass an Env over a fault-injecting FileSystem.
  rocksdb::Env* env = nullptr;
  // Where RocksDB's own info log goes, every line. nullptr: only its warnings and errors, to
  // on_event. Never a file in the data dir: on a full disk, RocksDB (built with assertions,
  // as Debian's is) aborts on the LOG write that follows a failed one.
  std::shared_ptr<rocksdb::Logger> info_log;
  // Wall clock for timestamps and idempotency expiry, Unix ns. Empty: the system clock.
  std::function<TimeNs()> clock;
  // How long an idempotent answer is kept.
  int64_t idempotency_ttl_ns = kIdempotencyTtlNs;
  // At most this many expired idempotent answers are deleted per flush batch.
  size_t idempotency_purge_per_flush = 256;
  // What Open does with a damaged write-ahead log.
  WalRecovery wal_recovery = WalRecovery::kStrict;
  // Where RocksDB's warnings, errors and stalls go. Empty: nowhere (still counted).
  StoreEventFn on_event;
};

// How a flush treats deltas it cannot apply (the overflow rule, README "Exactness").
//
// Every total (a key's, a group's, the sum over every live key) stays within 0..2^63-1.
// Since every count is non-negative, the sum over the live keys bounds every key's and every
// group's totals, so a delta fits when the running sum over the live keys has room for it.
struct FlushRules {
  // false (the flusher: traffic accepted before the totals were known): a key whose delta
  // does not fit loses that whole delta, counted in FlushResult::dropped_overflow; keys are
  // taken in id order and the others are applied. true (POST /internal/apikey-stats/flush):
  // the whole flush is Refused and nothing is applied.
  bool all_or_nothing = false;
  // With all_or_nothing: a flush that would create unknown keys while the store holds this
  // many key records or more (deleted ones included) is Refused. 0: no bound. The flusher
  // needs none: the counter table bounds the keys traffic can bring (--max-keys).
  size_t max_keys = 0;
};

struct FlushResult {
  uint64_t epoch = 0;             // the epoch this flush committed
  size_t keys_updated = 0;        // keys whose totals changed (created ones included)
  size_t keys_created = 0;        // unknown keys created in the unassigned group
  size_t groups_updated = 0;      // stored groups whose totals changed
  uint64_t dropped_deleted = 0;   // increments for deleted keys (or ids out of range), dropped
  uint64_t dropped_overflow = 0;  // increments whose key's delta did not fit (FlushRules)
};

class Store {
 public:
  // Opens or creates the database under `dir` (created with mode 0700 if missing).
  // Errors, each with a message naming the problem: Unavailable when another process (or
  // another Store in this one) holds the directory's lock; InvalidArgument when `dir` is not
  // a directory; IoError when it cannot be created, listed or written; Corruption when the
  // database or one of its values has an unknown format version, or when the write-ahead
  // log is damaged other than by a torn last record and options.wal_recovery is kStrict
  // (the message then begins "write-ahead log damaged" and names the file).
  static core::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir);
  static core::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir,
                                                     const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies per-key deltas as one WriteBatch written with sync=true: key totals, their
  // groups' totals and the next epoch. Sorts and merges *deltas in place (a merged count past
  // 2^64-1 saturates; it cannot fit a total anyway). On error nothing was applied, in memory
  // or on disk, and the caller still owns every delta.
  // Deltas for deleted keys (and for key 0 or ids above 2^63-1) are dropped and counted in
  // dropped_deleted; deltas that would take a total past 2^63-1 are dropped (dropped_overflow)
  // or refuse the whole flush, as `rules` say. Refused (nothing applied) for a refused flush.
  // A write error is IoError; the next call first tries to bring RocksDB out of its
  // background-error state (DB::Resume), so writes succeed again once the disk has room or
  // works again.
  core::StatusOr<FlushResult> ApplyFlush(std::vector<core::KeyDelta>* deltas,
                                         const FlushRules& rules = {});

  // As ApplyFlush, and records `answer` in the same batch, so a retry can be answered from
  // LookupIdempotent without applying the deltas twice. `answer.response` may be filled in
  // by `render` once the result is known (it is called under the write lock).
  // Conflict, with nothing applied, when an unexpired answer for answer->key already exists
  // (two requests raced with the same key): the caller then answers from LookupIdempotent,
  // comparing request_digest. InvalidArgument for an empty key or one over 255 bytes.
  // Expired answers are deleted a few at a time in each flush's batch.
  core::StatusOr<FlushResult> ApplyFlush(
      std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
      const std::function<std::string(const FlushResult&)>& render, const FlushRules& rules = {});
  // The first answer recorded under `key` within the last 24 hours, if any. The caller
  // compares its request_digest with the new request's: equal means a retry (answer with
  // `response`), different means the key was reused for another request (refuse it).
  std::optional<IdempotentAnswer> LookupIdempotent(const std::string& key) const;
  // Unexpired idempotent answers held (for metrics and tests).
  size_t idempotent_answers() const;

  // Records. Reads return copies with their totals; deleted records are NotFound and left
  // out of lists (gorm's soft delete). Ids are 1..2^63-1.
  core::StatusOr<ProviderGroup> GetGroup(uint64_t id) const;
  std::vector<ProviderGroup> ListGroups() const;  // live groups, in id order
  // Creates with g.id, or when it is 0 with the lowest id no group has ever held (so automatic
  // ids grow and are never reused). Conflict if the id or the name is taken (deleted records
  // keep their ids); InvalidArgument without name, type or base_url.
  // Counters and timestamps in `g` are ignored.
  core::StatusOr<ProviderGroup> CreateGroup(ProviderGroup g);
  // Creates or replaces the group at g.id, keeping its totals and created_at.
  core::StatusOr<ProviderGroup> PutGroup(ProviderGroup g);
  // Soft-deletes the group. Conflict while it has live keys.
  core::Status DeleteGroup(uint64_t id);

  core::StatusOr<ApiKey> GetKey(uint64_t id) const;
  // Live keys in id order, optionally only those of one group (0: unassigned) or status.
  // Reads one RocksDB snapshot (records and their totals from disk, which equal memory after
  // every completed write); the store lock is held only to take the snapshot, so flushes and
  // admin writes go on during the scan, and the list is the state after some completed
  // write. Costs a decode of every key record; not a cheap accessor. IoError or Corruption
  // when the scan fails (never a truncated list).
  core::StatusOr<std::vector<ApiKey>> ListKeys(std::optional<uint64_t> group_id,
                                               std::optional<std::string> status) const;
  // One page of a list, for the HTTP API's paging and streaming: at most `limit` live
  // records with an id above `after_id`, in id order, keeping only those of `group_id` (keys;
  // 0: unassigned) and `status` when given. Keys are read as ListKeys reads them (one
  // snapshot per page, the lock only to take it; the scan reads past records that the
  // filters skip); groups are copied from memory under the shared lock.
  std::vector<ProviderGroup> ListGroupsPage(uint64_t after_id, size_t limit,
                                            const std::optional<std::string>& status) const;
  core::StatusOr<std::vector<ApiKey>> ListKeysPage(uint64_t after_id, size_t limit,
                                                   std::optional<uint64_t> group_id,
                                                   const std::optional<std::string>& status) const;
  // As CreateGroup; k.group_id must name a live group or be 0.
  core::StatusOr<ApiKey> CreateKey(ApiKey k);
  // Creates or replaces the key at k.id, keeping its totals; a new group_id moves the
  // totals from the old group to the new one in the same batch.
  core::StatusOr<ApiKey> PutKey(ApiKey k);
  // Soft-deletes the key and takes its totals out of its group. Later increments for it are
  // dropped (FlushResult::dropped_deleted).
  core::Status DeleteKey(uint64_t id);

  // A RocksDB checkpoint of the live database in `dir`, which must not exist yet, and
  // nor may `dir`.tmp (RocksDB's staging directory, which it would delete). Conflict when
  // either exists or another Checkpoint into `dir` is running; InvalidArgument when the OS
  // refuses to create it there (permissions, read-only, no such parent); never deletes a
  // file it did not create. Blocks for a memtable flush and the links or copies.
  core::Status Checkpoint(const std::string& dir);
  // What RocksDB reported since Open (background errors, stalls, WAL damage skipped).
  StoreHealth health() const;
  // Bytes of the database files on disk (SST and WAL), for metrics.
  uint64_t DiskBytes() const;
  // Flushes memtables and compacts every column family (benchmarks, operations).
  core::Status Compact();
  // Re-reads every record from RocksDB and checks the invariant against it and against
  // memory: key total = success + failure; each stored group's totals = the sum over its
  // live keys; memory equals disk. Corruption naming the first violation; IoError when the
  // read fails. Holds the store lock shared throughout. Slow; for tests.
  core::Status Verify() const;

  // Sum over every live key.
  core::Totals Summary() const;
  // Sum over the live keys of one group; group 0 is the unassigned keys.
  core::StatusOr<core::Totals> GroupSummary(uint64_t group_id) const;

  uint64_t epoch() const;
  size_t live_keys() const;
  size_t live_groups() const;

 private:
  struct KeyState {
    uint64_t group_id = kUnassignedGroup;
    core::Totals totals;
    bool live = true;
  };

  struct IdemEntry {
    TimeNs written_at = 0;
  };

  Store() = default;
  core::Status Load();
  core::Status LoadIdempotent();
  // Writes with sync=true; Resume()s RocksDB first if the previous write failed. Caller
  // holds mu_ exclusively.
  core::Status Write(rocksdb::WriteBatch* batch);
  // Creates, fills (1 MiB), syncs and deletes a file in the data dir through the store's Env.
  core::Status ProbeWritable();
  core::Totals* GroupTotalsLocked(uint64_t group_id);
  // Sum over every live key (the summary); caller holds mu_. Never above 2^63-1 (FlushRules).
  core::Totals WholeLocked() const;
  TimeNs Now() const;
  core::StatusOr<FlushResult> Flush(std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
                                    const std::function<std::string(const FlushResult&)>* render,
                                    const FlushRules& rules);
  // Adds deletes of up to idempotency_purge_per_flush expired answers to `batch`; returns
  // how many entries at the front of idem_order_ ForgetIdempotentLocked must then drop.
  size_t PurgeExpiredLocked(TimeNs now, rocksdb::WriteBatch* batch) const;
  void ForgetIdempotentLocked(size_t count);
  // Admin helpers (store_records.cc); caller holds mu_.
  core::StatusOr<ApiKey> ReadKeyLocked(uint64_t id) const;
  core::Status CheckGroupNameLocked(const ProviderGroup& g) const;
  core::StatusOr<ProviderGroup> WriteGroupLocked(ProviderGroup g, bool create);
  core::StatusOr<ApiKey> WriteKeyLocked(ApiKey k, bool create);
  // The lowest id no key (or group) has ever held, deleted ones included, for a create without
  // an id; Refused only once every id up to 2^63-1 is taken. Since ids are never freed, the
  // answer never decreases: a cursor advances past taken ids, O(1) amortized. Caller holds mu_
  // exclusively.
  core::StatusOr<uint64_t> NextFreeKeyIdLocked();
  core::StatusOr<uint64_t> NextFreeGroupIdLocked();

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* groups_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* keys_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* totals_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  mutable std::shared_mutex mu_;
  std::map<uint64_t, ProviderGroup> groups_;               // guarded by mu_
  std::unordered_map<uint64_t, KeyState> keys_;            // guarded by mu_
  core::Totals unassigned_;                                // guarded by mu_; live keys of group 0
  uint64_t epoch_ = 0;                                     // guarded by mu_
  uint64_t max_key_id_ = 0;                                // guarded by mu_; deleted keys included
  bool needs_resume_ = false;                              // guarded by mu_; the last write failed
  std::unordered_map<std::string, IdemEntry> idem_;        // guarded by mu_
  std::deque<std::pair<TimeNs, std::string>> idem_order_;  // guarded by mu_; oldest first
  StoreOptions options_;
  std::shared_ptr<StoreHealthState> health_;  // shared with RocksDB's listener and logger
  std::mutex checkpoint_mu_;
  std::set<std::string> checkpoints_running_;  // guarded by checkpoint_mu_; target dirs

  // Automatic ids (NextFree*IdLocked); guarded by mu_. No id below a cursor is free.
  uint64_t free_key_cursor_ = 1;
  uint64_t free_group_cursor_ = 1;
};

}  // namespace tally::persistence
