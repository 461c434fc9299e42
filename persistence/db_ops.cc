// Db: operations on the whole database: checkpoints, its size on disk, compaction.
#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "persistence/db.h"
#include "persistence/db_internal.h"

namespace tally::persistence {

using core::Status;

Status Db::Checkpoint(const std::string& dir) {
  // RocksDB stages a checkpoint in `dir`.tmp and deletes whatever that directory holds
  // first. So the store creates the staging directory itself (mkdir fails if anything has
  // the name): RocksDB then only ever deletes what this call created.
  {
    std::lock_guard lock(checkpoint_mu_);
    if (!checkpoints_running_.insert(dir).second) {
      return Status::Conflict("a checkpoint into " + dir + " is already running");
    }
  }
  struct Unregister {
    Db* db;
    const std::string& dir;
    ~Unregister() {
      std::lock_guard lock(db->checkpoint_mu_);
      db->checkpoints_running_.erase(dir);
    }
  } unregister{this, dir};
  struct stat st {};
  if (lstat(dir.c_str(), &st) == 0) {
    return Status::Conflict("checkpoint dir " + dir + " already exists");
  }
  const std::string staging = dir + ".tmp";
  if (mkdir(staging.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return Status::Conflict(staging + " already exists (RocksDB would delete it)");
    }
    const int err = errno;
    if (err == EACCES || err == EPERM || err == EROFS || err == ENOENT || err == ENOTDIR ||
        err == ENAMETOOLONG || err == ELOOP) {
      // Where the caller asked for: not a place this process may create a directory.
      return Status::InvalidArgument("cannot create " + staging + ": " + std::strerror(err));
    }
    return Status::IoError("cannot create " + staging + ": " + std::strerror(err));
  }
  ReadView view = Read();  // keeps the database open meanwhile
  rocksdb::Checkpoint* raw = nullptr;
  Status s = CheckOpen();
  if (s.ok()) {
    s = FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint");
  }
  if (!s.ok()) {
    (void)rmdir(staging.c_str());  // empty: created above
    return s;
  }
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir), "checkpoint into " + dir);
}

uint64_t Db::DiskBytes() const {
  ReadView view = Read();
  if (!db_) {
    return 0;
  }
  uint64_t sst = 0;
  if (!db_->GetAggregatedIntProperty("rocksdb.total-sst-files-size", &sst)) {
    sst = 0;
  }
  uint64_t wal = 0;
  rocksdb::VectorLogPtr files;
  if (db_->GetSortedWalFiles(files).ok()) {
    for (const auto& f : files) {
      wal += f->SizeFileBytes();
    }
  }
  return sst + wal;
}

Status Db::FlushAndCompact() {
  TALLY_RETURN_IF_ERROR(CheckOpen());
  rocksdb::FlushOptions fo;
  TALLY_RETURN_IF_ERROR(FromRocks(db_->Flush(fo, handles_), "flush memtables"));
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    TALLY_RETURN_IF_ERROR(FromRocks(db_->CompactRange(co, h, nullptr, nullptr), "compact"));
  }
  return Status::Ok();
}

}  // namespace tally::persistence
