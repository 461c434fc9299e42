// Helpers for the operations tests: a stand-in for systemd's notify socket, and listening
// sockets handed to tallyd the way systemd's socket activation does (TallydLaunch::sockets,
// tests/support/tallyd_process.h, starts tallyd with them).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/tallyd_process.h"

namespace tally::testing {

// A Unix datagram socket bound in a fresh temporary directory (or in the abstract
// namespace), playing systemd's $NOTIFY_SOCKET. Not thread-safe.
class NotifySocket {
 public:
  explicit NotifySocket(bool abstract = false);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The value for NOTIFY_SOCKET ("/path" or "@name").
  const std::string& address() const { return address_; }
  // Reads messages until one holding the line `line` (e.g. "READY=1") has been received
  // `count` times in total, or `timeout_ms` passes. True if it was.
  bool WaitFor(std::string_view line, int count = 1, int timeout_ms = 10000);
  // Reads whatever is queued now, without waiting.
  void Drain();
  // Every message so far, in arrival order.
  const std::vector<std::string>& messages() const { return messages_; }
  // How many messages so far hold the line `line`; and the index of the first one (-1).
  int Count(std::string_view line) const;
  int FirstIndex(std::string_view line) const;

 private:
  bool ReadOne(int timeout_ms);

  int fd_ = -1;
  std::string dir_;
  std::string address_;
  std::vector<std::string> messages_;
};

// A bound UDP socket and a listening TCP socket on free loopback ports, as tallyd.socket
// would create them; they stay open across tallyd restarts, like systemd's copies.
struct ListenSockets {
  ListenSockets();
  ~ListenSockets();
  ListenSockets(const ListenSockets&) = delete;
  ListenSockets& operator=(const ListenSockets&) = delete;

  int udp_fd = -1;   // at 100 or above, close-on-exec in the test process
  int http_fd = -1;  // likewise
  uint16_t udp_port = 0;
  uint16_t http_port = 0;
};

// Counts occurrences of `needle` in `haystack`.
int CountOf(std::string_view haystack, std::string_view needle);

}  // namespace tally::testing
