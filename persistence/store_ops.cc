// Operations on the whole database: checkpoints, its size on disk, compaction.
#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "persistence/store.h"
#include "persistence/store_internal.h"

namespace tally::persistence {

using core::Status;

Status Store::Checkpoint(const std::string& dir) {
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
    Store* store;
    const std::string& dir;
    ~Unregister() {
      std::lock_guard lock(store->checkpoint_mu_);
      store->checkpoints_running_.erase(dir);
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
  rocksdb::Checkpoint* raw = nullptr;
  if (Status s = FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"); !s.ok()) {
    (void)rmdir(staging.c_str());  // empty: created above
    return s;
  }
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir), "checkpoint into " + dir);
}

uint64_t Store::DiskBytes() const {
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

Status Store::Compact() {
  std::unique_lock lock(mu_);
  rocksdb::FlushOptions fo;
  if (Status s = FromRocks(db_->Flush(fo, handles_), "flush memtables"); !s.ok()) {
    return s;
  }
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (Status s = FromRocks(db_->CompactRange(co, h, nullptr, nullptr), "compact"); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace tally::persistence
