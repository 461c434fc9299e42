// How a Store is opened, and what RocksDB reported since: the types shared by the Store
// (store.h) and the RocksDB mechanics under it (db.h). Plain values; no thread-safety concerns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"

namespace rocksdb {
class Env;
class Logger;
}  // namespace rocksdb

namespace tally::persistence {

// Inline constexpr so tests and the HTTP layer agree on how long an idempotent answer is kept.
inline constexpr int64_t kIdempotencyTtlNs = 24LL * 3600 * 1'000'000'000;

// How Open treats a damaged write-ahead log (docs/operations.md, "The write-ahead log").
enum class WalRecovery : uint8_t {
  // The default. A torn last record (a crash in the middle of a write, which was never
  // acknowledged) is dropped; any other damage fails Open with Corruption naming the file,
  // because the records after it may hold acknowledged flushes.
  kStrict,
  // Replays up to the last good record before the damage; whatever follows is lost. Open
  // first tries kStrict; when that fails on the WAL it reopens this way, reports an error
  // through on_event and sets StoreHealth::wal_damage_skipped.
  kPointInTime,
};

// Severity of a StoreEvent: a warning (a write stall, a RocksDB warning) or an error (a
// background error, damage found at open).
enum class StoreEventLevel : uint8_t { kWarn, kError };

// Receives RocksDB's warnings and errors (its info log at WARN and above), background errors
// and write-stall changes, one line each. Called from RocksDB's threads, from Open, and from
// a reopen after an error RocksDB cannot resume (under the store's write lock, so it must
// never call the Store); must be thread-safe, quick, and rate-limit what it logs.
using StoreEventFn = std::function<void(StoreEventLevel level, const std::string& message)>;

// Counters of what RocksDB reported since Open, for metrics. Cheap to read (relaxed atomics).
struct StoreHealth {
  uint64_t background_errors = 0;   // RocksDB background errors (failed writes, flushes, ...)
  uint64_t stalls_delayed = 0;      // a column family's writes entered the delayed state
  uint64_t stalls_stopped = 0;      // a column family's writes entered the stopped state
  bool stalled = false;             // some column family is delayed or stopped now
  bool wal_damage_skipped = false;  // Open replayed past WAL damage (WalRecovery::kPointInTime)
};

// How a Store is opened. The defaults are what tallyd uses; tests override them.
struct StoreOptions {
  // RocksDB environment (file system, clock, threads). Not owned; must outlive the Store.
  // nullptr: rocksdb::Env::Default(). Tests pass an Env over a fault-injecting FileSystem.
  rocksdb::Env* env = nullptr;
  // Where RocksDB's own info log goes, every line. nullptr: only its warnings and errors, to
  // on_event. Never a file in the data dir: on a full disk, RocksDB (built with assertions,
  // as Debian's is) aborts on the LOG write that follows a failed one.
  std::shared_ptr<rocksdb::Logger> info_log;
  // Wall clock for timestamps and idempotency expiry. Not owned; must outlive the Store.
  // nullptr: the system clock. Tests pass a core::ManualClock.
  const core::Clock* clock = nullptr;
  // How long an idempotent answer is kept.
  int64_t idempotency_ttl_ns = kIdempotencyTtlNs;
  // At most this many expired idempotent answers are deleted per flush batch.
  size_t idempotency_purge_per_flush = 256;
  // What Open does with a damaged write-ahead log.
  WalRecovery wal_recovery = WalRecovery::kStrict;
  // Where RocksDB's warnings, errors and stalls go. Empty: nowhere (still counted).
  StoreEventFn on_event;
  // RocksDB's background threads (memtable flushes, compactions) at the lowest CPU priority
  // it offers (nice 19), so they never delay the threads that receive datagrams. It applies
  // to the Env's thread pools, shared by every database opened on that Env.
  bool low_priority_background = false;
};

}  // namespace tally::persistence
