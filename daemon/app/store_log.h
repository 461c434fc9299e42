// The store's options from the Config, and RocksDB's reports (background errors, write
// stalls, its warnings) into the `store` logger, rate-limited.
#pragma once

#include "daemon/app/config.h"
#include "persistence/store.h"

namespace tally::daemon {

// StoreOptions for `config`: its WAL recovery policy, and events logged to the `store`
// logger at their severity, at most one line per 10 s per severity (the lines held back
// are counted in the next one, and StoreHealth counts them all for /metrics).
persistence::StoreOptions StoreOptionsFor(const Config& config);

}  // namespace tally::daemon
