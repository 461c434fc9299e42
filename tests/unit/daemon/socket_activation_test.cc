// Socket activation's classification of inherited descriptors, and the systemd notifier,
// with real sockets.
#include "daemon/ops/socket_activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "daemon/ops/notify.h"

namespace tally::daemon {
namespace {

// Descriptors at consecutive numbers starting at 200, as LISTEN_FDS passes them from 3.
class Fds {
 public:
  ~Fds() {
    for (int fd : fds_) {
      close(fd);
    }
  }
  int Add(int fd) {
    int at = 200 + static_cast<int>(fds_.size());
    dup2(fd, at);
    close(fd);
    fds_.push_back(at);
    return at;
  }

 private:
  std::vector<int> fds_;
};

// Bound to an explicit port, as systemd binds (an ephemeral port would not survive a
// disconnect).
int BoundUdp(const char* host) {
  int probe = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, host, &a.sin_addr);
  bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  close(probe);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  return fd;
}

int ListeningTcp() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(fd, 4);
  return fd;
}

TEST(SocketActivation, SortsByNameOrType) {
  Fds fds;
  int udp = fds.Add(BoundUdp("127.0.0.1"));
  int tcp = fds.Add(ListeningTcp());
  auto s = ClassifySockets(udp, 2, "udp:http");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->udp, std::vector<int>{udp});
  EXPECT_EQ(s->http, std::vector<int>{tcp});
  // systemd's default names (the unit's) and no names at all: by type.
  for (const char* names : {"tallyd:tallyd", ""}) {
    s = ClassifySockets(udp, 2, names);
    ASSERT_TRUE(s.ok()) << names;
    EXPECT_EQ(s->udp, std::vector<int>{udp}) << names;
    EXPECT_EQ(s->http, std::vector<int>{tcp}) << names;
  }
  // Marked close-on-exec and non-blocking.
  EXPECT_NE(fcntl(udp, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(fcntl(tcp, F_GETFL) & O_NONBLOCK, 0);
}

TEST(SocketActivation, RefusesWhatItCannotUse) {
  Fds fds;
  int udp = fds.Add(BoundUdp("127.0.0.1"));
  fds.Add(ListeningTcp());
  auto s = ClassifySockets(udp, 2, "http:udp");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("named http but is a udp socket"), std::string::npos)
      << s.status().message();
  // A TCP socket that does not listen.
  Fds more;
  int unlistened = more.Add(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_FALSE(ClassifySockets(unlistened, 1, "").ok());
  // A Unix datagram socket.
  int pair[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, pair);
  close(pair[1]);
  int unix_fd = more.Add(pair[0]);
  auto u = ClassifySockets(unix_fd, 1, "");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("use --unix-socket"), std::string::npos);
  // Not open at all.
  EXPECT_FALSE(ClassifySockets(250, 1, "").ok());
}

TEST(SocketActivation, OnlyForThisProcess) {
  setenv("LISTEN_FDS", "2", 1);
  setenv("LISTEN_PID", "1", 1);
  auto s = TakeInheritedSockets();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);  // unset either way
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
}

TEST(SocketActivation, LoopbackAndDisconnect) {
  int loop = BoundUdp("127.0.0.1");
  int any = BoundUdp("0.0.0.0");
  EXPECT_TRUE(BoundToLoopback(loop));
  EXPECT_FALSE(BoundToLoopback(any));
  // Connected to itself (a receiver's stop fence), a socket takes no other sender's datagram;
  // DisconnectUdp restores that and keeps the port.
  sockaddr_in self{};
  socklen_t len = sizeof self;
  getsockname(loop, reinterpret_cast<sockaddr*>(&self), &len);
  ASSERT_EQ(connect(loop, reinterpret_cast<sockaddr*>(&self), len), 0);
  int sender = socket(AF_INET, SOCK_DGRAM, 0);
  sendto(sender, "a", 1, 0, reinterpret_cast<sockaddr*>(&self), len);
  char buf[8];
  EXPECT_LT(recv(loop, buf, sizeof buf, MSG_DONTWAIT), 0);
  DisconnectUdp(loop);
  sockaddr_in after{};
  getsockname(loop, reinterpret_cast<sockaddr*>(&after), &len);
  EXPECT_EQ(after.sin_port, self.sin_port);
  sendto(sender, "b", 1, 0, reinterpret_cast<sockaddr*>(&self), len);
  pollfd readable{loop, POLLIN, 0};
  ASSERT_EQ(poll(&readable, 1, 5000), 1);  // the datagram has arrived
  EXPECT_EQ(recv(loop, buf, sizeof buf, MSG_DONTWAIT), 1);
  EXPECT_EQ(buf[0], 'b');
  close(sender);
  close(loop);
  close(any);
}

TEST(Notifier, WritesToThePathOrAbstractSocketAndReadsTheWatchdog) {
  for (bool abstract : {false, true}) {
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string name = "/tmp/tallyd-notifier-test-" + std::to_string(getpid());
    socklen_t len = sizeof addr;
    if (abstract) {
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else {
      unlink(name.c_str());
      std::memcpy(addr.sun_path, name.data(), name.size());
    }
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
    setenv("NOTIFY_SOCKET", ((abstract ? "@" : "") + name).c_str(), 1);
    setenv("WATCHDOG_USEC", "5000000", 1);
    setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
    {
      Notifier n;
      EXPECT_TRUE(n.enabled());
      EXPECT_EQ(n.watchdog_timeout(), std::chrono::seconds(5));
      EXPECT_TRUE(n.Ready());
      EXPECT_TRUE(n.Status("12 keys\nok"));
      char buf[256];
      ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      EXPECT_EQ(std::string(buf, got > 0 ? got : 0), "READY=1");
      got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      EXPECT_EQ(std::string(buf, got > 0 ? got : 0), "STATUS=12 keys ok");
    }
    // A watchdog meant for another process is not ours.
    setenv("WATCHDOG_PID", "1", 1);
    {
      Notifier n;
      EXPECT_EQ(n.watchdog_timeout().count(), 0);
    }
    close(fd);
    if (!abstract) {
      unlink(name.c_str());
    }
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  Notifier off;
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.Ready());
}

}  // namespace
}  // namespace tally::daemon
