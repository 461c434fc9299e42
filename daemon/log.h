// Named loggers, one per subsystem, all writing to stderr (journald under systemd).
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace tally::daemon {

// Creates the loggers and sets their level ("error", "warn", "info", "debug").
void InitLogging(const std::string& level);

std::shared_ptr<spdlog::logger> LogMain();
std::shared_ptr<spdlog::logger> LogUdp();
std::shared_ptr<spdlog::logger> LogHttp();
std::shared_ptr<spdlog::logger> LogFlush();
std::shared_ptr<spdlog::logger> LogStore();
std::shared_ptr<spdlog::logger> LogUpstream();  // forwarding, the outbox, the sources
std::shared_ptr<spdlog::logger> LogPostgres();  // the PostgreSQL sink (daemon/upstream/pg_*)

// Lets one message through per `period` and reports how many were held back meanwhile.
// Thread-safe; the cost of a suppressed call is two relaxed atomics.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::milliseconds period) : period_(period) {}

  // True when the caller should log now; *suppressed then holds the calls held back since
  // the previous message.
  bool Allow(uint64_t* suppressed);

 private:
  std::chrono::milliseconds period_;
  // Relaxed: which caller wins a period does not matter; each period admits at most one
  // (the CAS below), and the suppressed count is a statistic.
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace tally::daemon
