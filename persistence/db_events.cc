// RocksDB's reports, forwarded: background errors and write stalls (an EventListener) and
// its info log at WARN and above (a Logger), as StoreEvents and StoreHealth counters.
#include <rocksdb/env.h>
#include <rocksdb/listener.h>

#include <cstdarg>
#include <cstdio>
#include <string_view>

#include "persistence/db_internal.h"

namespace tally::persistence {
namespace {

const char* ReasonName(rocksdb::BackgroundErrorReason reason) {
  switch (reason) {
    case rocksdb::BackgroundErrorReason::kFlush:
    case rocksdb::BackgroundErrorReason::kFlushNoWAL:
      return "a memtable flush";
    case rocksdb::BackgroundErrorReason::kCompaction:
      return "a compaction";
    case rocksdb::BackgroundErrorReason::kWriteCallback:
      return "a write";
    case rocksdb::BackgroundErrorReason::kMemTable:
      return "a memtable insert";
    case rocksdb::BackgroundErrorReason::kManifestWrite:
    case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL:
      return "a MANIFEST write";
  }
  return "an operation";
}

const char* SeverityName(rocksdb::Status::Severity s) {
  switch (s) {
    case rocksdb::Status::Severity::kNoError:
      return "no error";
    case rocksdb::Status::Severity::kSoftError:
      return "soft";
    case rocksdb::Status::Severity::kHardError:
      return "hard";
    case rocksdb::Status::Severity::kFatalError:
      return "fatal";
    case rocksdb::Status::Severity::kUnrecoverableError:
      return "unrecoverable";
    case rocksdb::Status::Severity::kMaxSeverity:
      break;
  }
  return "unknown";
}

class HealthListener : public rocksdb::EventListener {
 public:
  explicit HealthListener(std::shared_ptr<StoreHealthState> h) : h_(std::move(h)) {}
  const char* Name() const override { return "tally.HealthListener"; }

  void OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                         rocksdb::Status* bg_error) override {
    // Relaxed: a statistic (see StoreHealthState).
    h_->background_errors.fetch_add(1, std::memory_order_relaxed);
    h_->background_error_pending.store(true, std::memory_order_relaxed);  // see its comment
    h_->Emit(StoreEventLevel::kError, std::string("RocksDB background error (") +
                                          SeverityName(bg_error->severity()) + ") in " +
                                          ReasonName(reason) + ": " + bg_error->ToString());
  }

  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override {
    using C = rocksdb::WriteStallCondition;
    const C cur = info.condition.cur;
    const C prev = info.condition.prev;
    if (cur == prev) {
      return;
    }
    // Relaxed: statistics and a gauge (see StoreHealthState).
    if (prev == C::kNormal && cur != C::kNormal) {
      h_->stalled_families.fetch_add(1, std::memory_order_relaxed);
    } else if (prev != C::kNormal && cur == C::kNormal) {
      h_->stalled_families.fetch_sub(1, std::memory_order_relaxed);
    }
    if (cur == C::kDelayed) {
      h_->stalls_delayed.fetch_add(1, std::memory_order_relaxed);
      h_->Emit(StoreEventLevel::kWarn, "RocksDB write stall: writes to column family " +
                                           info.cf_name +
                                           " are delayed (memtables or level-0 files pile up)");
    } else if (cur == C::kStopped) {
      h_->stalls_stopped.fetch_add(1, std::memory_order_relaxed);
      h_->Emit(StoreEventLevel::kError, "RocksDB write stall: writes to column family " +
                                            info.cf_name +
                                            " are stopped until memtables are flushed");
    } else {
      h_->Emit(StoreEventLevel::kWarn,
               "RocksDB write stall over: writes to column family " + info.cf_name + " resume");
    }
  }

 private:
  std::shared_ptr<StoreHealthState> h_;
};

class EventLogger : public rocksdb::Logger {
 public:
  EventLogger(std::shared_ptr<StoreHealthState> h, std::shared_ptr<rocksdb::Logger> next)
      : rocksdb::Logger(next ? std::min(next->GetInfoLogLevel(), rocksdb::InfoLogLevel::WARN_LEVEL)
                             : rocksdb::InfoLogLevel::WARN_LEVEL),
        h_(std::move(h)),
        next_(std::move(next)) {}

  // Lines without a level are INFO: only `next` wants them.
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (next_ && level >= next_->GetInfoLogLevel()) {
      va_list copy;
      va_copy(copy, ap);
      next_->Logv(level, format, copy);
      va_end(copy);
    }
    if (level < rocksdb::InfoLogLevel::WARN_LEVEL) {
      return;
    }
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, format, ap);
    if (n < 0) {
      return;
    }
    std::string line(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
    // WAL recovery's reporter: "<path>/000012.log: dropping 32768 bytes; Corruption: ...".
    if (line.find(".log: dropping ") != std::string::npos) {
      std::lock_guard lock(h_->mu);
      if (h_->wal_damage.empty()) {
        // Without RocksDB's "[source.cc:line] " prefix.
        size_t start = line.starts_with('[') ? line.find("] ") : std::string::npos;
        h_->wal_damage = start == std::string::npos ? line : line.substr(start + 2);
      }
    }
    h_->Emit(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? StoreEventLevel::kError
                                                         : StoreEventLevel::kWarn,
             "RocksDB: " + line);
  }

 private:
  std::shared_ptr<StoreHealthState> h_;
  std::shared_ptr<rocksdb::Logger> next_;
};

}  // namespace

std::shared_ptr<rocksdb::EventListener> NewHealthListener(std::shared_ptr<StoreHealthState> h) {
  return std::make_shared<HealthListener>(std::move(h));
}

std::shared_ptr<rocksdb::Logger> NewEventLogger(std::shared_ptr<StoreHealthState> h,
                                                std::shared_ptr<rocksdb::Logger> next) {
  return std::make_shared<EventLogger>(std::move(h), std::move(next));
}

}  // namespace tally::persistence
