// FaultFs: a RocksDB FileSystem over the real one that fails writes on demand, so tests can
// make a real RocksDB see a full disk (ENOSPC as IOStatus::NoSpace) and then recover.
//
// Modes: kNone passes everything through; kFailWrites fails creating, appending to and
// syncing any writable file (nothing new reaches the file); kFailSync lets appends reach
// the file but fails Sync/Fsync, the worst case: the bytes of a refused batch are in the
// WAL without being acknowledged. Thread-safe: the mode is read by RocksDB's threads.
//
// Reads of table files (random-access files, those already open included) have a mode of
// their own: kPass, kFail (an I/O error) or kBlock (each read waits until the mode changes,
// counted in blocked_reads(), so a test can hold a scan in the middle).
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace tally::testing {

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  enum class Mode { kNone, kFailWrites, kFailSync };
  enum class ReadMode { kPass, kFail, kBlock };

  FaultFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FaultFs"; }

  void set_mode(Mode m) {
    // relaxed: a test flips the mode between calls; no other data is published with it.
    mode_.store(m, std::memory_order_relaxed);
  }
  Mode mode() const { return mode_.load(std::memory_order_relaxed); }  // see set_mode

  // Fails the next `n` creations of a write-ahead log file (a name ending in ".log") with
  // "Too many open files", as when the process has used up its descriptors (or the file
  // system its inodes): RocksDB cannot switch to a new WAL, its error is fatal and
  // DB::Resume() cannot clear it.
  void FailWalCreations(int n) {
    // relaxed: a test sets it between calls; no other data is published with it.
    wal_creations_to_fail_.store(n, std::memory_order_relaxed);
  }
  // WAL creations failed so far.
  int failed_wal_creations() const { return failed_wal_creations_.load(std::memory_order_relaxed); }

  void set_read_mode(ReadMode m) {
    {
      std::lock_guard lock(read_mu_);
      read_mode_ = m;
    }
    read_cv_.notify_all();
  }
  // Reads waiting in kBlock now.
  int blocked_reads() const {
    std::lock_guard lock(read_mu_);
    return blocked_;
  }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                        rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSRandomAccessFile> file;
    rocksdb::IOStatus s = target()->NewRandomAccessFile(f, o, &file, dbg);
    if (s.ok()) {
      *r = std::make_unique<ReadFile>(std::move(file), this);
    }
    return s;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (mode() == Mode::kFailWrites) {
      return rocksdb::IOStatus::NoSpace("FaultFs: no space for " + f);
    }
    if (f.ends_with(".log") && TakeWalFailure()) {
      return rocksdb::IOStatus::IOError("While open a file for appending: " + f +
                                        ": Too many open files");
    }
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
    if (s.ok()) {
      *r = std::make_unique<File>(std::move(file), this);
    }
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    if (mode() == Mode::kFailWrites) {
      return rocksdb::IOStatus::NoSpace("FaultFs: no space for " + f);
    }
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, &file, dbg);
    if (s.ok()) {
      *r = std::make_unique<File>(std::move(file), this);
    }
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, FaultFs* fs)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->mode() == Mode::kFailWrites) {
        return rocksdb::IOStatus::NoSpace("FaultFs: append");
      }
      return FSWritableFileOwnerWrapper::Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->mode() == Mode::kFailWrites) {
        return rocksdb::IOStatus::NoSpace("FaultFs: append");
      }
      return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->mode() != Mode::kNone) {
        return rocksdb::IOStatus::NoSpace("FaultFs: sync");
      }
      return FSWritableFileOwnerWrapper::Sync(o, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->mode() != Mode::kNone) {
        return rocksdb::IOStatus::NoSpace("FaultFs: fsync");
      }
      return FSWritableFileOwnerWrapper::Fsync(o, dbg);
    }

   private:
    FaultFs* fs_;
  };

  bool TakeWalFailure() {
    // relaxed: see FailWalCreations.
    int left = wal_creations_to_fail_.load(std::memory_order_relaxed);
    while (left > 0 && !wal_creations_to_fail_.compare_exchange_weak(left, left - 1,
                                                                     std::memory_order_relaxed)) {
    }
    if (left <= 0) {
      return false;
    }
    failed_wal_creations_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Applies the read mode to one read: waits while blocked; an error when failing.
  rocksdb::IOStatus BeforeRead() {
    std::unique_lock lock(read_mu_);
    if (read_mode_ == ReadMode::kBlock) {
      ++blocked_;
      read_cv_.wait(lock, [this] { return read_mode_ != ReadMode::kBlock; });
      --blocked_;
    }
    return read_mode_ == ReadMode::kFail ? rocksdb::IOStatus::IOError("FaultFs: read")
                                         : rocksdb::IOStatus::OK();
  }

  class ReadFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
   public:
    ReadFile(std::unique_ptr<rocksdb::FSRandomAccessFile> f, FaultFs* fs)
        : FSRandomAccessFileOwnerWrapper(std::move(f)), fs_(fs) {}
    rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& o,
                           rocksdb::Slice* result, char* scratch,
                           rocksdb::IODebugContext* dbg) const override {
      if (rocksdb::IOStatus s = fs_->BeforeRead(); !s.ok()) {
        return s;
      }
      return FSRandomAccessFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
    }
    rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                                const rocksdb::IOOptions& o,
                                rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->BeforeRead(); !s.ok()) {
        return s;
      }
      return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, num_reqs, o, dbg);
    }

   private:
    FaultFs* fs_;
  };

  std::atomic<Mode> mode_{Mode::kNone};
  std::atomic<int> wal_creations_to_fail_{0};  // relaxed: see FailWalCreations
  std::atomic<int> failed_wal_creations_{0};   // relaxed: a statistic
  mutable std::mutex read_mu_;
  std::condition_variable read_cv_;
  ReadMode read_mode_ = ReadMode::kPass;  // guarded by read_mu_
  int blocked_ = 0;                       // guarded by read_mu_
};

// An Env over a FaultFs, to pass as StoreOptions::env.
struct FaultEnv {
  std::shared_ptr<FaultFs> fs = std::make_shared<FaultFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
};

}  // namespace tally::testing
