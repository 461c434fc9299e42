#include "daemon/app/listen_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tally::daemon {

using core::Status;
using core::StatusOr;

StatusOr<uint16_t> ClaimPort(const std::string& option, const Endpoint& ep, int type) {
  bool v6 = ep.host.find(':') != std::string::npos;
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(ep.port);
    if (inet_pton(AF_INET6, ep.host.c_str(), &a->sin6_addr) != 1) {
      return Status::InvalidArgument(option + ": bad address " + ep.host);
    }
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(ep.port);
    if (inet_pton(AF_INET, ep.host.c_str(), &a->sin_addr) != 1) {
      return Status::InvalidArgument(option + ": bad address " + ep.host);
    }
    len = sizeof *a;
  }
  int fd = socket(addr.ss_family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::IoError(option + " " + ep.ToString() + ": socket: " + std::strerror(errno));
  }
  if (type == SOCK_STREAM) {
    // As the real listeners: connections of an earlier run in TIME_WAIT do not block the
    // port; a listening socket still does.
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    if (err == EADDRINUSE) {
      return Status::IoError(option + " " + ep.ToString() +
                             ": address in use (another process, perhaps another tallyd, has "
                             "bound it)");
    }
    return Status::IoError(option + " " + ep.ToString() + ": bind: " + std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  uint16_t port = ep.port;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0) {
    port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  close(fd);
  return port;
}

Status CheckUnixSocketFree(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Status::Ok();  // absent (bind creates it) or not a socket (the bind refuses it)
  }
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return Status::Ok();  // the bind reports the length
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::IoError("--unix-socket " + path + ": socket: " + std::strerror(errno));
  }
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  if (rc == 0) {
    return Status::IoError("--unix-socket " + path +
                           ": address in use (a process, perhaps another tallyd, is receiving "
                           "on it)");
  }
  if (err == ECONNREFUSED || err == ENOENT) {
    return Status::Ok();  // stale: left by an instance that is gone
  }
  return Status::IoError("--unix-socket " + path +
                         ": cannot tell whether it is in use: " + std::strerror(err));
}

}  // namespace tally::daemon
