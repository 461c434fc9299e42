// Store: ProviderGroup and ApiKey records in RocksDB, and the atomic flush of counter deltas.
// The façade the daemon uses; by role, its parts are:
//   db.h                 the RocksDB mechanics: open, the lock, column families, the synced
//                        write and Resume, snapshots, checkpoint, events (db.cc, db_ops.cc,
//                        db_events.cc)
//   record_rules.h       the domain rules of records: validation, defaults, id range
//   record_store.cc      groups and keys CRUD, keeping the invariant; store_verify.cc checks it
//   flush_apply.cc       the atomic flush of counter deltas
//   idempotency_store.h  the idempotent answers written with a flush
//   record_codec.h       the stored encodings
// store.cc opens the Db and loads the in-memory state from it.
//
// Every group and every key's group id, liveness and totals are kept in memory, loaded at
// Open, so a flush never reads RocksDB: it computes the new totals in memory, writes them in
// one synced WriteBatch, and only then updates memory. A failed write changes nothing.
//
// Thread safety: all methods may be called from any thread. Writers (flush, admin changes)
// serialize on an exclusive lock; readers share it (ListKeys only to take its snapshot).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/key_delta.h"
#include "core/status.h"
#include "core/totals.h"
#include "persistence/flush_participant.h"
#include "persistence/idempotency_store.h"
#include "persistence/key_observer.h"
#include "persistence/records.h"
#include "persistence/store_options.h"

namespace rocksdb {
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace tally::persistence {

class Db;

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
  // The source and sequences of a forwarded batch (Tally-Source, Tally-Sequence), for the
  // receiver's per-source high-water mark (sources_store.h), which stages its mark in the
  // same batch as the deltas; nullopt for every other flush.
  std::optional<FlushSource> source = std::nullopt;
};

struct FlushResult {
  uint64_t epoch = 0;                  // the epoch this flush committed
  size_t keys_updated = 0;             // keys whose totals changed (created ones included)
  size_t keys_created = 0;             // unknown keys created in the unassigned group
  size_t groups_updated = 0;           // stored groups whose totals changed
  uint64_t dropped_deleted = 0;        // increments for deleted keys (or ids out of range), dropped
  uint64_t dropped_overflow = 0;       // increments whose key's delta did not fit (FlushRules)
  std::vector<uint64_t> deleted_keys;  // the deleted keys whose increments were dropped
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
  // background-error state (DB::Resume, or a close and reopen in place when RocksDB's error
  // is not resumable: Db::Write), so writes succeed again once the disk has room or works
  // again, or descriptors or inodes are free again.
  core::StatusOr<FlushResult> ApplyFlush(std::vector<core::KeyDelta>* deltas,
                                         const FlushRules& rules = {});

  // Adds a part that commits with every later flush (flush_participant.h), after those
  // added before it. Not owned; it must outlive the Store's flushes. Call before flushing.
  void AddParticipant(FlushParticipant* participant);
  // Adds a part that follows every later admin write of a key (key_observer.h): calls its
  // Load under the write lock, then registers it. Not owned; it must outlive the Store's
  // writes. Call before any write. Load's error, with nothing registered.
  core::Status AddKeyObserver(KeyObserver* observer);
  // Writes what `stage` adds to a batch (synced, under the write lock), then calls `commit`;
  // on a staging or write error nothing is written and `commit` is not called. For state kept
  // beside the records (the ban policy).
  core::Status WriteAside(const std::function<core::Status(const Db&, rocksdb::WriteBatch*)>& stage,
                          const std::function<void()>& commit);

  // For a part that keeps its own state in a column family beside the flushes (the outbox's
  // acknowledgements, dead letters; flush_participant.h). ReadState runs `read` with a
  // consistent view of the database (a snapshot that keeps it open) and no store lock: any
  // thread, beside flushes. WriteState takes the store's write lock, runs `build` to fill a
  // batch, writes it synced and, once it is durable, runs `commit` (still under the lock, so
  // no flush stages between the write and the memory that follows it). Nothing is written
  // when `build` fails; on a failed write `commit` is not run. Write errors as ApplyFlush's.
  core::Status ReadState(
      const std::function<core::Status(const Db& db, const rocksdb::Snapshot* snapshot)>& read)
      const;
  core::Status WriteState(
      const std::function<core::Status(const Db& db, rocksdb::WriteBatch*)>& build,
      const std::function<void()>& commit);

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
  // As CreateGroup; k.group_id must name a live group or be 0. An automatic id also skips
  // every id `seen` answers true for (the daemon: ids traffic has counted, not yet flushed,
  // so a new key never takes counts sent for another); `seen` must stay true for an id once
  // true (the automatic ids only grow). Called under the store's write lock: keep it cheap.
  core::StatusOr<ApiKey> CreateKey(ApiKey k);
  core::StatusOr<ApiKey> CreateKey(ApiKey k, const std::function<bool(uint64_t id)>& seen);
  // Creates or replaces the key at k.id, keeping its totals; a new group_id moves the
  // totals from the old group to the new one in the same batch.
  core::StatusOr<ApiKey> PutKey(ApiKey k);
  // POST /admin/api-keys/{id}/unban: status back to active, ban_reason and ban_until
  // cleared (the ban rule's key observer resets the backoff), whatever else the record holds:
  // a key first seen through traffic has no api_key, and it is the usual one to unban.
  // NotFound for an unknown or deleted key.
  core::StatusOr<ApiKey> UnbanKey(uint64_t id);
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
  // The RocksDB mechanics, for the flush participants' reads (window_store.h): they read
  // through a Db::ReadView, never holding the store's lock.
  const Db& db() const { return *db_; }
  size_t live_groups() const;

 private:
  struct KeyState {
    uint64_t group_id = kUnassignedGroup;
    core::Totals totals;
    bool live = true;
  };

  Store(std::unique_ptr<Db> db, const StoreOptions& options);
  // Load: the in-memory state from the database, at Open (store.cc).
  core::Status Load();
  core::Status LoadGroups();
  core::Status LoadKeys();
  // Sums the unassigned keys into unassigned_; Corruption when the live keys' totals add up
  // past 2^63-1 (FlushRules).
  core::Status SumLoadedTotals();
  core::Totals* GroupTotalsLocked(uint64_t group_id);
  // Sum over every live key (the summary); caller holds mu_. Never above 2^63-1 (FlushRules).
  core::Totals WholeLocked() const;
  TimeNs Now() const;
  core::StatusOr<FlushResult> Flush(std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
                                    const std::function<std::string(const FlushResult&)>* render,
                                    const FlushRules& rules);
  // Admin helpers (record_store.cc); caller holds mu_.
  core::StatusOr<ApiKey> ReadKeyLocked(uint64_t id) const;
  core::Status CheckGroupNameLocked(const ProviderGroup& g) const;
  core::StatusOr<ProviderGroup> WriteGroupLocked(ProviderGroup g, bool create);
  // `validate` false: k was read from the store (a key created by traffic has no api_key,
  // which ValidateKey requires of an admin write); only its status fields changed.
  core::StatusOr<ApiKey> WriteKeyLocked(ApiKey k, bool create, bool validate = true);
  // Stages the key observers' writes into `batch`, writes it, then commits or aborts them.
  core::Status WriteKeyBatchLocked(const ApiKey* old, const ApiKey& next, TimeNs now,
                                   rocksdb::WriteBatch* batch);

  const std::unique_ptr<Db> db_;
  const core::Clock& clock_;  // options.clock or the system clock

  mutable std::shared_mutex mu_;
  std::map<uint64_t, ProviderGroup> groups_;     // guarded by mu_
  std::unordered_map<uint64_t, KeyState> keys_;  // guarded by mu_
  core::Totals unassigned_;                      // guarded by mu_; live keys of group 0
  uint64_t epoch_ = 0;                           // guarded by mu_
  uint64_t max_key_id_ = 0;                      // guarded by mu_; deleted keys included
  IdempotencyStore idem_;                        // guarded by mu_
  std::vector<FlushParticipant*> participants_;  // guarded by mu_
  std::vector<KeyObserver*> key_observers_;      // guarded by mu_

  // Automatic ids (IdForCreate, record_store.cc); guarded by mu_. No id below a cursor is free.
  uint64_t free_key_cursor_ = 1;
  uint64_t free_group_cursor_ = 1;
};

}  // namespace tally::persistence
