// DatagramReceiver's error path, where the errors can be produced: a receive error other
// than EAGAIN is counted and retried (the receiver keeps receiving afterwards), and a
// descriptor that is no socket makes the receiver down for good, which fails /healthz.
#include "daemon/ingest/datagram_receiver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

#include "daemon/ops/endpoints.h"
#include "tests/unit/daemon/ops_fixture.h"

namespace tally::daemon {
namespace {

constexpr size_t kUdp = static_cast<size_t>(Transport::kUdp);

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A UDP socket bound to a free loopback port; *port receives it.
int BoundUdp(uint16_t* port, int flags = 0) {
  int fd = socket(AF_INET, SOCK_DGRAM | flags, 0);
  sockaddr_in a = Loopback(0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// Runs `io` in short slices until `done` holds or 5 s pass; answers `done()`.
bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return done();
}

class DatagramReceiverErrors : public OpsFixture {
 protected:
  DatagramReceiverErrors() { counters_block_ = counters_.NewBlock(); }

  ThreadCounters& c() { return *counters_block_; }

  ThreadCounters* counters_block_ = nullptr;
  boost::asio::io_context io_;
};

// A connected UDP socket whose peer port is closed holds a pending ECONNREFUSED (ICMP port
// unreachable): recvmmsg reports it once. The receiver must count it and carry on.
TEST_F(DatagramReceiverErrors, AReceiveErrorIsCountedAndTheReceiverCarriesOn) {
  uint16_t own_port = 0;
  uint16_t peer_port = 0;
  int fd = BoundUdp(&own_port, SOCK_NONBLOCK);
  int gone = BoundUdp(&peer_port);
  ASSERT_GE(fd, 0);
  ASSERT_GE(gone, 0);
  close(gone);  // nothing listens on peer_port now
  sockaddr_in peer = Loopback(peer_port);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer), 0);
  ASSERT_EQ(send(fd, "x", 1, 0), 1);
  pollfd p{fd, 0, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);  // the ICMP error has arrived
  ASSERT_NE(p.revents & POLLERR, 0);

  DatagramReceiver receiver(io_, fd, Transport::kUdp, table_, "apikey", c());
  receiver.Start();
  ASSERT_TRUE(RunUntil(io_, [&] { return c().receive_errors[kUdp].Get() == 1; }));
  EXPECT_EQ(c().receive_errno[kUdp].Get(), static_cast<uint64_t>(ECONNREFUSED));

  // The peer comes back and sends: the receiver still receives.
  int sender = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(bind(sender, reinterpret_cast<sockaddr*>(&peer), sizeof peer), 0);
  sockaddr_in to = Loopback(own_port);
  const std::string line = "apikey.1.success:1|c";
  ASSERT_EQ(
      sendto(sender, line.data(), line.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
      static_cast<ssize_t>(line.size()));
  close(sender);
  EXPECT_TRUE(RunUntil(io_, [&] { return c().lines[kUdp][0].Get() == 1; }))
      << "the receiver stopped after its receive error";
  EXPECT_EQ(c().receive_errors[kUdp].Get(), 1u);
  EXPECT_EQ(c().receivers_down[kUdp].Get(), 0u);
  EXPECT_EQ(HealthResponse(Context()).result(), http::status::ok);
  receiver.DrainAndClose();
  io_.restart();
  io_.run_for(std::chrono::seconds(2));
}

// A descriptor that is no socket (here a pipe) fails with ENOTSOCK: retrying cannot help
// and could read a descriptor reused by something else, so the receiver stops and is down.
TEST_F(DatagramReceiverErrors, ADescriptorThatIsNoSocketIsDownForGoodAndFailsHealth) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  ASSERT_EQ(write(fds[1], "apikey.1.success:1|c", 20), 20);
  DatagramReceiver receiver(io_, fds[0], Transport::kUdp, table_, "apikey", c());
  EXPECT_EQ(HealthResponse(Context()).result(), http::status::ok);
  receiver.Start();
  ASSERT_TRUE(RunUntil(io_, [&] { return c().receivers_down[kUdp].Get() == 1; }));
  EXPECT_EQ(c().receive_errno[kUdp].Get(), static_cast<uint64_t>(ENOTSOCK));
  // Stopped for good: no retry is pending, so the loop runs out of work at once.
  io_.restart();
  io_.run_for(std::chrono::seconds(2));
  EXPECT_TRUE(io_.stopped());
  EXPECT_EQ(c().receive_errors[kUdp].Get(), 1u);

  Response res = HealthResponse(Context());
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_NE(res.body().find("the udp datagram receiver on I/O thread 0 is down"), std::string::npos)
      << res.body();
  std::string metrics = RenderMetrics(Context());
  EXPECT_NE(metrics.find("tallyd_datagram_receivers_down{transport=\"udp\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tallyd_datagram_receive_errors_total{transport=\"udp\"} 1\n"),
            std::string::npos);
  close(fds[1]);
}

}  // namespace
}  // namespace tally::daemon
