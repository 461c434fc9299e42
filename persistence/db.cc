#include "persistence/db.h"

#include <dirent.h>
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/run_memtable.h"
#include "persistence/wal_check.h"
#include "persistence/window_store.h"

namespace tally::persistence {
namespace {

using core::Status;
using core::StatusOr;

// The data directory must be a directory this process can list and write in; it is created
// (mode 0700) if missing. The checks do the real operations instead of asking access(),
// which answers "yes" to root whatever the permission bits say: for root, what is caught is
// what root cannot bypass (a read-only mount, an I/O error); for other users, the bits too.
Status PrepareDir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status::IoError("data dir " + dir + " cannot be examined: " + std::strerror(errno));
    }
    if (mkdir(dir.c_str(), 0700) != 0) {
      return Status::IoError("cannot create data dir " + dir + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("data dir " + dir + " exists and is not a directory");
  }
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return Status::IoError("data dir " + dir + " is not readable: " + std::strerror(errno));
  }
  errno = 0;
  while (readdir(d) != nullptr) {
  }
  int read_errno = errno;
  closedir(d);
  if (read_errno != 0) {
    return Status::IoError("data dir " + dir + " is not readable: " + std::strerror(read_errno));
  }
  std::string probe = dir + "/.tallyd-write-probe";
  int fd = open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IoError("data dir " + dir + " is not writable: " + std::strerror(errno));
  }
  close(fd);
  unlink(probe.c_str());
  return Status::Ok();
}

// Turns off RocksDB's own recovery from a background error (its SstFileManager polls for
// free space every few seconds and makes DB::Resume() return Busy meanwhile). The store
// resumes itself on the next write instead, so a write succeeds as soon as the disk has
// room again, at the pace of the flusher's retries.
class ManualRecovery : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "tally.ManualRecovery"; }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status /*bg_error*/,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// Memtable and WAL bounds (see Db::Open). key_totals gets one Put per changed key per
// flush (~35 bytes each in its memtable): 16 MiB holds about 450k of them, so a flush of
// 1M keys fills one memtable by itself; a third buffer lets the next flush proceed while
// the previous memtable is still being written out instead of stalling. The other
// families take a few records per flush or admin change. The WAL total bounds what a start
// after a crash has to read: past it RocksDB flushes the families that pin the oldest WAL.
constexpr size_t kTotalsWriteBufferBytes = size_t{16} << 20;
constexpr int kTotalsWriteBuffers = 3;
// Every family's size for RocksDB itself, far above the store's switch points (where
// Db::SwitchFullMemtables switches each after every write). A start after a crash replays
// the WAL into memtables, and if one fills, RocksDB 7.8 writes it and then every family out
// to SST files during Open: a fifth of a crash start-up with 1M keys when key_totals filled,
// and 3.5 of its 5.9 s when `keys` did (a crash just after the flush that created 1M key
// records, ~100 MB of them in one batch). The WAL left to replay is bounded
// (max_total_wal_size, and the switch of every family together), so it fits.
constexpr size_t kReplayBufferBytes = size_t{256} << 20;
constexpr size_t kSmallWriteBufferBytes = size_t{4} << 20;
constexpr uint64_t kMaxTotalWalBytes = uint64_t{128} << 20;
// windows takes 3 merge operands per changed key per flush (window_store.h), ~30 bytes each
// in its memtable: 16 MiB holds a 100k-key flush's twice over.
constexpr size_t kWindowsWriteBufferBytes = size_t{16} << 20;
// Table files RocksDB keeps open. Its default (-1: every SST, for the database's life)
// grows with the data and competes with the connections for the process's descriptors;
// with a bound, the least recently used are closed (reads here are rare: the load at
// open, the key lists). Few descriptors left to RocksDB's WAL is what made it fail.
constexpr int kMaxOpenTableFiles = 256;

// A new database is stamped with kFormatVersion; an existing one must carry it.
Status CheckFormat(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta) {
  std::string value;
  rocksdb::Status rs = db->Get(rocksdb::ReadOptions(), meta, kFormatKey, &value);
  if (rs.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rs = db->Put(wo, meta, kFormatKey, std::string(1, static_cast<char>(kFormatVersion)));
    return FromRocks(rs, "cannot stamp format version");
  }
  if (!rs.ok()) {
    return FromRocks(rs, "cannot read format version");
  }
  if (value.size() != 1 || static_cast<uint8_t>(value[0]) != kFormatVersion) {
    return Status::Corruption("unknown database format version " +
                              std::to_string(value.empty() ? 0 : static_cast<uint8_t>(value[0])) +
                              " (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  return Status::Ok();
}

}  // namespace

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) {
    return Status::Ok();
  }
  if (s.IsCorruption()) {
    return Status::Corruption(what + ": " + s.ToString());
  }
  return Status::IoError(what + ": " + s.ToString());
}

namespace {

// RocksDB's options for tallyd's database (the reasons are beside each).
rocksdb::DBOptions DbOptionsFor(const StoreOptions& opts,
                                const std::shared_ptr<StoreHealthState>& health) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.keep_log_file_num = 5;
  options.max_bgerror_resume_count = 0;  // see ManualRecovery
  // After a crash, keep the replayed WAL in memtables instead of flushing it during Open:
  // start-up stays a replay, not a replay plus an SST write.
  options.avoid_flush_during_recovery = true;
  options.allow_concurrent_memtable_write = false;  // required by key_totals' vector memtable;
                                                    // writers are serialized by mu_ anyway
  options.listeners.push_back(std::make_shared<ManualRecovery>());
  options.listeners.push_back(NewHealthListener(health));
  if (opts.env != nullptr) {
    options.env = opts.env;
  }
  // RocksDB's warnings and errors reach on_event; its info lines only opts.info_log. Never
  // a LOG file in the data dir: on a full disk, Debian's RocksDB (assertions on) aborts on
  // the LOG write that follows a failed one.
  options.info_log = NewEventLogger(health, opts.info_log);
  // A torn last record (a crash in the middle of an unacknowledged write) is dropped; any
  // other damage fails the open: point-in-time recovery, RocksDB's default, would silently
  // stop at the damage and drop acknowledged flushes after it. See WalRecovery.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Memory and replay bounds. RocksDB's defaults (a 64 MiB memtable per column family, two
  // of them, and a WAL total of four times all of that) let key_totals hold up to ~128 MiB
  // of memtables, which glibc keeps resident once touched (bench/soak.sh: RSS crept for
  // minutes toward that peak), and let the WAL grow to gigabytes before the rarely written
  // families are flushed, all of which a start after a crash must read.
  options.max_total_wal_size = kMaxTotalWalBytes;
  options.max_open_files = kMaxOpenTableFiles;
  // RocksDB preallocates each WAL file (fallocate) by 1.1x the largest write buffer. With
  // the 64 MiB default that reservation failed on a nearly full disk and writes met ENOSPC
  // at once; at 16 MiB it succeeds, and a full disk would go unnoticed (/readyz 200, the
  // fault test FaultDiskFull) until the WAL outgrew its reservation. No preallocation:
  // a full disk fails the next write, as before.
  options.allow_fallocate = false;
  return options;
}

// The column families and their options, in the order of Db's handles.
std::vector<rocksdb::ColumnFamilyDescriptor> ColumnFamilies() {
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = kReplayBufferBytes;
  cf_options.arena_block_size = kSmallWriteBufferBytes / 8;  // as RocksDB derives it
  // key_totals takes every flush's bulk (one Put per changed key) and is read only at open
  // and by Verify(), so its memtable is a vector: an insert is an append, instead of a
  // skip-list insert (the flush's main CPU cost), and its sorted runs (one per flush) are
  // merged when the memtable is flushed or read (run_memtable.h).
  rocksdb::ColumnFamilyOptions totals_options;
  totals_options.memtable_factory = NewRunMemTableFactory();
  totals_options.write_buffer_size = kReplayBufferBytes;
  totals_options.arena_block_size = kTotalsWriteBufferBytes / 8;  // as RocksDB derives it
  totals_options.max_write_buffer_number = kTotalsWriteBuffers;
  // windows: minute/hour/day buckets, added to by merge operands (window_store.h).
  rocksdb::ColumnFamilyOptions windows_options = cf_options;
  windows_options.merge_operator = NewWindowsMergeOperator();
  windows_options.arena_block_size = kWindowsWriteBufferBytes / 8;
  return {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {kGroupsCf, cf_options},
      {kKeysCf, cf_options},
      {kTotalsCf, totals_options},
      {kMetaCf, cf_options},
      {kWindowsCf, windows_options},
      {kBansCf, cf_options},
      {kOutboxCf, cf_options},
      {kSourcesCf, cf_options},
  };
}

}  // namespace

StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& dir, const StoreOptions& opts) {
  TALLY_RETURN_IF_ERROR(PrepareDir(dir));
  std::unique_ptr<Db> db(new Db());
  db->dir_ = dir;
  db->opts_ = opts;
  db->env_ = opts.env != nullptr ? opts.env : rocksdb::Env::Default();
  if (opts.low_priority_background) {
    for (auto pool : {rocksdb::Env::Priority::HIGH, rocksdb::Env::Priority::LOW}) {
      // Best effort: an Env without it (none used here) keeps the default priority.
      (void)db->env_->LowerThreadPoolCPUPriority(pool, rocksdb::CpuPriority::kLow);
    }
  }
  db->health_ = std::make_shared<StoreHealthState>();
  db->health_->on_event = opts.on_event;
  TALLY_RETURN_IF_ERROR(db->OpenRocks());
  return db;
}

Status Db::OpenRocks() {
  const std::string& dir = dir_;
  const StoreOptions& opts = opts_;
  const std::shared_ptr<StoreHealthState>& health = health_;
  rocksdb::DBOptions options = DbOptionsFor(opts, health);
  write_buffer_bytes_ = {kSmallWriteBufferBytes,  kSmallWriteBufferBytes, kSmallWriteBufferBytes,
                         kTotalsWriteBufferBytes, kSmallWriteBufferBytes, kWindowsWriteBufferBytes,
                         kSmallWriteBufferBytes,  kSmallWriteBufferBytes, kSmallWriteBufferBytes};
  std::vector<rocksdb::ColumnFamilyDescriptor> families = ColumnFamilies();
  const auto damaged = [&](const std::string& where) {
    std::string what = "write-ahead log damaged in " + dir + ": " + where +
                       "; the records after the damage may hold acknowledged flushes";
    if (opts.wal_recovery == WalRecovery::kPointInTime) {
      health->Emit(StoreEventLevel::kError,
                   what + "; recovering to the last good record before it, losing them");
    }
    return what;
  };
  // Damage RocksDB's reader would take for a torn last record (wal_check.h).
  bool recover_to_point_in_time = false;
  if (std::string hidden = FindDamageLikeATornTail(dir); !hidden.empty()) {
    std::string what = damaged(hidden);
    if (opts.wal_recovery == WalRecovery::kStrict) {
      return Status::Corruption(what);
    }
    recover_to_point_in_time = true;
    options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(options, dir, families, &handles_, &raw);
  // Other WAL damage is recognised by the line RocksDB's WAL reader logs for it
  // (EventLogger). Without that line a failed open is reported as it is, never retried.
  if (std::string damage = health->TakeWalDamage(); !rs.ok() && !damage.empty()) {
    std::string what = damaged(damage + " (RocksDB: " + rs.ToString() + ")");
    if (opts.wal_recovery == WalRecovery::kStrict) {
      return Status::Corruption(what);
    }
    handles_.clear();
    recover_to_point_in_time = true;
    options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    rs = rocksdb::DB::Open(options, dir, families, &handles_, &raw);
  }
  // Relaxed: published to other threads with the Db itself.
  health->wal_damage_skipped.store(rs.ok() && recover_to_point_in_time, std::memory_order_relaxed);
  if (!rs.ok()) {
    std::string msg = rs.ToString();
    if (msg.find("LOCK") != std::string::npos) {
      return Status::Unavailable("data dir " + dir + " is locked by another running tallyd (" +
                                 msg + ")");
    }
    return FromRocks(rs, "cannot open database in " + dir);
  }
  db_.reset(raw);
  if (health->wal_damage_skipped.load(std::memory_order_relaxed)) {
    // Write what was recovered to SST files, so the damaged log is obsolete and deleted:
    // replayed again after a later crash, it would stop the replay before every log
    // written since.
    rs = raw->Flush(rocksdb::FlushOptions(), handles_);
    if (!rs.ok()) {
      return FromRocks(rs, "flushing the state recovered before the WAL damage");
    }
  }
  TALLY_RETURN_IF_ERROR(CheckFormat(raw, meta()));
  last_sequence_ = raw->GetLatestSequenceNumber();
  return Status::Ok();
}

StoreHealth Db::health() const {
  StoreHealth h;
  // Relaxed: statistics (see StoreHealthState).
  h.background_errors = health_->background_errors.load(std::memory_order_relaxed);
  h.stalls_delayed = health_->stalls_delayed.load(std::memory_order_relaxed);
  h.stalls_stopped = health_->stalls_stopped.load(std::memory_order_relaxed);
  h.stalled = health_->stalled_families.load(std::memory_order_relaxed) > 0;
  h.wal_damage_skipped = health_->wal_damage_skipped.load(std::memory_order_relaxed);
  return h;
}

Db::~Db() { CloseRocks(); }

void Db::CloseRocks() {
  if (!db_) {
    return;
  }
  // A clean close flushes the memtables, so the next start has no WAL to replay. Every
  // write is already durable in the WAL: a failure here costs start-up time, not data.
  (void)db_->Flush(rocksdb::FlushOptions(), handles_);
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    // Destroying handles cannot fail in a way we could act on while closing.
    (void)db_->DestroyColumnFamilyHandle(h);
  }
  handles_.clear();
  (void)db_->Close();
  db_.reset();
}

Status Db::PrepareWrite() {
  // Relaxed: see StoreHealthState::background_error_pending.
  if (health_->background_error_pending.exchange(false, std::memory_order_relaxed)) {
    needs_recovery_ = true;
  }
  return needs_recovery_ ? Recover() : Status::Ok();
}

Status Db::Write(rocksdb::WriteBatch* batch) {
  TALLY_RETURN_IF_ERROR(PrepareWrite());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status rs = db_->Write(wo, batch);
  if (!rs.ok()) {
    needs_recovery_ = true;
    return FromRocks(rs, "write failed");
  }
  last_sequence_ = db_->GetLatestSequenceNumber();
  SwitchFullMemtables();
  return Status::Ok();
}

void Db::SwitchFullMemtables() {
  // RocksDB 7.8 switches the memtables a write filled at the start of the next write, all
  // families in one loop that stops at the first failure (a WAL it cannot create) without
  // releasing the families after it: Close() then aborts on RocksDB's assertion 'last_ref'.
  // Switching each filled family here, one Flush() per family (which releases what it
  // takes), before the next write, leaves that loop nothing to switch. RocksDB marks a
  // memtable for its switch from about 95% of its size: 90% is caught first (and
  // every family's RocksDB size is far larger: kReplayBufferBytes).
  bool any_full = false;
  for (size_t i = 0; i < handles_.size() && !any_full; ++i) {
    uint64_t size = 0;
    any_full = db_->GetIntProperty(handles_[i], "rocksdb.cur-size-active-mem-table", &size) &&
               size >= write_buffer_bytes_[i] / 10 * 9;
  }
  if (!any_full) {
    return;
  }
  // The families written a little at every flush (the small buffers: meta's epoch, the
  // groups, new keys' records) go with the full one when they hold anything: they would
  // otherwise pin every WAL file since their last switch, up to max_total_wal_size, and a
  // start after a crash reads all of it. So the WAL to replay is what came after the last
  // switch of the bulk families (key_totals, windows: at most a memtable of each, plus the
  // switched ones still being written out). The bulk families switch only when full: taking
  // one along half full would only make more, smaller SST files to compact.
  for (size_t i = 0; i < handles_.size(); ++i) {
    uint64_t size = 0;
    uint64_t entries = 0;
    const bool full =
        db_->GetIntProperty(handles_[i], "rocksdb.cur-size-active-mem-table", &size) &&
        size >= write_buffer_bytes_[i] / 10 * 9;
    const bool small_with_entries =
        write_buffer_bytes_[i] <= kSmallWriteBufferBytes &&
        db_->GetIntProperty(handles_[i], "rocksdb.num-entries-active-mem-table", &entries) &&
        entries > 0;
    if (!full && !small_with_entries) {
      continue;
    }
    rocksdb::FlushOptions fo;
    fo.wait = false;
    fo.allow_write_stall = true;
    if (!db_->Flush(fo, handles_[i]).ok()) {
      needs_recovery_ = true;  // the write is durable; the next one recovers first
      return;
    }
  }
}

Status Db::Recover() {
  // After a failed write RocksDB holds a background error and refuses every write until
  // resumed; Resume() flushes the memtables to a new WAL, so a half-written record of the
  // failed batch in the old WAL is never replayed. Resume() must not run while the disk
  // still fails: if it cannot create the new WAL, RocksDB's error becomes fatal. So first
  // prove the disk takes writes again.
  TALLY_RETURN_IF_ERROR(ProbeWritable());
  if (db_) {
    rocksdb::Status rs = db_->Resume();
    if (rs.ok()) {
      needs_recovery_ = false;
      return Status::Ok();
    }
    if (rs.severity() < rocksdb::Status::Severity::kFatalError) {
      return FromRocks(rs, "database not writable yet (recovery after the last failed write)");
    }
    // A fatal or unrecoverable error (a WAL RocksDB could not create, say): Resume() never
    // clears it. Only closing and reopening does.
  }
  TALLY_RETURN_IF_ERROR(Reopen());
  needs_recovery_ = false;
  return Status::Ok();
}

Status Db::Reopen() {
  std::unique_lock lock(open_mu_);  // waits for scans and checkpoints on the old database
  const uint64_t expected = last_sequence_;
  if (db_) {
    health_->Emit(StoreEventLevel::kError,
                  "RocksDB's background error cannot be resumed; closing and reopening the "
                  "database in " +
                      dir_);
  }
  CloseRocks();
  if (Status s = OpenRocks(); !s.ok()) {
    CloseRocks();
    return Status::IoError(
        "database not writable yet (reopening after an error that RocksDB "
        "cannot resume failed): " +
        s.message());
  }
  // The replayed WAL must end at the last write this Db acknowledged: a refused batch found
  // in it (a failed sync whose bytes reached the file) would be on disk but not in memory.
  if (db_->GetLatestSequenceNumber() != expected) {
    const std::string what =
        "the reopened database holds writes after the last acknowledged one (sequence " +
        std::to_string(db_->GetLatestSequenceNumber()) + ", expected " + std::to_string(expected) +
        "); restart tallyd to load what is on disk";
    health_->Emit(StoreEventLevel::kError, what);
    CloseRocks();
    return Status::Corruption(what);
  }
  health_->Emit(StoreEventLevel::kWarn, "database in " + dir_ + " reopened; writes resume");
  return Status::Ok();
}

Status Db::ProbeWritable() {
  const std::string probe = dir_ + "/RESUME_PROBE";
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status rs = env_->NewWritableFile(probe, &file, rocksdb::EnvOptions());
  if (rs.ok()) {
    // As much as a flush of a full memtable might need soon after: 1 MiB, synced.
    const std::string chunk(64 * 1024, 'p');
    for (int i = 0; i < 16 && rs.ok(); ++i) {
      rs = file->Append(chunk);
    }
    if (rs.ok()) {
      rs = file->Sync();
    }
    (void)file->Close();
  }
  (void)env_->DeleteFile(probe);
  return FromRocks(rs, "database not writable yet (the last write failed)");
}

void Db::SnapshotRelease::operator()(const rocksdb::Snapshot* s) const { db->ReleaseSnapshot(s); }

Db::ReadView Db::Read() const {
  ReadView view;
  view.lock_ = std::shared_lock(open_mu_);
  if (db_) {
    view.snapshot_ = Snapshot(db_->GetSnapshot(), SnapshotRelease{db_.get()});
  }
  return view;
}

Status Db::CheckOpen() const {
  if (db_) {
    return Status::Ok();
  }
  return Status::IoError(
      "database closed: reopening after an error that RocksDB cannot resume "
      "failed; retried with the next write");
}

}  // namespace tally::persistence
