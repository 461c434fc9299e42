// Helpers for the operations tests: a stand-in for systemd's notify socket, listening
// sockets handed to tallyd the way systemd's socket activation does, and a tallyd process
// started with any arguments, environment and inherited descriptors.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Options for OpsTallyd.
struct OpsLaunch {
  std::vector<std::string> args;           // after the binary path
  std::map<std::string, std::string> env;  // added to the test's environment
  const ListenSockets* sockets = nullptr;  // passed as fds 3 (UDP) and 4 (HTTP)
  std::string fd_names = "udp:http";       // LISTEN_FDNAMES when sockets are passed
  uint16_t wait_http_port = 0;             // wait for /healthz on it (0: do not wait)
};

// A tallyd process for the operations tests. With `sockets`, it runs as systemd would start
// it: fds 3 and 4 are the sockets, LISTEN_FDS=2, LISTEN_FDNAMES, and LISTEN_PID set to its
// own pid by a `sh -c 'export LISTEN_PID=$$; exec ...'` wrapper.
class OpsTallyd {
 public:
  // Starts tallyd and, when wait_http_port is set, waits for /healthz (throws if tallyd exits
  // first or never answers). `log_path` receives its stdout and stderr.
  OpsTallyd(OpsLaunch launch, std::string log_path);
  ~OpsTallyd();
  OpsTallyd(const OpsTallyd&) = delete;
  OpsTallyd& operator=(const OpsTallyd&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig` and waits; the exit code (128+signal if killed by it).
  int Stop(int sig = 15);
  // Waits up to `timeout_ms` for the process to exit by itself; its exit code, or -1.
  int WaitExit(int timeout_ms);
  void Kill();
  std::string Log() const;
  // Polls the log until it contains `text` or `timeout_ms` passes.
  bool WaitForLog(std::string_view text, int timeout_ms = 10000) const;

 private:
  std::string log_path_;
  pid_t pid_ = -1;
};

// Counts occurrences of `needle` in `haystack`.
int CountOf(std::string_view haystack, std::string_view needle);

}  // namespace tally::testing
