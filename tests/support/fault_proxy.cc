#include "tests/support/fault_proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "tests/support/tallyd_process.h"

namespace tally::testing {
namespace {

// Reads one HTTP message (headers, then a Content-Length body) from `fd`; false on EOF,
// error or 10 s without progress.
bool ReadMessage(int fd, std::string* out) {
  out->clear();
  size_t need = std::string::npos;
  char buf[65536];
  while (need == std::string::npos || out->size() < need) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) {
      return false;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
    if (need == std::string::npos) {
      size_t end = out->find("\r\n\r\n");
      if (end == std::string::npos) {
        continue;
      }
      size_t length = 0;
      std::string head = out->substr(0, end);
      for (char& c : head) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (size_t cl = head.find("content-length:"); cl != std::string::npos) {
        length = std::stoul(head.substr(cl + 15));
      }
      need = end + 4 + length;
    }
  }
  return true;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void Reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

}  // namespace

FaultProxy::FaultProxy() {
  port_ = FreePort();
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = LoopbackAddress(port_);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0) {
    throw std::runtime_error(std::string("fault proxy: ") + std::strerror(errno));
  }
  acceptor_ = std::thread([this] { Accept(); });
}

FaultProxy::~FaultProxy() {
  stop_.store(true);
  shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) {
    t.join();
  }
}

void FaultProxy::SetWeights(std::vector<unsigned> weights) {
  std::lock_guard lock(mu_);
  weights.resize(kFaults, 0);
  weights_ = std::move(weights);
}

void FaultProxy::ForceNext(Fault fault, unsigned n) {
  std::lock_guard lock(mu_);
  forced_ = fault;
  forced_left_ = n;
}

FaultProxy::Fault FaultProxy::Draw() {
  std::lock_guard lock(mu_);
  if (forced_left_ > 0) {
    --forced_left_;
    return forced_;
  }
  std::discrete_distribution<int> pick(weights_.begin(), weights_.end());
  return static_cast<Fault>(pick(rng_));
}

void FaultProxy::Accept() {
  while (!stop_.load()) {
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stop_.load()) {
        return;
      }
      continue;
    }
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, client] { Serve(client); });
  }
}

void FaultProxy::Serve(int client) {
  std::string request;
  if (!ReadMessage(client, &request)) {
    close(client);
    return;
  }
  const Fault fault = Draw();
  counts_[fault].fetch_add(1);
  if (fault == kDrop) {
    close(client);
    return;
  }
  if (fault == kRefuse) {
    std::string body = R"({"error":"refused by the fault proxy"})";
    WriteAll(client, "HTTP/1.1 " + std::to_string(refuse_status_.load()) +
                         " Refused\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    close(client);
    return;
  }
  int upstream = ConnectLoopback(SOCK_STREAM, upstream_.load());
  std::string answer;
  if (upstream_.load() == 0 || upstream < 0 || !WriteAll(upstream, request) ||
      !ReadMessage(upstream, &answer)) {
    if (upstream >= 0) {
      close(upstream);
    }
    close(client);
    return;
  }
  close(upstream);
  if (fault == kResetAfterSend) {
    Reset(client);
    return;
  }
  if (fault == kDelay) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_.load());
    while (!stop_.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  WriteAll(client, answer);
  close(client);
}

}  // namespace tally::testing
