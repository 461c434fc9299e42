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
// Thread safety: reads (rocks() reads, Read, DiskBytes, health) from any thread. Write and
// FlushAndCompact must be serialized by the caller (the Store's exclusive lock), and so must
// rocks() reads against them: Write may close and reopen the database (see Write), which
// replaces rocks() and the handles. A reader that does not hold the caller's lock (a scan)
// holds a ReadView instead. Checkpoint may run beside writes (it holds a ReadView, and
// serializes itself per target directory).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
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

// Every column family, in the order of Db's handles (groups() is family 1, ..., sources()
// family 8): the one list of their names. Db opens these; so must whatever opens the
// database with plain RocksDB (tests, benchmarks), since RocksDB opens a database only with
// all of its families named.
inline constexpr std::array<const char*, 9> kColumnFamilyNames = {
    "default", "groups", "keys", "key_totals", "meta", "windows", "bans", "outbox", "sources"};

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
  // The families of the parts that commit with each flush (flush_participant.h): time
  // windows, ban state and events, the forwarding outbox, and the receiver's sources.
  rocksdb::ColumnFamilyHandle* windows() const { return handles_[5]; }
  rocksdb::ColumnFamilyHandle* bans() const { return handles_[6]; }
  rocksdb::ColumnFamilyHandle* outbox() const { return handles_[7]; }
  rocksdb::ColumnFamilyHandle* sources() const { return handles_[8]; }

  // Call before building a batch (the caller's lock held): after a failed write it recovers
  // (below), which replaces the handles a batch is built with. Write's errors.
  core::Status PrepareWrite();
  // Writes `batch` with sync=true. After a failed write the next call first recovers: it
  // proves the disk takes writes again (a 1 MiB synced probe file), then Resume()s RocksDB
  // out of its background error; when that error is one Resume() cannot clear (fatal or
  // unrecoverable: a WAL RocksDB could not create, when descriptors or inodes ran out), it
  // closes and reopens the database in place. Memory above equals the disk as of the last
  // acknowledged write, which the reopened database must end at (its sequence number is
  // checked; Corruption if it holds more). So a write succeeds again, without a restart,
  // once the cause is gone. IoError or Corruption (FromRocks). Caller serializes writes.
  // A reopen that fails leaves the database closed (rocks() null, CheckOpen() an error)
  // until a later Write reopens it.
  core::Status Write(rocksdb::WriteBatch* batch);
  // Ok, or IoError while the database is closed after a failed reopen. Readers call it
  // (holding the caller's lock or a ReadView) before using rocks().
  core::Status CheckOpen() const;

  // A consistent view of the database, released when the pointer is destroyed (before
  // the Db). Cheap; any thread.
  struct SnapshotRelease {
    rocksdb::DB* db = nullptr;
    void operator()(const rocksdb::Snapshot* s) const;
  };
  using Snapshot = std::unique_ptr<const rocksdb::Snapshot, SnapshotRelease>;
  // A snapshot that keeps the database open: while it lives, Write does not close and
  // reopen (it waits), so rocks() and the handles stay valid without the caller's lock.
  // snapshot() is null when the database is closed (check CheckOpen()). Destroy it before
  // the Db; never hold one while waiting for the caller's write lock.
  class ReadView {
   public:
    ReadView() : snapshot_(nullptr, SnapshotRelease{}) {}
    const rocksdb::Snapshot* snapshot() const { return snapshot_.get(); }

   private:
    friend class Db;
    std::shared_lock<std::shared_mutex> lock_;
    Snapshot snapshot_;  // released before the lock (declared after it)
  };
  ReadView Read() const;

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
  // Opens RocksDB in dir_ with opts_ (Open's work, and Reopen's); CloseRocks flushes and
  // closes it, handles first. Both with open_mu_ held exclusively, or before publication.
  core::Status OpenRocks();
  void CloseRocks();
  // Write's recovery after a failed write: Resume(), or Reopen() when that cannot work.
  core::Status Recover();
  core::Status Reopen();
  core::Status ProbeWritable();
  // After a write: switches every family whose memtable is nearly full (see db.cc).
  void SwitchFullMemtables();

  std::string dir_;
  StoreOptions opts_;
  mutable std::shared_mutex open_mu_;  // exclusive: Reopen; shared: ReadViews
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*>
      handles_;  // default, groups, keys, totals, meta, windows, bans, outbox, sources
  std::vector<size_t> write_buffer_bytes_;  // per family, as handles_
  rocksdb::Env* env_ = nullptr;             // options.env or Env::Default()
  bool needs_recovery_ = false;             // serialized by the caller of Write
  uint64_t last_sequence_ = 0;  // serialized by the caller of Write; the last acknowledged
  std::shared_ptr<StoreHealthState> health_;  // shared with RocksDB's listener and logger
  std::mutex checkpoint_mu_;
  std::set<std::string> checkpoints_running_;  // guarded by checkpoint_mu_; target dirs
};

}  // namespace tally::persistence
