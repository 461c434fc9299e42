// Notifier: the systemd service-manager notifications (sd_notify's protocol), written by hand
// instead of linking libsystemd: one datagram of "KEY=value" lines to the Unix socket named by
// $NOTIFY_SOCKET ("/path", or "@name" for the abstract namespace).
//
//   READY=1       once the database is open and every listener is bound
//   STATUS=...    a one-line summary (keys tracked, the last flush)
//   WATCHDOG=1    from the flusher loop, at least every WatchdogSec/2
//   STOPPING=1    when the orderly stop begins
//
// Without $NOTIFY_SOCKET every call is a no-op that returns false, so tallyd runs the same
// outside systemd. The watchdog is enabled only when $WATCHDOG_USEC is set and $WATCHDOG_PID
// is unset or names this process.
//
// Thread safety: all methods may be called from any thread (one sendto per message).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace tally::daemon {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // True when $NOTIFY_SOCKET names a socket tallyd could open.
  bool enabled() const { return fd_ >= 0; }
  // The watchdog timeout systemd expects pings within; zero when the watchdog is off.
  std::chrono::microseconds watchdog_timeout() const { return watchdog_; }

  // Sends `state` (one or more "KEY=value" lines). False if disabled or the send failed.
  bool Notify(std::string_view state) const;
  bool Ready() const { return Notify("READY=1"); }
  bool Stopping() const { return Notify("STOPPING=1"); }
  bool Watchdog() const { return Notify("WATCHDOG=1"); }
  // STATUS= with newlines replaced by spaces.
  bool Status(std::string_view line) const;

 private:
  int fd_ = -1;
  std::string address_;  // sun_path bytes; a leading '\0' for the abstract namespace
  std::chrono::microseconds watchdog_{0};
};

}  // namespace tally::daemon
