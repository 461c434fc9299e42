#include "daemon/app/store_log.h"

#include <memory>

#include "daemon/log.h"

namespace tally::daemon {

persistence::StoreOptions StoreOptionsFor(const Config& config) {
  persistence::StoreOptions options;
  options.low_priority_background = config.background_nice > 0;
  options.wal_recovery = config.wal_recovery == "point-in-time"
                             ? persistence::WalRecovery::kPointInTime
                             : persistence::WalRecovery::kStrict;
  struct Limits {
    RateLimiter warn{std::chrono::seconds(10)};
    RateLimiter error{std::chrono::seconds(10)};
  };
  options.on_event = [limits = std::make_shared<Limits>()](persistence::StoreEventLevel level,
                                                           const std::string& message) {
    const bool error = level == persistence::StoreEventLevel::kError;
    uint64_t held_back = 0;
    if (!(error ? limits->error : limits->warn).Allow(&held_back)) {
      return;
    }
    const std::string more =
        held_back == 0
            ? std::string()
            : fmt::format(" ({} more held back; see tallyd_store_* in /metrics)", held_back);
    if (error) {
      LogStore()->error("{}{}", message, more);
    } else {
      LogStore()->warn("{}{}", message, more);
    }
  };
  return options;
}

}  // namespace tally::daemon
