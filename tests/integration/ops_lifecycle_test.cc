// Lifecycle through the real binary: what every signal a user can send does (issue 23.4,
// 13.11), a second instance on the same addresses (13.8), and port 0 (23.9).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "tests/support/ops_process.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

// The total on disk, read by a fresh tallyd on `data_dir` (0 when none).
int64_t TotalAfterRestart(const std::string& data_dir) {
  TallydProcess check(data_dir);
  std::string body = Http(check.http_port(), "GET", "/admin/apikey-stats/summary").body;
  size_t at = body.find("\"total_requests\":");
  EXPECT_EQ(check.Stop(), 0);
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + 17));
}

// Every signal whose default action ends the process either stops tallyd in order (exit 0,
// final flush) or leaves it running; nothing answered 202 is lost to it.
TEST(OpsLifecycle, NoSignalAUserCanSendLosesAcceptedCounts) {
  TempDir dir;
  struct Case {
    int sig;
    bool stops;
  };
  std::vector<Case> cases = {
      {SIGTERM, true},
      {SIGINT, true},
      {SIGHUP, true},
      {SIGQUIT, true},
      {SIGXCPU, true},
      {SIGPWR, true},
      {SIGUSR1, false},
      {SIGUSR2, false},
      {SIGALRM, false},
      {SIGVTALRM, false},
      {SIGPROF, false},
      {SIGIO, false},
      {SIGSTKFLT, false},
      {SIGPIPE, false},
      {SIGXFSZ, false},
      {SIGRTMIN, false},
      {SIGRTMAX, false},
      // glibc's reserved 32 (SIGCANCEL) and 33 (SIGSETXID), below SIGRTMIN.
      {32, false},
      {33, false},
  };
  int64_t sent = 0;
  for (const Case& c : cases) {
    std::string name = strsignal(c.sig) + std::string(" (") + std::to_string(c.sig) + ")";
    int code = -1;
    {
      TallydProcess tallyd(dir.Sub("data"));
      ASSERT_EQ(Http(tallyd.http_port(), "POST", "/v1/ingest", "apikey.1.success:3|c").status, 202)
          << name;
      sent += 3;
      if (c.stops) {
        code = tallyd.Stop(c.sig);
      } else {
        // Still running after it: the SIGTERM that follows is what stops it. A signal that
        // killed it would be its exit status (128 + the signal).
        ASSERT_EQ(kill(tallyd.pid(), c.sig), 0);
        code = tallyd.Stop(SIGTERM);
      }
      EXPECT_EQ(code, 0) << name << "\n" << tallyd.Log();
      if (c.stops) {
        EXPECT_NE(tallyd.Log().find("received SIG"), std::string::npos) << tallyd.Log();
      }
    }
    if (code != 0) {
      sent -= 3;  // lost with the process; the next rounds count from what is on disk
    }
  }
  EXPECT_EQ(TotalAfterRestart(dir.Sub("data")), sent);
  EXPECT_EQ(sent, 3 * static_cast<int64_t>(cases.size()));
}

// SIGUSR1 asks for a flush now: the counts are on disk without waiting for the interval.
TEST(OpsLifecycle, SigUsr1FlushesNow) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "3600000"});
  ASSERT_EQ(Http(tallyd.http_port(), "POST", "/v1/ingest", "apikey.1.success:5|c").status, 202);
  ASSERT_EQ(kill(tallyd.pid(), SIGUSR1), 0);
  auto flushes = [&] {
    return ScrapeMetric(tallyd.http_port(), "tallyd_flushes_total{result=\"ok\"}").value_or(0);
  };
  EXPECT_TRUE(WaitUntil([&] { return flushes() >= 1; }, 10000)) << tallyd.Log();
  EXPECT_NE(tallyd.Log().find("SIGUSR1: flushing now"), std::string::npos) << tallyd.Log();
  EXPECT_EQ(tallyd.Stop(), 0);
}

// Runs tallyd with `args` and a log in `dir`; its exit code, or -1 if still running after
// 10 s (then it is killed). *log receives what it wrote.
int RunBounded(const TempDir& dir, const std::string& name, std::vector<std::string> args,
               std::string* log) {
  TallydLaunch launch;
  launch.args = std::move(args);
  TallydChild tallyd(launch, dir.Sub(name + ".log"));
  int code = tallyd.WaitExit(10000);
  *log = tallyd.Log();
  return code;
}

// A second tallyd (another data directory) on the addresses of a running one fails to start:
// exit 1, "address in use"; the first one keeps its traffic and its Unix socket.
TEST(OpsLifecycle, SecondInstanceOnTheSameAddressesFailsToStart) {
  TempDir dir;
  std::string sock = dir.Sub("tallyd.sock");
  TallydProcess first(dir.Sub("first"), {"--unix-socket", sock});
  std::string udp = "127.0.0.1:" + std::to_string(first.udp_port());
  std::string http = "127.0.0.1:" + std::to_string(first.http_port());
  for (auto [name, args] :
       {std::pair{"udp", std::vector<std::string>{"--udp-listen", udp, "--http-listen", "off"}},
        std::pair{"http", std::vector<std::string>{"--udp-listen", "off", "--http-listen", http}},
        std::pair{"unix", std::vector<std::string>{"--udp-listen", "off", "--http-listen", "off",
                                                   "--unix-socket", sock}}}) {
    args.insert(args.end(), {"--data-dir", dir.Sub(std::string("second-") + name)});
    std::string log;
    EXPECT_EQ(RunBounded(dir, name, args, &log), 1) << name << "\n" << log;
    EXPECT_NE(log.find("address in use"), std::string::npos) << name << "\n" << log;
  }
  // The first instance still has its Unix socket and counts through it.
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  std::string line = "apikey.2.success:4|c";
  EXPECT_EQ(
      sendto(fd, line.data(), line.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
      static_cast<ssize_t>(line.size()))
      << std::strerror(errno);
  close(fd);
  EXPECT_NE(WaitForTotal(first.http_port(), 4).find("\"total_requests\":4"), std::string::npos);
  // Over UDP too: every datagram reaches the first instance.
  for (int i = 0; i < 20; ++i) {
    SendUdp(first.udp_port(), "apikey.3.success:1|c");
  }
  EXPECT_NE(WaitForTotal(first.http_port(), 24).find("\"total_requests\":24"), std::string::npos);
  first.Kill();  // leaves a stale socket file behind
  // A stale socket (nobody receiving) is replaced.
  TallydProcess third(dir.Sub("third"), {"--unix-socket", sock});
  EXPECT_EQ(third.Stop(), 0) << third.Log();
}

// The port of the `kind` ("udp", "http") listener as logged, or 0.
uint16_t LoggedPort(const std::string& log, const std::string& kind) {
  std::string marker = "[" + kind + "] listening on 127.0.0.1:";
  size_t at = log.find(marker);
  return at == std::string::npos ? 0
                                 : static_cast<uint16_t>(std::stoi(log.substr(at + marker.size())));
}

// Sockets in LISTEN (TCP) or bound (UDP) state on `port`, from /proc/net/{tcp,udp}.
int SocketsOnPort(const char* table, uint16_t port) {
  std::ifstream in(std::string("/proc/net/") + table);
  std::string line;
  std::getline(in, line);
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local;
    fields >> slot >> local;
    if (local.size() > 5 && local.substr(local.size() - 5) == want) {
      ++n;
    }
  }
  return n;
}

// With port 0 every I/O thread shares the one port the kernel picked, and the log names it.
TEST(OpsLifecycle, PortZeroIsOnePortSharedByEveryThreadAndLogged) {
  TempDir dir;
  TallydLaunch launch;
  launch.args = {"--data-dir",    dir.Sub("data"), "--udp-listen", "127.0.0.1:0",
                 "--http-listen", "127.0.0.1:0",   "--io-threads", "3"};
  TallydChild tallyd(launch, dir.Sub("log"));
  ASSERT_TRUE(tallyd.WaitForLog("] ready")) << tallyd.Log();
  std::string log = tallyd.Log();
  uint16_t udp = LoggedPort(log, "udp");
  uint16_t http = LoggedPort(log, "http");
  ASSERT_NE(udp, 0) << log;
  ASSERT_NE(http, 0) << log;
  EXPECT_EQ(SocketsOnPort("udp", udp), 3) << log;
  EXPECT_EQ(SocketsOnPort("tcp", http), 3) << log;
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200);
  for (int i = 0; i < 30; ++i) {
    SendUdp(udp, "apikey.5.success:1|c");
  }
  EXPECT_NE(WaitForTotal(http, 30).find("\"total_requests\":30"), std::string::npos);
  EXPECT_EQ(tallyd.Stop(), 0);
}

// A counter table that cannot be allocated (a large --max-keys under a memory limit) is one
// "cannot start" line and exit 1, never an abort.
TEST(OpsLifecycle, TableThatCannotBeAllocatedIsExitOneNotAnAbort) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
#else
  TempDir dir;
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = rlim_t{8} << 30;  // 8 GiB: tallyd runs, 1e9 keys (32.5 GB) do not fit
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < limited.rlim_cur) {
    GTEST_SKIP() << "the hard address-space limit is already below 8 GiB";
  }
  ASSERT_EQ(setrlimit(RLIMIT_AS, &limited), 0);
  std::string output;
  int code = RunTallyd({"--data-dir", dir.Sub("data"), "--udp-listen", "off", "--http-listen",
                        "127.0.0.1:" + std::to_string(FreePort()), "--max-keys", "1000000000"},
                       &output);
  setrlimit(RLIMIT_AS, &saved);
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("cannot start: cannot allocate the counter table for --max-keys"),
            std::string::npos)
      << output;
#endif
}

// Under a low open-files limit (soft = hard = 512) idle connections cannot take the
// descriptors RocksDB and the listeners need: the connection cap is lowered to
// 512 - (256 + 4 per I/O thread), logged, the connections past it get 503, and a flush and
// /readyz still work while the rest stay open.
TEST(OpsLifecycle, IdleConnectionsCannotTakeTheDescriptorsTheStoreNeeds) {
  TempDir dir;
  const uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = {"--data-dir",    dir.Sub("data"),
                 "--udp-listen",  "off",
                 "--http-listen", "127.0.0.1:" + std::to_string(http),
                 "--io-threads",  "2",
                 "--admin-token", "adm-token"};
  launch.nofile_limit = 512;
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  const int cap = 512 - 256 - 4 * 2;
  EXPECT_NE(tallyd.Log().find("--max-connections 10000 lowered to " + std::to_string(cap)),
            std::string::npos)
      << tallyd.Log();

  // 600 idle connections, more than the limit: the ones past the cap are answered 503 and
  // closed, so they turn readable; the others stay silent.
  const int total = 600;
  std::vector<int> fds;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(http);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < total; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << i << ": " << std::strerror(errno);
    fds.push_back(fd);
  }
  const int slack = 2;  // the cap is approximate by at most the number of I/O threads
  std::vector<pollfd> polled;
  int refused = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (refused < total - cap && std::chrono::steady_clock::now() < deadline) {
    polled.clear();
    for (int fd : fds) {
      polled.push_back({fd, POLLIN, 0});
    }
    ASSERT_GE(poll(polled.data(), polled.size(), 100), 0);
    refused = static_cast<int>(std::count_if(polled.begin(), polled.end(),
                                             [](const pollfd& p) { return p.revents != 0; }));
  }
  EXPECT_GE(refused, total - cap - slack) << tallyd.Log();
  EXPECT_LE(refused, total - cap) << tallyd.Log();
  std::vector<int> idle;
  for (const pollfd& p : polled) {
    if (p.revents == 0) {
      idle.push_back(p.fd);
      continue;
    }
    char answer[64] = {};
    ASSERT_GT(read(p.fd, answer, sizeof answer - 1), 0);
    EXPECT_NE(std::string(answer).find(" 503 "), std::string::npos) << answer;
    close(p.fd);
  }
  // Free a few slots; the rest stay open while the store is flushed.
  for (int i = 0; i < 5 && !idle.empty(); ++i) {
    close(idle.back());
    idle.pop_back();
  }
  const std::map<std::string, std::string> admin = {{"Authorization", "Bearer adm-token"}};
  // 503 until tallyd sees the closes.
  EXPECT_TRUE(WaitUntil([&] { return Http(http, "GET", "/readyz").status == 200; }, 10000))
      << tallyd.Log();
  EXPECT_EQ(Http(http, "POST", "/v1/ingest", "apikey.1.success:3|c").status, 202);
  HttpResult flushed = Http(http, "POST", "/admin/flush", {}, admin);
  EXPECT_EQ(flushed.status, 200) << flushed.body << tallyd.Log();
  EXPECT_NE(flushed.body.find("\"keys\":1"), std::string::npos) << flushed.body;
  for (int fd : idle) {
    close(fd);
  }
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  EXPECT_EQ(tallyd.Log().find("Too many open files"), std::string::npos) << tallyd.Log();
}

// Threads carry names (docs/operations.md, "Threads"), so `top -H` and a profile say which
// one is busy; every thread but the I/O threads runs at --background-nice.
std::map<std::string, int> ThreadNices(pid_t pid) {
  std::map<std::string, int> nices;  // name -> nice (the last thread of a name)
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));  // from field 3, the state
    std::string field;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
    }
    nices[name] = std::stoi(field);  // field 19: nice
  }
  return nices;
}

TEST(OpsLifecycle, TheThreadsAreNamedAndTheBackgroundOnesRunAtALowerPriority) {
  TempDir dir;
  {
    TallydProcess tallyd(dir.Sub("data"));  // with --io-threads 2, --background-nice 10
    std::map<std::string, int> nices = ThreadNices(tallyd.pid());
    for (const char* name :
         {"tally-io-0", "tally-io-1", "tally-flush", "tally-api", "tally-events"}) {
      EXPECT_TRUE(nices.contains(name)) << name;
    }
    const int base = nices["tally-io-0"];  // the process's: this test's own, inherited
    const int background = std::min(19, base + 10);
    EXPECT_EQ(nices["tally-io-1"], base);
    EXPECT_EQ(nices["tally-flush"], background);
    EXPECT_EQ(nices["tally-api"], background);
    EXPECT_EQ(nices["tally-events"], background);
  }
  TallydProcess tallyd(dir.Sub("data"), {"--background-nice", "0"});
  std::map<std::string, int> nices = ThreadNices(tallyd.pid());
  EXPECT_EQ(nices["tally-flush"], nices["tally-io-0"]);
  EXPECT_EQ(nices["tally-api"], nices["tally-io-0"]);
}

}  // namespace
}  // namespace tally::testing
