// Db: the RocksDB mechanics under the Store. Opens the database in a data directory (its
// checks, RocksDB's options, the directory lock, WAL damage handling), owns the column
// families, writes batches synced (and Resume()s RocksDB after a failed write), takes
// snapshots and checkpoints, and reports what RocksDB reported. It knows nothing of records:
// what goes in a batch is the Store's business (store.h).
//
// Column families:
//   groups     : IdKey(id) -> EncodeGroup (the whole group, totals included)
//   keys       : IdKey(id) -> EncodeKey   (every key field but its totals)
//   key_totals : IdKey(id) -> EncodeTotals
//   meta       : "format" -> version byte, "epoch" -> u64, "idem/<key>" -> idempotent answers
//
// Thread safety: reads (rocks() reads, TakeSnapshot, DiskBytes, health) from any thread.
// Write and FlushAndCompact must be serialized by the caller (the Store's exclusive lock);
// Checkpoint may run beside them (it serializes itself per target directory).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "persistence/store_options.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace tally::persistence {

struct StoreHealthState;  // db_internal.h

class Db {
 public:
  // Opens or creates the database under `dir` (created with mode 0700 if missing). Uses
  // options.env, info_log, wal_recovery and on_event. Errors: as Store::Open says.
  static core::StatusOr<std::unique_ptr<Db>> Open(const std::string& dir,
                                                  const StoreOptions& options);
  // Flushes the memtables (so the next start has no WAL to replay) and closes.
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // The database and its column families, for reads and for building batches.
  rocksdb::DB* rocks() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* groups() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* keys() const { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* totals() const { return handles_[3]; }
  rocksdb::ColumnFamilyHandle* meta() const { return handles_[4]; }

  // Writes `batch` with sync=true. After a failed write it first proves the disk takes
  // writes again (a 1 MiB synced probe file) and Resume()s RocksDB out of its background
  // error, so a write succeeds again once the disk has room or works again. IoError or
  // Corruption (FromRocks). Caller serializes writes.
  core::Status Write(rocksdb::WriteBatch* batch);

  // A consistent view of the database, released when the pointer is destroyed (before
  // the Db). Cheap; any thread.
  struct SnapshotRelease {
    rocksdb::DB* db = nullptr;
    void operator()(const rocksdb::Snapshot* s) const;
  };
  using Snapshot = std::unique_ptr<const rocksdb::Snapshot, SnapshotRelease>;
  Snapshot TakeSnapshot() const;

  // Store::Checkpoint's contract.
  core::Status Checkpoint(const std::string& dir);
  // Bytes of the database files on disk (SST and WAL).
  uint64_t DiskBytes() const;
  // Flushes memtables and compacts every column family. Caller serializes with writes.
  core::Status FlushAndCompact();
  // What RocksDB reported since Open. Relaxed atomics: cheap.
  StoreHealth health() const;

 private:
  Db() = default;
  core::Status ProbeWritable();

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, groups, keys, totals, meta
  rocksdb::Env* env_ = nullptr;                        // options.env or Env::Default()
  bool needs_resume_ = false;                          // serialized by the caller of Write
  std::shared_ptr<StoreHealthState> health_;           // shared with RocksDB's listener and logger
  std::mutex checkpoint_mu_;
  std::set<std::string> checkpoints_running_;  // guarded by checkpoint_mu_; target dirs
};

}  // namespace tally::persistence
