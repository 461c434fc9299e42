// Endpoint: a listening address, "HOST:PORT" or off. The ground of daemon/: the config
// parses it, the ingest and HTTP rooms bind it, app/listen_guard claims it.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace tally::daemon {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  bool enabled() const { return !host.empty(); }
  std::string ToString() const;
};

// "HOST:PORT", "[v6]:PORT", or "off"/"" for disabled.
core::StatusOr<Endpoint> ParseEndpoint(const std::string& text);

bool IsLoopback(const std::string& host);

}  // namespace tally::daemon
