#include "persistence/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "persistence/record_codec.h"
#include "persistence/store_internal.h"
#include "persistence/wal_check.h"

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

// Memtable and WAL bounds (see Store::Open). key_totals gets one Put per changed key per
// flush (~35 bytes each in its memtable): 16 MiB holds about 450k of them, so a flush of
// 1M keys fills one memtable by itself; a third buffer lets the next flush proceed while
// the previous memtable is still being written out instead of stalling. The other
// families take a few records per flush or admin change. The WAL total bounds what a start
// after a crash has to read: past it RocksDB flushes the families that pin the oldest WAL.
constexpr size_t kTotalsWriteBufferBytes = size_t{16} << 20;
constexpr int kTotalsWriteBuffers = 3;
constexpr size_t kSmallWriteBufferBytes = size_t{4} << 20;
constexpr uint64_t kMaxTotalWalBytes = uint64_t{128} << 20;

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

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  return Open(dir, StoreOptions{});
}

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir, const StoreOptions& opts) {
  if (Status s = PrepareDir(dir); !s.ok()) {
    return s;
  }
  auto health = std::make_shared<StoreHealthState>();
  health->on_event = opts.on_event;
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
  // RocksDB preallocates each WAL file (fallocate) by 1.1x the largest write buffer. With
  // the 64 MiB default that reservation failed on a nearly full disk and writes met ENOSPC
  // at once; at 16 MiB it succeeds, and a full disk would go unnoticed (/readyz 200, the
  // fault test FaultDiskFull) until the WAL outgrew its reservation. No preallocation:
  // a full disk fails the next write, as before.
  options.allow_fallocate = false;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = kSmallWriteBufferBytes;
  // key_totals takes every flush's bulk (one Put per changed key) and is read only at open
  // and by Verify(), so its memtable is a vector: an insert is an append, sorted once when
  // the memtable is flushed, instead of a skip-list insert (the flush's main CPU cost).
  rocksdb::ColumnFamilyOptions totals_options;
  totals_options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  totals_options.write_buffer_size = kTotalsWriteBufferBytes;
  totals_options.max_write_buffer_number = kTotalsWriteBuffers;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {kGroupsCf, cf_options},
      {kKeysCf, cf_options},
      {kTotalsCf, totals_options},
      {kMetaCf, cf_options},
  };
  std::unique_ptr<Store> store(new Store());
  store->options_ = opts;
  store->health_ = health;
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
  rocksdb::Status rs = rocksdb::DB::Open(options, dir, families, &store->handles_, &raw);
  // Other WAL damage is recognised by the line RocksDB's WAL reader logs for it
  // (EventLogger). Without that line a failed open is reported as it is, never retried.
  if (std::string damage = health->TakeWalDamage(); !rs.ok() && !damage.empty()) {
    std::string what = damaged(damage + " (RocksDB: " + rs.ToString() + ")");
    if (opts.wal_recovery == WalRecovery::kStrict) {
      return Status::Corruption(what);
    }
    store->handles_.clear();
    recover_to_point_in_time = true;
    options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    rs = rocksdb::DB::Open(options, dir, families, &store->handles_, &raw);
  }
  // Relaxed: published to other threads with the Store itself.
  health->wal_damage_skipped.store(rs.ok() && recover_to_point_in_time, std::memory_order_relaxed);
  if (!rs.ok()) {
    std::string msg = rs.ToString();
    if (msg.find("LOCK") != std::string::npos) {
      return Status::Unavailable("data dir " + dir + " is locked by another running tallyd (" +
                                 msg + ")");
    }
    return FromRocks(rs, "cannot open database in " + dir);
  }
  store->db_.reset(raw);
  store->groups_cf_ = store->handles_[1];
  store->keys_cf_ = store->handles_[2];
  store->totals_cf_ = store->handles_[3];
  store->meta_cf_ = store->handles_[4];
  if (health->wal_damage_skipped.load(std::memory_order_relaxed)) {
    // Write what was recovered to SST files, so the damaged log is obsolete and deleted:
    // replayed again after a later crash, it would stop the replay before every log
    // written since.
    rs = raw->Flush(rocksdb::FlushOptions(), store->handles_);
    if (!rs.ok()) {
      return FromRocks(rs, "flushing the state recovered before the WAL damage");
    }
  }
  if (Status s = store->Load(); !s.ok()) {
    return s;
  }
  return store;
}

StoreHealth Store::health() const {
  StoreHealth h;
  // Relaxed: statistics (see StoreHealthState).
  h.background_errors = health_->background_errors.load(std::memory_order_relaxed);
  h.stalls_delayed = health_->stalls_delayed.load(std::memory_order_relaxed);
  h.stalls_stopped = health_->stalls_stopped.load(std::memory_order_relaxed);
  h.stalled = health_->stalled_families.load(std::memory_order_relaxed) > 0;
  h.wal_damage_skipped = health_->wal_damage_skipped.load(std::memory_order_relaxed);
  return h;
}

Store::~Store() {
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
  (void)db_->Close();
}

TimeNs Store::Now() const {
  if (options_.clock) {
    return options_.clock();
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status Store::Load() {
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kFormatKey, &value);
  if (rs.IsNotFound()) {
    // A new database: stamp its format.
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rs = db_->Put(wo, meta_cf_, kFormatKey, std::string(1, static_cast<char>(kFormatVersion)));
    if (Status s = FromRocks(rs, "cannot stamp format version"); !s.ok()) {
      return s;
    }
  } else if (!rs.ok()) {
    return FromRocks(rs, "cannot read format version");
  } else if (value.size() != 1 || static_cast<uint8_t>(value[0]) != kFormatVersion) {
    return Status::Corruption("unknown database format version " +
                              std::to_string(value.empty() ? 0 : static_cast<uint8_t>(value[0])) +
                              " (this build reads version " + std::to_string(kFormatVersion) + ")");
  }

  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kEpochKey, &value);
  if (rs.ok() && value.size() == 8) {
    epoch_ = IdFromKey(value);
  } else if (!rs.IsNotFound()) {
    return Status::Corruption("bad epoch record: " + rs.ToString());
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), groups_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ProviderGroup g;
    if (Status s = DecodeGroup(it->value().ToStringView(), &g); !s.ok()) {
      return Status::Corruption("group " + std::to_string(IdFromKey(it->key().ToStringView())) +
                                ": " + s.message());
    }
    groups_.emplace(g.id, std::move(g));
  }
  if (Status s = FromRocks(it->status(), "reading groups"); !s.ok()) {
    return s;
  }

  // A bulk scan: read ahead, and keep the block cache for the records read later.
  rocksdb::ReadOptions scan;
  scan.readahead_size = 2 << 20;
  scan.fill_cache = false;
  uint64_t estimate = 0;
  if (db_->GetIntProperty(keys_cf_, "rocksdb.estimate-num-keys", &estimate)) {
    keys_.reserve(estimate);
  }
  it.reset(db_->NewIterator(scan, keys_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t id = 0;
    uint64_t group_id = 0;
    bool live = true;
    if (Status s = DecodeKeyHead(it->value().ToStringView(), &id, &live, &group_id); !s.ok()) {
      return Status::Corruption("key " + std::to_string(IdFromKey(it->key().ToStringView())) +
                                ": " + s.message());
    }
    keys_[id] = KeyState{group_id, {}, live};
    max_key_id_ = std::max(max_key_id_, id);
  }
  if (Status s = FromRocks(it->status(), "reading keys"); !s.ok()) {
    return s;
  }

  it.reset(db_->NewIterator(scan, totals_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t id = IdFromKey(it->key().ToStringView());
    auto found = keys_.find(id);
    if (found == keys_.end()) {
      return Status::Corruption("totals for key " + std::to_string(id) + " without its record");
    }
    if (Status s = DecodeTotals(it->value().ToStringView(), &found->second.totals); !s.ok()) {
      return Status::Corruption("totals of key " + std::to_string(id) + ": " + s.message());
    }
  }
  if (Status s = FromRocks(it->status(), "reading key totals"); !s.ok()) {
    return s;
  }
  // Each stored total decoded within 0..2^63-1; their sum over the live keys must be too
  // (FlushRules), or a later flush could not keep it so.
  const Status too_large = Status::Corruption(
      "the totals of the live keys add up past 2^63-1 (written by a build without the "
      "overflow rule)");
  for (const auto& [id, k] : keys_) {
    if (k.live && k.group_id == kUnassignedGroup) {
      if (!unassigned_.CanAdd(k.totals)) {
        return too_large;
      }
      unassigned_ += k.totals;
    }
  }
  core::Totals whole = unassigned_;
  for (const auto& [id, g] : groups_) {
    if (g.live()) {
      if (!whole.CanAdd(g.totals)) {
        return too_large;
      }
      whole += g.totals;
    }
  }
  return LoadIdempotent();
}

Status Store::Write(rocksdb::WriteBatch* batch) {
  if (needs_resume_) {
    // After a failed write RocksDB holds a background error and refuses every write until
    // resumed; Resume() flushes the memtables to a new WAL, so a half-written record of the
    // failed batch in the old WAL is never replayed. Resume() must not run while the disk
    // still fails: if it cannot create the new WAL, RocksDB's error becomes fatal and only
    // a reopen clears it. So first prove the disk takes writes again.
    if (Status s = ProbeWritable(); !s.ok()) {
      return s;
    }
    rocksdb::Status rs = db_->Resume();
    if (!rs.ok()) {
      return FromRocks(rs, "database not writable yet (recovery after the last failed write)");
    }
    needs_resume_ = false;
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status rs = db_->Write(wo, batch);
  if (!rs.ok()) {
    needs_resume_ = true;
    return FromRocks(rs, "write failed");
  }
  return Status::Ok();
}

Status Store::ProbeWritable() {
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  const std::string probe = db_->GetName() + "/RESUME_PROBE";
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status rs = env->NewWritableFile(probe, &file, rocksdb::EnvOptions());
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
  (void)env->DeleteFile(probe);
  return FromRocks(rs, "database not writable yet (the last write failed)");
}

core::Totals* Store::GroupTotalsLocked(uint64_t group_id) {
  if (group_id == kUnassignedGroup) {
    return &unassigned_;
  }
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second.totals;
}

core::Totals Store::WholeLocked() const {
  core::Totals sum = unassigned_;
  for (const auto& [id, g] : groups_) {
    if (g.live()) {
      sum += g.totals;
    }
  }
  return sum;
}

core::Totals Store::Summary() const {
  std::shared_lock lock(mu_);
  return WholeLocked();
}

StatusOr<core::Totals> Store::GroupSummary(uint64_t group_id) const {
  std::shared_lock lock(mu_);
  if (group_id == kUnassignedGroup) {
    return unassigned_;
  }
  auto it = groups_.find(group_id);
  if (it == groups_.end() || !it->second.live()) {
    return Status::NotFound("no provider group " + std::to_string(group_id));
  }
  return it->second.totals;
}

uint64_t Store::epoch() const {
  std::shared_lock lock(mu_);
  return epoch_;
}

size_t Store::live_keys() const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (const auto& [id, k] : keys_) {
    n += k.live ? 1 : 0;
  }
  return n;
}

size_t Store::live_groups() const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (const auto& [id, g] : groups_) {
    n += g.live() ? 1 : 0;
  }
  return n;
}

}  // namespace tally::persistence
