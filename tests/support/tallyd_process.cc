#include "tests/support/tallyd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/wait_until.h"

namespace tally::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

sockaddr_in LoopbackAddress(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int ConnectLoopback(int type, uint16_t port) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in addr = LoopbackAddress(port);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

namespace {

int BindLoopback(int type, uint16_t port) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in addr = LoopbackAddress(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

uint16_t FreePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int tcp = BindLoopback(SOCK_STREAM, 0);
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    getsockname(tcp, reinterpret_cast<sockaddr*>(&addr), &len);
    uint16_t port = ntohs(addr.sin_port);
    int udp = BindLoopback(SOCK_DGRAM, port);
    close(tcp);
    if (udp >= 0) {
      close(udp);
      return port;
    }
  }
  throw std::runtime_error("no free port");
}

TallydProcess::TallydProcess(std::string data_dir, std::vector<std::string> extra_args,
                             std::map<std::string, std::string> env)
    : data_dir_(std::move(data_dir)), log_path_(data_dir_ + ".log") {
  for (int attempt = 0; attempt < 5; ++attempt) {
    udp_port_ = FreePort();
    http_port_ = FreePort();
    TallydLaunch launch;
    launch.args = {"--data-dir",    data_dir_,
                   "--udp-listen",  "127.0.0.1:" + std::to_string(udp_port_),
                   "--http-listen", "127.0.0.1:" + std::to_string(http_port_),
                   "--io-threads",  "2"};
    launch.args.insert(launch.args.end(), extra_args.begin(), extra_args.end());
    launch.env = env;
    launch.wait_http_port = http_port_;
    try {
      child_.emplace(std::move(launch), log_path_);
      return;
    } catch (const std::runtime_error&) {
      // It exited or never answered: maybe a port race; try again with new ports.
    }
  }
  throw std::runtime_error("tallyd did not start; log:\n" + Log());
}

TallydProcess::~TallydProcess() = default;

int TallydProcess::Stop(int sig) { return child_ ? child_->Stop(sig) : -1; }

void TallydProcess::Kill() {
  if (child_) {
    child_->Kill();
  }
}

std::string TallydProcess::Log() const { return TallydChild::ReadLog(log_path_); }

HttpResult Http(uint16_t port, std::string_view method, std::string_view target,
                std::string_view body, const std::map<std::string, std::string>& headers) {
  HttpResult result;
  try {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) {
      req.set(k, v);
    }
    req.body() = std::string(body);
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(socket, buffer, parser);
    auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    result.body = res.body();
    for (const auto& field : res) {
      result.headers[std::string(field.name_string())] = std::string(field.value());
    }
  } catch (const std::exception&) {
    result.status = 0;
  }
  return result;
}

void SendUdp(uint16_t port, std::string_view payload) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr = LoopbackAddress(port);
  sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  close(fd);
}

std::string WaitForTotal(uint16_t http_port, int64_t total, int timeout_ms,
                         const std::map<std::string, std::string>& headers) {
  std::string body;
  WaitUntil(
      [&] {
        HttpResult r = Http(http_port, "GET", "/admin/apikey-stats/summary", {}, headers);
        body = r.body;
        if (r.status != 200) {
          return false;
        }
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(body, ec);
        return !ec && v.is_object() && v.as_object().contains("total_requests") &&
               v.at("total_requests").to_number<int64_t>() >= total;
      },
      timeout_ms, 50);
  return body;
}

RawConnection::RawConnection(uint16_t port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr = LoopbackAddress(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return;
  }
  fd_ = fd;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) {
    close(fd_);
  }
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty() && fd_ >= 0) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return fd_ >= 0;
}

HttpResult RawConnection::ReadResponse() {
  HttpResult result;
  auto fill = [this]() {
    char chunk[16384];
    ssize_t n;
    do {
      n = recv(fd_, chunk, sizeof chunk, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  };
  if (fd_ < 0) {
    return result;
  }
  size_t header_end;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) {
      return result;
    }
  }
  std::string head = buffer_.substr(0, header_end);
  size_t body_length = 0;
  std::istringstream lines(head);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (first) {
      first = false;
      if (line.size() < 12) {
        return result;
      }
      result.status = std::atoi(line.c_str() + 9);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (name == "content-length") {
      body_length = std::stoul(value);
    }
    result.headers[name] = value;
  }
  while (buffer_.size() < header_end + 4 + body_length) {
    if (!fill()) {
      result.status = 0;
      return result;
    }
  }
  result.body = buffer_.substr(header_end + 4, body_length);
  buffer_.erase(0, header_end + 4 + body_length);
  return result;
}

bool RawConnection::WaitClosed(int timeout_ms) {
  if (fd_ < 0) {
    return true;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    char chunk[4096];
    ssize_t n = recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return true;
    }
  }
}

HttpResult RawConnection::Request(std::string_view method, std::string_view target,
                                  std::string_view body,
                                  const std::map<std::string, std::string>& headers) {
  std::string req =
      std::string(method) + " " + std::string(target) +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
  }
  req += "\r\n";
  req += body;
  if (!Send(req)) {
    return {};
  }
  return ReadResponse();
}

std::optional<double> ScrapeMetric(uint16_t http_port, std::string_view series) {
  HttpResult r = Http(http_port, "GET", "/metrics");
  if (r.status != 200) {
    return std::nullopt;
  }
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      try {
        return std::stod(line.substr(series.size() + 1));
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

int64_t ProcessRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoll(line.substr(6));
    }
  }
  return -1;
}

int ProcessFdCount(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) {
    return -1;
  }
  int n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) {
      return -1;
    }
    ++n;
  }
  return n;
}

std::optional<int64_t> ReceiveQueueBytes(std::string_view protocol, uint16_t local_port,
                                         uint16_t remote_port) {
  std::ifstream table("/proc/net/" + std::string(protocol));
  std::string line;
  std::getline(table, line);  // the header
  std::optional<int64_t> queued;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    auto port_of = [](const std::string& address) {
      size_t colon = address.find(':');
      return colon == std::string::npos ? -1L : std::stol(address.substr(colon + 1), nullptr, 16);
    };
    if (port_of(local) != local_port || (remote_port != 0 && port_of(remote) != remote_port)) {
      continue;
    }
    size_t colon = queues.find(':');
    if (colon != std::string::npos) {  // every socket on the port (receivers may share it)
      queued = queued.value_or(0) + std::stoll(queues.substr(colon + 1), nullptr, 16);
    }
  }
  return queued;
}

}  // namespace tally::testing
