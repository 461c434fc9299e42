// Socket activation (tallyd.socket): the test plays systemd. It binds the UDP and HTTP
// sockets, keeps them open, and starts tallyd with them as fds 3 and 4 (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES). Reliability fault test 6: datagrams and a connection sent
// while tallyd is stopped queue in the kernel and are counted, exactly once, after it
// restarts on the same inherited sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <thread>

#include "tests/support/ops_process.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

int64_t Total(const std::string& summary_body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(summary_body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("total_requests")) {
    return -1;
  }
  return v.at("total_requests").to_number<int64_t>();
}

TallydLaunch Activated(const ListenSockets& sockets, const TempDir& dir,
                       std::string names = "udp:http") {
  TallydLaunch launch;
  launch.args = {"--data-dir", dir.Sub("data"), "--io-threads", "2",
                 // Deliberately unusable: the inherited sockets replace these.
                 "--udp-listen", "127.0.0.1:1", "--http-listen", "127.0.0.1:1"};
  launch.sockets = &sockets;
  launch.fd_names = std::move(names);
  launch.wait_http_port = sockets.http_port;
  return launch;
}

// Connects to the HTTP port and sends a whole request without reading the answer; the
// connection waits in the listen backlog while nobody accepts.
int SendRequestNoWait(uint16_t port, const std::string& request) {
  int fd = ConnectLoopback(SOCK_STREAM, port);
  if (fd < 0) {
    return -1;
  }
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string ReadAll(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos && out.find('}') != std::string::npos) {
      break;
    }
  }
  return out;
}

TEST(OpsSocketActivation, DatagramsSentWhileStoppedAreCountedAfterRestart) {
  TempDir dir;
  ListenSockets sockets;
  int64_t expected = 0;
  {
    TallydChild first(Activated(sockets, dir), dir.Sub("log1"));
    EXPECT_TRUE(first.WaitForLog("inherited UDP socket")) << first.Log();
    for (int i = 1; i <= 50; ++i) {
      SendUdp(sockets.udp_port, "apikey." + std::to_string(i) + ".success:2|c");
    }
    expected += 100;
    EXPECT_EQ(Total(WaitForTotal(sockets.http_port, expected)), expected) << first.Log();
    EXPECT_EQ(first.Stop(), 0) << first.Log();
  }

  // tallyd is down; the sockets stay open in this process, as in systemd.
  for (int i = 1; i <= 200; ++i) {
    SendUdp(sockets.udp_port,
            "apikey." + std::to_string(i % 20 + 1) + ".failure:1|c\napikey.7.success:1|c");
  }
  expected += 400;
  const std::string body = "apikey.99.success:5|c";
  int pending = SendRequestNoWait(
      sockets.http_port, "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  ASSERT_GE(pending, 0);
  expected += 5;

  TallydChild second(Activated(sockets, dir), dir.Sub("log2"));
  std::string answer = ReadAll(pending);
  close(pending);
  EXPECT_NE(answer.find(" 202 "), std::string::npos) << answer;
  EXPECT_EQ(Total(WaitForTotal(sockets.http_port, expected)), expected) << second.Log();
  // Exactly: nothing lost, nothing counted twice. Only the 200 queued datagrams reached the
  // second instance.
  std::optional<double> datagrams =
      ScrapeMetric(sockets.http_port, "tallyd_datagrams_total{transport=\"udp\"}");
  ASSERT_TRUE(datagrams.has_value());
  EXPECT_EQ(*datagrams, 200);
  // Nothing more arrives later: a flush commits whatever was pending.
  ASSERT_EQ(Http(sockets.http_port, "POST", "/admin/flush").status, 200);
  EXPECT_EQ(Total(Http(sockets.http_port, "GET", "/admin/apikey-stats/summary").body), expected);
  EXPECT_EQ(second.Stop(), 0) << second.Log();
}

TEST(OpsSocketActivation, SocketsAreSortedByTypeWhenNamedBySystemd) {
  // tallyd.socket names every socket "tallyd"; the UDP one is fd 3 here, HTTP fd 4.
  TempDir dir;
  ListenSockets sockets;
  TallydChild tallyd(Activated(sockets, dir, "tallyd:tallyd"), dir.Sub("log"));
  SendUdp(sockets.udp_port, "apikey.3.success:4|c");
  EXPECT_EQ(Total(WaitForTotal(sockets.http_port, 4)), 4) << tallyd.Log();
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST(OpsSocketActivation, NameContradictingTheSocketTypeIsRefused) {
  TempDir dir;
  ListenSockets sockets;
  TallydLaunch launch = Activated(sockets, dir, "http:udp");
  launch.wait_http_port = 0;
  TallydChild tallyd(launch, dir.Sub("log"));
  EXPECT_EQ(tallyd.WaitExit(20000), 1) << tallyd.Log();
  EXPECT_NE(tallyd.Log().find("inherited fd 3 (http) is named http but is a udp socket"),
            std::string::npos)
      << tallyd.Log();
}

TEST(OpsSocketActivation, FdsMeantForAnotherProcessAreIgnored) {
  // LISTEN_PID names another process: tallyd binds its own sockets from the options.
  TempDir dir;
  uint16_t udp = FreePort();
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = {"--data-dir",    dir.Sub("data"),
                 "--udp-listen",  "127.0.0.1:" + std::to_string(udp),
                 "--http-listen", "127.0.0.1:" + std::to_string(http)};
  launch.env = {{"LISTEN_PID", "1"}, {"LISTEN_FDS", "2"}, {"LISTEN_FDNAMES", "udp:http"}};
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  SendUdp(udp, "apikey.8.success:1|c");
  EXPECT_EQ(Total(WaitForTotal(http, 1)), 1) << tallyd.Log();
  EXPECT_EQ(tallyd.Log().find("inherited"), std::string::npos) << tallyd.Log();
  EXPECT_EQ(tallyd.Stop(), 0);
}

}  // namespace
}  // namespace tally::testing
