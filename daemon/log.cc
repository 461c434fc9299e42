#include "daemon/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace tally::daemon {
namespace {

std::shared_ptr<spdlog::logger> Get(const char* name) {
  std::shared_ptr<spdlog::logger> logger = spdlog::get(name);
  if (!logger) {
    logger = spdlog::stderr_logger_mt(name);
  }
  return logger;
}

}  // namespace

void InitLogging(const std::string& level) {
  spdlog::level::level_enum lvl = spdlog::level::from_str(level == "warn" ? "warning" : level);
  for (const char* name : {"main", "udp", "http", "flush", "store", "upstream", "postgres"}) {
    Get(name)->set_level(lvl);
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
}

std::shared_ptr<spdlog::logger> LogMain() {
  static auto l = Get("main");
  return l;
}
std::shared_ptr<spdlog::logger> LogUdp() {
  static auto l = Get("udp");
  return l;
}
std::shared_ptr<spdlog::logger> LogHttp() {
  static auto l = Get("http");
  return l;
}
std::shared_ptr<spdlog::logger> LogFlush() {
  static auto l = Get("flush");
  return l;
}
std::shared_ptr<spdlog::logger> LogStore() {
  static auto l = Get("store");
  return l;
}
std::shared_ptr<spdlog::logger> LogPostgres() {
  static auto l = Get("postgres");
  return l;
}

std::shared_ptr<spdlog::logger> LogUpstream() {
  static auto l = Get("upstream");
  return l;
}

bool RateLimiter::Allow(uint64_t* suppressed) {
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_ns_.compare_exchange_strong(next, now + std::chrono::nanoseconds(period_).count(),
                                        std::memory_order_relaxed)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace tally::daemon
