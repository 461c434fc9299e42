// Metrics: counters owned by one thread each and summed when read.
//
// Each I/O thread gets its own cache-line-aligned ThreadCounters block and is its only writer,
// so a bump is a relaxed load and store with no locked instruction and no shared line.
// Readers (/metrics) sum the blocks with relaxed loads; a sum may miss a bump in flight,
// which the next scrape shows.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "core/line_parser.h"

namespace tally::daemon {

enum class Transport : uint8_t { kUdp, kUnix, kHttp };
inline constexpr size_t kTransports = 3;
inline constexpr std::array<const char*, kTransports> kTransportNames = {"udp", "unix", "http"};

// A counter with a single writer thread.
class OwnedCounter {
 public:
  void Add(uint64_t n) {
    // Relaxed load and store: this thread is the only writer, readers only need some value
    // at least as new as their last read, which relaxed atomics on one object guarantee.
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Relaxed: a statistic; see Add.
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// The HTTP status codes tallyd answers with; anything else counts under "other".
inline constexpr std::array<unsigned, 13> kHttpCodes = {200, 201, 202, 204, 400, 401, 404,
                                                        405, 409, 413, 431, 500, 503};

struct alignas(64) ThreadCounters {
  // lines[transport][result], result order: accepted, ignored, malformed, refused.
  std::array<std::array<OwnedCounter, 4>, kTransports> lines;
  std::array<OwnedCounter, kTransports> datagrams;
  OwnedCounter truncated_datagrams;
  std::array<OwnedCounter, kHttpCodes.size() + 1> http_status;  // last slot: other codes
  OwnedCounter connections_refused;
  OwnedCounter accept_errors;

  void CountStatus(unsigned code) {
    size_t slot = kHttpCodes.size();
    for (size_t i = 0; i < kHttpCodes.size(); ++i) {
      if (kHttpCodes[i] == code) {
        slot = i;
        break;
      }
    }
    http_status[slot].Add(1);
  }

  void CountLines(Transport t, const core::LineCounts& c) {
    auto& row = lines[static_cast<size_t>(t)];
    row[0].Add(c.accepted);
    row[1].Add(c.ignored);
    row[2].Add(c.malformed);
    row[3].Add(c.refused);
  }
};
static_assert(alignof(ThreadCounters) == 64);

// Owns every thread's block. Blocks live as long as the registry and never move.
class CounterRegistry {
 public:
  // Gives the calling thread a block of its own; call once per writer thread.
  ThreadCounters* NewBlock() {
    std::lock_guard lock(mu_);
    return &blocks_.emplace_back();
  }

  template <typename F>
  uint64_t Sum(F&& pick) const {
    std::lock_guard lock(mu_);
    uint64_t total = 0;
    for (const ThreadCounters& b : blocks_) {
      total += pick(b).Get();
    }
    return total;
  }

 private:
  mutable std::mutex mu_;
  std::deque<ThreadCounters> blocks_;  // a deque never moves its elements
};

}  // namespace tally::daemon
