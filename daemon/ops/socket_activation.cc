#include "daemon/ops/socket_activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tally::daemon {
namespace {

using core::Status;
using core::StatusOr;

constexpr int kFirstListenFd = 3;  // SD_LISTEN_FDS_START

int SocketOption(int fd, int option) {
  int value = -1;
  socklen_t len = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) {
    return -1;
  }
  return value;
}

// "udp", "http", "unix" or "" (not a kind tallyd can use) for a descriptor.
std::string KindOf(int fd) {
  int type = SocketOption(fd, SO_TYPE);
  int domain = SocketOption(fd, SO_DOMAIN);
  if (type == SOCK_DGRAM && (domain == AF_INET || domain == AF_INET6)) {
    return "udp";
  }
  if (type == SOCK_DGRAM && domain == AF_UNIX) {
    return "unix";
  }
  if (type == SOCK_STREAM && (domain == AF_INET || domain == AF_INET6) &&
      SocketOption(fd, SO_ACCEPTCONN) == 1) {
    return "http";
  }
  return "";
}

}  // namespace

StatusOr<InheritedSockets> ClassifySockets(int first_fd, int count, std::string_view names) {
  InheritedSockets out;
  for (int i = 0; i < count; ++i) {
    int fd = first_fd + i;
    std::string_view name;
    if (!names.empty()) {
      size_t colon = names.find(':');
      name = names.substr(0, colon);
      names = colon == std::string_view::npos ? std::string_view() : names.substr(colon + 1);
    }
    std::string label = "inherited fd " + std::to_string(fd) +
                        (name.empty() ? std::string() : " (" + std::string(name) + ")");
    if (fcntl(fd, F_GETFD) < 0) {
      return Status::InvalidArgument(label + " is not open");
    }
    std::string kind = KindOf(fd);
    if (kind.empty()) {
      return Status::InvalidArgument(
          label +
          " is neither a bound UDP socket, a listening TCP socket nor a Unix datagram "
          "socket");
    }
    if (kind == "unix") {
      return Status::InvalidArgument(label +
                                     " is a Unix datagram socket; inherited ones are not "
                                     "supported, use --unix-socket");
    }
    if ((name == "udp" || name == "http") && name != kind) {
      return Status::InvalidArgument(label + " is named " + std::string(name) + " but is a " +
                                     kind + " socket");
    }
    // Ours alone from now on: not inherited by anything we might run, and never blocking an
    // I/O thread.
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    (kind == "udp" ? out.udp : out.http).push_back(fd);
  }
  return out;
}

StatusOr<InheritedSockets> TakeInheritedSockets() {
  const char* fds = std::getenv("LISTEN_FDS");
  const char* pid = std::getenv("LISTEN_PID");
  const char* names = std::getenv("LISTEN_FDNAMES");
  std::string names_copy = names == nullptr ? "" : names;
  bool ours = fds != nullptr && pid != nullptr && std::strtoll(pid, nullptr, 10) == getpid();
  long count = ours ? std::strtol(fds, nullptr, 10) : 0;
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDNAMES");
  if (count <= 0) {
    return InheritedSockets{};
  }
  if (count > 64) {
    return Status::InvalidArgument("LISTEN_FDS=" + std::to_string(count) + " is implausible");
  }
  return ClassifySockets(kFirstListenFd, static_cast<int>(count), names_copy);
}

bool BoundToLoopback(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return false;
  }
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      return a->sin6_addr.s6_addr[12] == 127;
    }
    return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
  }
  return false;
}

void DisconnectUdp(int fd) {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  (void)connect(fd, &unspec, sizeof unspec);
}

Status PrepareInheritedUdp(int fd, uint64_t rcvbuf, uint64_t* granted) {
  // A previous instance's stop may have left it connected if it died mid-stop.
  DisconnectUdp(fd);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
    return Status::IoError(std::string("inherited udp socket: SO_RXQ_OVFL: ") +
                           std::strerror(errno));
  }
  // The kernel reports twice what was set (bookkeeping overhead included). Only
  // SO_RCVBUFFORCE (CAP_NET_ADMIN) is tried: a plain SO_RCVBUF is capped at
  // net.core.rmem_max and could lower a buffer the socket unit forced higher. Under systemd,
  // ReceiveBuffer= in tallyd.socket is the knob.
  if (static_cast<uint64_t>(SocketOption(fd, SO_RCVBUF)) < rcvbuf) {
    int size = static_cast<int>(rcvbuf);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  }
  *granted = static_cast<uint64_t>(SocketOption(fd, SO_RCVBUF));
  return Status::Ok();
}

}  // namespace tally::daemon
