#include "tests/support/ops_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

extern char** environ;

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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return 128 + WTERMSIG(status);
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

OpsTallyd::OpsTallyd(OpsLaunch launch, std::string log_path) : log_path_(std::move(log_path)) {
  std::vector<std::string> args;
  if (launch.sockets != nullptr) {
    // $0 is tallyd, "$@" its arguments; LISTEN_PID must be the pid that tallyd will have,
    // which exec keeps.
    args = {"/bin/sh", "-c", "export LISTEN_PID=$$; exec \"$0\" \"$@\"", TALLYD_BINARY};
  } else {
    args = {TALLYD_BINARY};
  }
  args.insert(args.end(), launch.args.begin(), launch.args.end());
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                           "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY"}) {
    env.erase(name);
  }
  if (launch.sockets != nullptr) {
    env["LISTEN_FDS"] = "2";
    env["LISTEN_FDNAMES"] = launch.fd_names;
  }
  for (const auto& [k, v] : launch.env) {
    env[k] = v;
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) {
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (launch.sockets != nullptr) {
    // The sources are at 100 and above, so neither dup2 overwrites the other's source; dup2
    // clears close-on-exec on the copy.
    posix_spawn_file_actions_adddup2(&actions, launch.sockets->udp_fd, 3);
    posix_spawn_file_actions_adddup2(&actions, launch.sockets->http_fd, 4);
  }
  int rc = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("posix_spawn failed");
  }
  if (launch.wait_http_port == 0) {
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("tallyd exited with " + std::to_string(ExitCodeOf(status)) +
                               "; log:\n" + Log());
    }
    if (Http(launch.wait_http_port, "GET", "/healthz").status == 200) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  throw std::runtime_error("tallyd never answered /healthz; log:\n" + Log());
}

OpsTallyd::~OpsTallyd() { Kill(); }

int OpsTallyd::Stop(int sig) {
  if (pid_ <= 0) {
    return -1;
  }
  kill(pid_, sig);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return ExitCodeOf(status);
}

int OpsTallyd::WaitExit(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return ExitCodeOf(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

void OpsTallyd::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

std::string OpsTallyd::Log() const { return ReadFile(log_path_); }

bool OpsTallyd::WaitForLog(std::string_view text, int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Log().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace tally::testing
