// Clock: the wall clock, injectable, so code that stamps or expires things by time (records'
// timestamps, idempotent answers, later time windows and bans) can be tested without waiting.
//
// NowNs() is Unix time in nanoseconds (UTC). It may jump (NTP, an operator): use it for
// timestamps and expiry, never to measure a duration (the daemon's steady clock,
// SteadyNowNs in daemon/metrics.h, does that).
//
// Thread safety: every Clock here may be read from any thread at once; ManualClock may also
// be set from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tally::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time, ns.
  virtual int64_t NowNs() const = 0;
};

// The system's wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  int64_t NowNs() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // The process-wide instance, for callers that are given no clock.
  static const SystemClock& Get() {
    static const SystemClock clock;
    return clock;
  }
};

// The system wall clock's reading, Unix ns: SystemClock::Get().NowNs().
inline int64_t UnixNowNs() { return SystemClock::Get().NowNs(); }

// A clock that moves only when told to, for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ns = 0) : now_ns_(now_ns) {}
  // Relaxed: the reading is a value on its own; callers that need ordering with other data
  // synchronise on that data.
  int64_t NowNs() const override { return now_ns_.load(std::memory_order_relaxed); }
  void Set(int64_t now_ns) { now_ns_.store(now_ns, std::memory_order_relaxed); }
  void Advance(int64_t delta_ns) { now_ns_.fetch_add(delta_ns, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace tally::core
