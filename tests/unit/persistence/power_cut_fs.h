// PowerCutFs: a RocksDB FileSystem over the real one that remembers what was synced, so a
// test can simulate a power cut: everything not synced is lost, as the page cache would be.
// (kill -9 cannot show that: the kernel keeps the page cache, so unsynced writes survive it.)
//
// The model follows RocksDB's own test FaultInjectionTestFS, simplified:
//   - a file written through this FS keeps, at the cut, only the bytes it had at its last
//     Sync/Fsync (a file never synced keeps none);
//   - a file created through this FS whose directory was not fsynced since is deleted at
//     the cut (its directory entry was never made durable);
//   - a rename carries the file's state to its new name, and is otherwise taken as durable
//     at once (RocksDB fsyncs the directory right after each rename it relies on);
//   - files that existed before the FS saw them are left alone.
// Use: CutPower() (from then on every write, sync, create, rename and delete fails, so
// nothing more reaches the disk while the store closes), destroy the store, then
// LoseUnsynced() (apply the loss; the FS works normally again) and reopen.
// Thread-safe: RocksDB's threads call it concurrently.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace tally::testing {

class PowerCutFs : public rocksdb::FileSystemWrapper {
 public:
  PowerCutFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "PowerCutFs"; }

  void CutPower() {
    // Release: pairs with the acquire in dead(); any write that sees the cut fails.
    dead_.store(true, std::memory_order_release);
  }

  // Truncates or deletes what the cut loses; returns the bytes lost (deleted files count
  // their whole size). Call with no store open.
  uint64_t LoseUnsynced() {
    std::lock_guard lock(mu_);
    uint64_t lost = 0;
    for (const auto& [name, f] : files_) {
      std::error_code ec;
      uint64_t size = std::filesystem::file_size(name, ec);
      if (ec) {
        continue;
      }
      if (f.new_entry) {
        lost += size;
        std::filesystem::remove(name, ec);
      } else if (size > f.synced) {
        lost += size - f.synced;
        std::filesystem::resize_file(name, f.synced, ec);
      }
    }
    files_.clear();
    dead_.store(false, std::memory_order_release);  // see CutPower
    return lost;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (dead()) {
      return Dead(f);
    }
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
    if (s.ok()) {
      {
        std::lock_guard lock(mu_);
        files_[Normal(f)] = FileState{0, true};
      }
      *r = std::make_unique<File>(std::move(file), this, Normal(f), 0);
    }
    return s;
  }

  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    if (dead()) {
      return Dead(f);
    }
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(f, ec);
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, &file, dbg);
    if (s.ok()) {
      {
        std::lock_guard lock(mu_);
        // Bytes already there are as durable as they were; unknown ones count as synced.
        files_.try_emplace(Normal(f), FileState{ec ? 0 : size, ec.operator bool()});
      }
      *r = std::make_unique<File>(std::move(file), this, Normal(f), ec ? 0 : size);
    }
    return s;
  }

  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSDirectory> dir;
    rocksdb::IOStatus s = target()->NewDirectory(name, io_opts, &dir, dbg);
    if (s.ok()) {
      *result = std::make_unique<Dir>(std::move(dir), this, Normal(name));
    }
    return s;
  }

  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (dead()) {
      return Dead(src);
    }
    rocksdb::IOStatus s = target()->RenameFile(src, dst, o, dbg);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      auto it = files_.find(Normal(src));
      if (it != files_.end()) {
        files_[Normal(dst)] = it->second;
        files_.erase(it);
      }
    }
    return s;
  }

  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    if (dead()) {
      return Dead(f);
    }
    rocksdb::IOStatus s = target()->DeleteFile(f, o, dbg);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      files_.erase(Normal(f));
    }
    return s;
  }

  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (dead()) {
      return Dead(src);
    }
    return target()->LinkFile(src, dst, o, dbg);
  }

 private:
  struct FileState {
    uint64_t synced = 0;     // bytes that survive a cut
    bool new_entry = false;  // created, and its directory not fsynced since
  };

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, PowerCutFs* fs, std::string name,
         uint64_t size)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), name_(std::move(name)), size_(size) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->dead()) {
        return Dead(name_);
      }
      rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Append(data, o, dbg);
      size_ += s.ok() ? data.size() : 0;
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->dead()) {
        return Dead(name_);
      }
      rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
      size_ += s.ok() ? data.size() : 0;
      return s;
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
      if (fs_->dead()) {
        return Dead(name_);
      }
      rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Truncate(size, o, dbg);
      size_ = s.ok() ? size : size_;
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return Synced(FSWritableFileOwnerWrapper::Sync(o, dbg));
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return Synced(FSWritableFileOwnerWrapper::Fsync(o, dbg));
    }
    // RangeSync writes back without a durability promise: not a sync here.
    rocksdb::IOStatus Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return FSWritableFileOwnerWrapper::Close(o, dbg);  // closing does not sync
    }

   private:
    rocksdb::IOStatus Synced(rocksdb::IOStatus s) {
      if (fs_->dead()) {
        return Dead(name_);
      }
      if (s.ok()) {
        std::lock_guard lock(fs_->mu_);
        auto it = fs_->files_.find(name_);
        if (it != fs_->files_.end()) {
          it->second.synced = size_;
        }
      }
      return s;
    }

    PowerCutFs* fs_;
    std::string name_;
    uint64_t size_;  // bytes appended so far; one writer (RocksDB's file writer)
  };

  class Dir : public rocksdb::FSDirectoryWrapper {
   public:
    Dir(std::unique_ptr<rocksdb::FSDirectory> d, PowerCutFs* fs, std::string name)
        : FSDirectoryWrapper(std::move(d)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return Synced(FSDirectoryWrapper::Fsync(o, dbg));
    }
    rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                          const rocksdb::DirFsyncOptions& d) override {
      return Synced(FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d));
    }

   private:
    rocksdb::IOStatus Synced(rocksdb::IOStatus s) {
      if (fs_->dead()) {
        return Dead(name_);
      }
      if (s.ok()) {
        std::lock_guard lock(fs_->mu_);
        for (auto& [file, state] : fs_->files_) {
          if (std::filesystem::path(file).parent_path() == name_) {
            state.new_entry = false;
          }
        }
      }
      return s;
    }

    PowerCutFs* fs_;
    std::string name_;
  };

  static std::string Normal(const std::string& path) {
    std::string p = std::filesystem::path(path).lexically_normal().string();
    while (p.size() > 1 && p.back() == '/') {
      p.pop_back();
    }
    return p;
  }
  static rocksdb::IOStatus Dead(const std::string& what) {
    return rocksdb::IOStatus::IOError("PowerCutFs: power is off: " + what);
  }
  bool dead() const { return dead_.load(std::memory_order_acquire); }  // see CutPower

  std::atomic<bool> dead_{false};
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // guarded by mu_; by normalised path
};

// An Env over a PowerCutFs, to pass as StoreOptions::env.
struct PowerCutEnv {
  std::shared_ptr<PowerCutFs> fs = std::make_shared<PowerCutFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
};

}  // namespace tally::testing
