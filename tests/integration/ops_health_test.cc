// /healthz and /readyz against the real binary. The readiness rules themselves (flush
// failing, no flush for 3 intervals, a stalled event loop) are unit-tested in
// tests/unit/daemon/ops_endpoints_test.cc, where the conditions can be produced.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include "tests/support/ops_process.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

TEST(OpsHealth, HealthyAndReadyWhileServing) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "100"});
  HttpResult h = Http(tallyd.http_port(), "GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, R"({"status":"ok"})");
  HttpResult r = Http(tallyd.http_port(), "GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"status":"ready"})");
  // Still ready well past 3 intervals: six more flushes succeed.
  auto flushes = [&] {
    return ScrapeMetric(tallyd.http_port(), R"(tallyd_flushes_total{result="ok"})").value_or(0);
  };
  const double flushes_before = flushes();
  ASSERT_TRUE(WaitUntil([&] { return flushes() >= flushes_before + 6; }, 10000, 20));
  EXPECT_EQ(Http(tallyd.http_port(), "GET", "/readyz").status, 200);
  EXPECT_EQ(Http(tallyd.http_port(), "POST", "/readyz").status, 405);
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST(OpsHealth, NotReadyWhileStopping) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  // A connection that has sent half a request when the stop begins gets to finish it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(tallyd.http_port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string head = "GET /readyz HTTP/1.1\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  sockaddr_in local{};
  socklen_t local_len = sizeof local;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len), 0);
  // tallyd has read the half request (nothing left in its receive queue)...
  ASSERT_TRUE(WaitUntil(
      [&] { return ReceiveQueueBytes("tcp", tallyd.http_port(), ntohs(local.sin_port)) == 0; },
      10000));
  kill(tallyd.pid(), SIGTERM);
  // ...and the stop has begun: the acceptor is closed, new connections are refused.
  ASSERT_TRUE(WaitUntil(
      [&] {
        int probe = ConnectLoopback(SOCK_STREAM, tallyd.http_port());
        if (probe >= 0) {
          close(probe);
        }
        return probe < 0;
      },
      10000));
  std::string rest = "Host: x\r\n\r\n";
  send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string answer;
  char buf[1024];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_NE(answer.find(" 503 "), std::string::npos) << answer;
  EXPECT_NE(answer.find(R"({"error":"stopping"})"), std::string::npos) << answer;
  EXPECT_EQ(tallyd.Stop(), 0);
}

}  // namespace
}  // namespace tally::testing
