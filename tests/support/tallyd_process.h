// TallydChild: the launcher of the real tallyd binary for every test. TallydProcess: tallyd
// on free loopback ports, started through it. And small blocking UDP and HTTP clients to
// talk to it.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/wait_until.h"  // WaitUntil, for every test of the binary

namespace tally::testing {

// A loopback port free for both TCP and UDP at the time of the call.
uint16_t FreePort();

struct ListenSockets;  // tests/support/ops_process.h

// How to start tallyd (TallydChild).
struct TallydLaunch {
  std::vector<std::string> args;           // after the binary path
  std::map<std::string, std::string> env;  // added to the test's environment
  const ListenSockets* sockets = nullptr;  // passed as fds 3 (UDP) and 4 (HTTP)
  std::string fd_names = "udp:http";       // LISTEN_FDNAMES when sockets are passed
  uint16_t wait_http_port = 0;             // wait for /healthz on it (0: do not wait)
  uint64_t nofile_limit = 0;               // soft = hard RLIMIT_NOFILE (0: inherited)
};

// The one launcher of the real binary for every test: tallyd started with any arguments,
// environment and inherited descriptors, its stdout and stderr in a log file. The test's
// environment is passed on without the service manager's variables (LISTEN_*, NOTIFY_SOCKET,
// WATCHDOG_*, STATE_DIRECTORY), which only `env` may set. With `sockets`, it runs as systemd
// would start it: fds 3 and 4 are the sockets, LISTEN_FDS=2, LISTEN_FDNAMES, and LISTEN_PID set to
// its own pid by a `sh -c 'export LISTEN_PID=$$; exec ...'` wrapper.
class TallydChild {
 public:
  // Starts tallyd and, when wait_http_port is set, waits for /healthz (throws if tallyd exits
  // first or never answers). `log_path` receives its stdout and stderr.
  TallydChild(TallydLaunch launch, std::string log_path);
  ~TallydChild();
  TallydChild(const TallydChild&) = delete;
  TallydChild& operator=(const TallydChild&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `sig` and waits; the exit code (128+signal if killed by it).
  int Stop(int sig = 15);
  // Waits up to `timeout_ms` for the process to exit by itself; its exit code, or -1.
  int WaitExit(int timeout_ms);
  // Waits for the process to exit by itself, however long; its exit code.
  int Wait();
  void Kill();
  std::string Log() const;
  // Polls the log until it contains `text` or `timeout_ms` passes.
  bool WaitForLog(std::string_view text, int timeout_ms = 10000) const;
  // The whole of a log file ("" when it cannot be read).
  static std::string ReadLog(const std::string& path);

 private:
  std::string log_path_;
  pid_t pid_ = -1;
};

class TallydProcess {
 public:
  // Starts tallyd with --data-dir, --udp-listen and --http-listen on free ports, plus
  // `extra_args`, and waits until /healthz answers. Throws if it exits or never answers.
  explicit TallydProcess(std::string data_dir, std::vector<std::string> extra_args = {},
                         std::map<std::string, std::string> env = {});
  ~TallydProcess();
  TallydProcess(const TallydProcess&) = delete;
  TallydProcess& operator=(const TallydProcess&) = delete;

  uint16_t udp_port() const { return udp_port_; }
  uint16_t http_port() const { return http_port_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  // Sends `sig` and waits for the exit; returns the exit code (128+signal if killed).
  int Stop(int sig = 15);
  // SIGKILL and reap.
  void Kill();
  // Everything tallyd wrote to stderr so far.
  std::string Log() const;

 private:
  std::string data_dir_;
  std::string log_path_;
  uint16_t udp_port_ = 0;
  uint16_t http_port_ = 0;
  std::optional<TallydChild> child_;
};

// Runs tallyd with `args` to completion; returns the exit code, stdout+stderr in *output.
int RunTallyd(const std::vector<std::string>& args, std::string* output);

struct HttpResult {
  int status = 0;  // 0: no answer (connection failed)
  std::string body;
  std::map<std::string, std::string> headers;
};

HttpResult Http(uint16_t port, std::string_view method, std::string_view target,
                std::string_view body = {}, const std::map<std::string, std::string>& headers = {});

// Sends one datagram to 127.0.0.1:port.
void SendUdp(uint16_t port, std::string_view payload);

// Polls GET /admin/apikey-stats/summary until total_requests reaches `total` or `timeout_ms`
// passes; returns the last body.
std::string WaitForTotal(uint16_t http_port, int64_t total, int timeout_ms = 10000,
                         const std::map<std::string, std::string>& headers = {});

// A raw TCP connection to 127.0.0.1:port with send and receive timeouts, for tests that need
// keep-alive, pipelining or hostile bytes. Not thread-safe; one per thread.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, int timeout_ms = 5000);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Writes all of `bytes`; false on error or timeout.
  bool Send(std::string_view bytes);
  // Reads one response (status line, headers, Content-Length body); status 0 if the
  // connection closed or timed out first.
  HttpResult ReadResponse();
  // True when the peer closes the connection (EOF or reset) within `timeout_ms`; bytes that
  // arrive meanwhile are discarded.
  bool WaitClosed(int timeout_ms);
  // Sends one request with a Content-Length and reads its answer.
  HttpResult Request(std::string_view method, std::string_view target, std::string_view body = {},
                     const std::map<std::string, std::string>& headers = {});

 private:
  int fd_ = -1;
  std::string buffer_;  // bytes read past the last response
};

// 127.0.0.1:`port`, for bind, connect and sendto.
sockaddr_in LoopbackAddress(uint16_t port);
// A socket of `type` (SOCK_STREAM, SOCK_DGRAM) connected to 127.0.0.1:`port`, or -1.
int ConnectLoopback(int type, uint16_t port);

// The value of one series on /metrics, e.g.
// `tallyd_lines_total{transport="udp",result="malformed"}` (the exact text before the value), or
// nullopt when /metrics does not answer or lacks it.
std::optional<double> ScrapeMetric(uint16_t http_port, std::string_view series);

// Bytes queued in the kernel for the loopback sockets bound to `local_port` ("udp" or "tcp"; for
// tcp also connected to `remote_port`) that its owner has not read yet, from /proc/net; nullopt
// when no such socket exists. 0 proves tallyd has read everything sent to it so far (a loopback
// send queues synchronously).
std::optional<int64_t> ReceiveQueueBytes(std::string_view protocol, uint16_t local_port,
                                         uint16_t remote_port = 0);

// From /proc/<pid>: resident memory in KiB (VmRSS) and the number of open descriptors;
// -1 when the process is gone.
int64_t ProcessRssKb(pid_t pid);
int ProcessFdCount(pid_t pid);

}  // namespace tally::testing
