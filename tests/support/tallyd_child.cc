// TallydChild, the one launcher of the real binary for the tests, and RunTallyd on it.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/ops_process.h"  // ListenSockets
#include "tests/support/tallyd_process.h"
#include "tests/support/wait_until.h"

extern char** environ;

namespace tally::testing {
namespace {

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return 128 + WTERMSIG(status);
}

}  // namespace

std::string TallydChild::ReadLog(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TallydChild::TallydChild(TallydLaunch launch, std::string log_path)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> args;
  if (launch.sockets != nullptr || launch.nofile_limit != 0) {
    // $0 is tallyd, "$@" its arguments; LISTEN_PID must be the pid that tallyd will have,
    // which exec keeps. The shell's `ulimit -n` sets the soft and the hard limit.
    std::string script = launch.sockets != nullptr ? "export LISTEN_PID=$$; " : "";
    if (launch.nofile_limit != 0) {
      script += "ulimit -n " + std::to_string(launch.nofile_limit) + " || exit 99; ";
    }
    args = {"/bin/sh", "-c", script + "exec \"$0\" \"$@\"", TALLYD_BINARY};
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
  // glibc's posix_spawn leaves its reserved signals 32 (SIGCANCEL) and 33 (SIGSETXID) ignored
  // in the child, and SIG_IGN survives exec; a shell or a service manager starts tallyd
  // with their default action (terminate). Reset them, as they would be. sigaddset refuses
  // them, so their bits are set by hand (bit N-1 of the first word for signal N).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t reserved;
  sigemptyset(&reserved);
  reserved.__val[0] |= (1UL << (32 - 1)) | (1UL << (33 - 1));
  posix_spawnattr_setsigdefault(&attr, &reserved);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  int rc = posix_spawn(&pid_, args[0].c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("posix_spawn failed");
  }
  if (launch.wait_http_port == 0) {
    return;
  }
  const bool healthy = WaitUntil(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          throw std::runtime_error("tallyd exited with " + std::to_string(ExitCodeOf(status)) +
                                   "; log:\n" + Log());
        }
        return Http(launch.wait_http_port, "GET", "/healthz").status == 200;
      },
      20000, 20);
  if (healthy) {
    return;
  }
  Kill();
  throw std::runtime_error("tallyd never answered /healthz; log:\n" + Log());
}

TallydChild::~TallydChild() { Kill(); }

int TallydChild::Stop(int sig) {
  if (pid_ <= 0) {
    return -1;
  }
  kill(pid_, sig);
  return Wait();
}

int TallydChild::WaitExit(int timeout_ms) {
  int code = -1;
  WaitUntil(
      [&] {
        int status = 0;
        if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          code = ExitCodeOf(status);
        }
        return pid_ <= 0;
      },
      timeout_ms);
  return code;
}

int TallydChild::Wait() {
  if (pid_ <= 0) {
    return -1;
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return ExitCodeOf(status);
}

void TallydChild::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

std::string TallydChild::Log() const { return ReadLog(log_path_); }

bool TallydChild::WaitForLog(std::string_view text, int timeout_ms) const {
  return WaitUntil([&] { return Log().find(text) != std::string::npos; }, timeout_ms, 20);
}

int RunTallyd(const std::vector<std::string>& args, std::string* output) {
  char tmpl[] = "/tmp/tallyd-run-XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  TallydLaunch launch;
  launch.args = args;
  TallydChild child(std::move(launch), tmpl);
  int code = child.Wait();
  *output = child.Log();
  unlink(tmpl);
  return code;
}

}  // namespace tally::testing
