#include "tests/support/ops_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/tallyd_process.h"

namespace tally::testing {
namespace {

bool HasLine(std::string_view message, std::string_view line) {
  size_t pos = 0;
  while (pos <= message.size()) {
    size_t end = message.find('\n', pos);
    std::string_view l =
        message.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (l == line) {
      return true;
    }
    if (end == std::string_view::npos) {
      break;
    }
    pos = end + 1;
  }
  return false;
}

int MoveHigh(int fd) {
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  close(fd);
  return high;
}

uint16_t PortOf(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace

int CountOf(std::string_view haystack, std::string_view needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

NotifySocket::NotifySocket(bool abstract) {
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t len = 0;
  if (abstract) {
    std::string name = "tallyd-test-notify-" + std::to_string(getpid()) + "-" +
                       std::to_string(reinterpret_cast<uintptr_t>(this));
    address_ = "@" + name;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  } else {
    char tmpl[] = "/tmp/tallyd-notify-XXXXXX";
    dir_ = mkdtemp(tmpl);
    address_ = dir_ + "/notify";
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    len = sizeof addr;
  }
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    throw std::runtime_error("cannot bind the notify socket");
  }
}

NotifySocket::~NotifySocket() {
  close(fd_);
  if (!dir_.empty()) {
    unlink(address_.c_str());
    rmdir(dir_.c_str());
  }
}

bool NotifySocket::ReadOne(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) {
    return false;
  }
  char buf[4096];
  ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0) {
    return false;
  }
  messages_.emplace_back(buf, static_cast<size_t>(n));
  return true;
}

void NotifySocket::Drain() {
  while (ReadOne(0)) {
  }
}

bool NotifySocket::WaitFor(std::string_view line, int count, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Count(line) < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      return false;
    }
    ReadOne(static_cast<int>(left));
  }
  return true;
}

int NotifySocket::Count(std::string_view line) const {
  int n = 0;
  for (const std::string& m : messages_) {
    n += HasLine(m, line) ? 1 : 0;
  }
  return n;
}

int NotifySocket::FirstIndex(std::string_view line) const {
  for (size_t i = 0; i < messages_.size(); ++i) {
    if (HasLine(messages_[i], line)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

ListenSockets::ListenSockets() {
  for (int attempt = 0; attempt < 20 && udp_fd < 0; ++attempt) {
    uint16_t port = FreePort();
    sockaddr_in addr = LoopbackAddress(port);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rcvbuf = 4 * 1024 * 1024;
    setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    if (bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(tcp, 128) != 0) {
      close(udp);
      close(tcp);
      continue;
    }
    udp_fd = MoveHigh(udp);
    http_fd = MoveHigh(tcp);
    udp_port = PortOf(udp_fd);
    http_port = PortOf(http_fd);
  }
  if (udp_fd < 0) {
    throw std::runtime_error("no free port for the listening sockets");
  }
}

ListenSockets::~ListenSockets() {
  close(udp_fd);
  close(http_fd);
}

}  // namespace tally::testing
