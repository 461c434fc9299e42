#include "bench/tally_load_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tally::bench {
namespace {

bool ParseHostPort(const std::string& text, sockaddr_storage* addr, socklen_t* len) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) {
    return false;
  }
  *addr = {};
  auto* a4 = reinterpret_cast<sockaddr_in*>(addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *a4;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *a6;
    return true;
  }
  return false;
}

int Connect(const std::string& hostport, int type, std::string* error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!ParseHostPort(hostport, &addr, &len)) {
    *error = "bad address '" + hostport + "' (want IP:PORT)";
    return -1;
  }
  int fd = socket(addr.ss_family, type | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    *error = "connect " + hostport + ": " + std::strerror(errno);
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  return fd;
}

}  // namespace

int ConnectUdp(const std::string& hostport, std::string* error) {
  return Connect(hostport, SOCK_DGRAM, error);
}

int ConnectTcp(const std::string& hostport, std::string* error) {
  int fd = Connect(hostport, SOCK_STREAM, error);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  return fd;
}

int ConnectUnixDatagram(const std::string& path, std::string* error) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    *error = "unix socket path too long";
    return -1;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = "connect " + path + ": " + std::strerror(errno);
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadHttpResponse(int fd, std::string* buffer, HttpResponse* res) {
  char chunk[16384];
  size_t header_end = std::string::npos;
  auto fill = [&]() {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) {
      return true;
    }
    if (n <= 0) {
      return false;
    }
    buffer->append(chunk, static_cast<size_t>(n));
    return true;
  };
  while ((header_end = buffer->find("\r\n\r\n")) == std::string::npos) {
    if (buffer->size() > 65536 || !fill()) {
      return false;
    }
  }
  if (buffer->compare(0, 9, "HTTP/1.1 ") != 0 && buffer->compare(0, 9, "HTTP/1.0 ") != 0) {
    return false;
  }
  res->status = std::atoi(buffer->c_str() + 9);
  size_t length = 0;
  std::string head = buffer->substr(0, header_end);
  for (char& c : head) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  size_t cl = head.find("\r\ncontent-length:");
  if (cl != std::string::npos) {
    length = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
  }
  size_t total = header_end + 4 + length;
  while (buffer->size() < total) {
    if (!fill()) {
      return false;
    }
  }
  res->body.assign(*buffer, header_end + 4, length);
  buffer->erase(0, total);
  return true;
}

HttpResponse HttpCall(const std::string& hostport, const std::string& method,
                      const std::string& target, const std::string& headers,
                      const std::string& body) {
  HttpResponse res;
  std::string error;
  int fd = ConnectTcp(hostport, &error);
  if (fd < 0) {
    return res;
  }
  timeval tv{60, 0};  // a flush of 10M keys behind a read-back takes seconds
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + hostport +
                    "\r\nConnection: close\r\n" + headers +
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string buffer;
  if (!SendAll(fd, req.data(), req.size()) || !ReadHttpResponse(fd, &buffer, &res)) {
    res.status = 0;
  }
  close(fd);
  return res;
}

int64_t JsonNumber(const std::string& json, const std::string& name) {
  size_t at = json.find("\"" + name + "\":");
  if (at == std::string::npos) {
    return -1;
  }
  return std::strtoll(json.c_str() + at + name.size() + 3, nullptr, 10);
}

}  // namespace tally::bench
