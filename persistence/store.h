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
// serialize on an exclusive lock; readers share it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  std::string key;            // the client's Idempotency-Key
  uint64_t request_hash = 0;  // hash of the request body; a reuse with another body conflicts
  std::string response;       // the answer body returned the first time
};

// Inline constexpr so tests and the HTTP layer agree on how long an answer is kept.
inline constexpr int64_t kIdempotencyTtlNs = 24LL * 3600 * 1'000'000'000;

// How a Store is opened. The defaults are what tallyd uses; tests override them.
struct StoreOptions {
  // RocksDB environment (file system, clock, threads). Not owned; must outlive the Store.
  // nullptr: rocksdb::Env::Default(). Tests pass an Env over a fault-injecting FileSystem.
  rocksdb::Env* env = nullptr;
  // Where RocksDB's own info log goes. nullptr: discarded. Never a file in the data dir: on a
  // full disk, RocksDB (built with assertions, as Debian's is) aborts on the LOG write that
  // follows a failed one.
  std::shared_ptr<rocksdb::Logger> info_log;
  // Wall clock for timestamps and idempotency expiry, Unix ns. Empty: the system clock.
  std::function<TimeNs()> clock;
  // How long an idempotent answer is kept.
  int64_t idempotency_ttl_ns = kIdempotencyTtlNs;
  // At most this many expired idempotent answers are deleted per flush batch.
  size_t idempotency_purge_per_flush = 256;
};

struct FlushResult {
  uint64_t epoch = 0;           // the epoch this flush committed
  size_t keys_updated = 0;      // keys whose totals changed (created ones included)
  size_t keys_created = 0;      // unknown keys created in the unassigned group
  size_t groups_updated = 0;    // stored groups whose totals changed
  uint64_t refused_events = 0;  // increments for deleted keys, dropped by rule
};

class Store {
 public:
  // Opens or creates the database under `dir` (created with mode 0700 if missing).
  // Errors, each with a message naming the problem: Unavailable when another process (or
  // another Store in this one) holds the directory's lock; InvalidArgument when `dir` is not
  // a directory; IoError when it cannot be created, listed or written; Corruption when the
  // database or one of its values has an unknown format version.
  static core::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir);
  static core::StatusOr<std::unique_ptr<Store>> Open(const std::string& dir,
                                                     const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies per-key deltas as one WriteBatch written with sync=true: key totals, their
  // groups' totals and the next epoch. Sorts and merges *deltas in place. On error nothing
  // was applied, in memory or on disk, and the caller still owns every delta.
  // Deltas for deleted keys (and for key 0 or ids above 2^63-1) are dropped and counted in
  // refused_events. A write error is IoError; the next call first tries to bring RocksDB
  // out of its background-error state (DB::Resume), so writes succeed again once the disk
  // has room or works again.
  core::StatusOr<FlushResult> ApplyFlush(std::vector<core::KeyDelta>* deltas);

  // As ApplyFlush, and records `answer` in the same batch, so a retry can be answered from
  // LookupIdempotent without applying the deltas twice. `answer.response` may be filled in
  // by `render` once the result is known (it is called under the write lock).
  // Conflict, with nothing applied, when an unexpired answer for answer->key already exists
  // (two requests raced with the same key): the caller then answers from LookupIdempotent,
  // comparing request_hash. InvalidArgument for an empty key or one over 255 bytes.
  // Expired answers are deleted a few at a time in each flush's batch.
  core::StatusOr<FlushResult> ApplyFlush(
      std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
      const std::function<std::string(const FlushResult&)>& render);
  // The first answer recorded under `key` within the last 24 hours, if any. The caller
  // compares its request_hash with the new request's: equal means a retry (answer with
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
  std::vector<ApiKey> ListKeys(std::optional<uint64_t> group_id,
                               std::optional<std::string> status) const;
  // One page of a list, for the HTTP API's paging and streaming: at most `limit` live
  // records with an id above `after_id`, in id order, keeping only those of `group_id` (keys;
  // 0: unassigned) and `status` when given. Holds the shared lock for this page only (the
  // scan reads past records that the filters skip). ListKeysPage checks its iterator:
  // IoError or Corruption rather than a short page when RocksDB fails.
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
  // refused (FlushResult::refused_events).
  core::Status DeleteKey(uint64_t id);

  // A RocksDB checkpoint of the live database in `dir`, which must not exist yet.
  core::Status Checkpoint(const std::string& dir);
  // Bytes of the database files on disk (SST and WAL), for metrics.
  uint64_t DiskBytes() const;
  // Flushes memtables and compacts every column family (benchmarks, operations).
  core::Status Compact();
  // Re-reads every record from RocksDB and checks the invariant against it and against
  // memory: key total = success + failure; each stored group's totals = the sum over its
  // live keys; memory equals disk. Corruption naming the first violation. Slow; for tests.
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
    uint64_t request_hash = 0;
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
  TimeNs Now() const;
  core::StatusOr<FlushResult> Flush(std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
                                    const std::function<std::string(const FlushResult&)>* render);
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

  // Automatic ids (NextFree*IdLocked); guarded by mu_. No id below a cursor is free.
  uint64_t free_key_cursor_ = 1;
  uint64_t free_group_cursor_ = 1;
};

}  // namespace tally::persistence
