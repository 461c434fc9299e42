#include "daemon/ops/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "daemon/log.h"

namespace tally::daemon {

Notifier::Notifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') {
    return;
  }
  std::string address = path;
  if (address[0] == '@') {
    address[0] = '\0';  // abstract namespace
  } else if (address[0] != '/') {
    LogMain()->warn("NOTIFY_SOCKET '{}' is neither a path nor @abstract; not notifying", path);
    return;
  }
  if (address.size() >= sizeof(sockaddr_un::sun_path)) {
    LogMain()->warn("NOTIFY_SOCKET path is too long; not notifying");
    return;
  }
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    LogMain()->warn("cannot open a socket for NOTIFY_SOCKET: {}", std::strerror(errno));
    return;
  }
  address_ = std::move(address);

  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (usec != nullptr && (pid == nullptr || std::strtoll(pid, nullptr, 10) == getpid())) {
    long long value = std::strtoll(usec, nullptr, 10);
    if (value > 0) {
      watchdog_ = std::chrono::microseconds(value);
    }
  }
}

Notifier::~Notifier() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

bool Notifier::Notify(std::string_view state) const {
  if (fd_ < 0) {
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, address_.data(), address_.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
  if (address_[0] != '\0') {
    ++len;  // a path is sent with its terminating NUL, as sd_notify does
  }
  ssize_t sent = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&addr), len);
  return sent == static_cast<ssize_t>(state.size());
}

bool Notifier::Status(std::string_view line) const {
  std::string message = "STATUS=";
  message.append(line);
  for (size_t i = 7; i < message.size(); ++i) {
    if (message[i] == '\n') {
      message[i] = ' ';
    }
  }
  return Notify(message);
}

}  // namespace tally::daemon
