// Shared by the persistence .cc files only: column family and meta key names, the
// conversion of RocksDB statuses, and the health state RocksDB's callbacks write. Not part of
// the public API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/status.h"
#include "persistence/db.h"
#include "persistence/store_options.h"

namespace rocksdb {
class EventListener;
class Logger;
class Status;
}  // namespace rocksdb

namespace tally::persistence {

// The column families' names by role (kColumnFamilyNames, db.h, holds them in handle order).
inline constexpr const char* kGroupsCf = kColumnFamilyNames[1];
inline constexpr const char* kKeysCf = kColumnFamilyNames[2];
inline constexpr const char* kTotalsCf = kColumnFamilyNames[3];
inline constexpr const char* kMetaCf = kColumnFamilyNames[4];
inline constexpr const char* kWindowsCf = kColumnFamilyNames[5];
inline constexpr const char* kBansCf = kColumnFamilyNames[6];
inline constexpr const char* kOutboxCf = kColumnFamilyNames[7];
inline constexpr const char* kSourcesCf = kColumnFamilyNames[8];
inline constexpr char kFormatKey[] = "format";
inline constexpr char kEpochKey[] = "epoch";
inline constexpr char kIdempotentPrefix[] = "idem/";
inline constexpr size_t kMaxIdempotencyKeyBytes = 255;

// IoError (retry may help) or Corruption, with `what` and RocksDB's message.
core::Status FromRocks(const rocksdb::Status& s, const std::string& what);

// What RocksDB reported, shared by the Db, its listener and its logger (db_events.cc).
// Written from RocksDB's threads, read by Db::health().
struct StoreHealthState {
  StoreEventFn on_event;  // set before Open, then only read
  // Relaxed: independent statistics; nothing else is published through them.
  std::atomic<uint64_t> background_errors{0};
  std::atomic<uint64_t> stalls_delayed{0};
  std::atomic<uint64_t> stalls_stopped{0};
  std::atomic<int> stalled_families{0};         // relaxed too: a gauge
  std::atomic<bool> wal_damage_skipped{false};  // relaxed: set by Open before it returns
  // Set by a background error (a failed memtable switch in a checkpoint, say), taken by the
  // next write, which then recovers before it writes (Db::PrepareWrite). Relaxed: a hint;
  // RocksDB's own state is what Resume() and the write consult.
  std::atomic<bool> background_error_pending{false};

  std::mutex mu;
  std::string wal_damage;  // guarded by mu: the first "<file>: dropping N bytes; <why>" line

  void Emit(StoreEventLevel level, const std::string& message) const {
    if (on_event) {
      on_event(level, message);
    }
  }
  // The WAL damage RocksDB's recovery reported since the last call, or "".
  std::string TakeWalDamage() {
    std::lock_guard lock(mu);
    return std::exchange(wal_damage, std::string());
  }
};

// Counts and reports background errors and write-stall changes.
std::shared_ptr<rocksdb::EventListener> NewHealthListener(std::shared_ptr<StoreHealthState> h);
// RocksDB's info log: lines at WARN and above become events (and WAL damage is noted);
// every line also goes to `next` when it is set.
std::shared_ptr<rocksdb::Logger> NewEventLogger(std::shared_ptr<StoreHealthState> h,
                                                std::shared_ptr<rocksdb::Logger> next);

}  // namespace tally::persistence
