// Fault test: hostile datagrams against the real tallyd.
//
// Guarantees checked: no datagram, however malformed, crashes tallyd or changes a count it
// should not; every non-empty line of garbage is counted as malformed in
// tallyd_lines_total, and a bad line never costs the good lines of its datagram; a Unix
// datagram too long to receive whole counts not at all and is counted as truncated; and
// descriptors passed over the Unix socket never stay open in tallyd. Every count is checked
// exactly: each test ends its datagrams with a barrier line, on one socket, in order.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

constexpr size_t kMaxUdpPayload = 65507;  // IPv4: 65535 - 20 (IP) - 8 (UDP)

int64_t Total(uint16_t http_port) {
  HttpResult r = Http(http_port, "GET", "/admin/apikey-stats/summary");
  if (r.status != 200) {
    return -1;
  }
  return boost::json::parse(r.body).at("total_requests").to_number<int64_t>();
}

double Metric(uint16_t port, const std::string& series) {
  std::optional<double> v = ScrapeMetric(port, series);
  return v ? *v : -1;
}

// Polls `series` until it reaches `want` or 10 s pass; returns the last value.
double WaitMetric(uint16_t port, const std::string& series, double want) {
  double v = -1;
  WaitUntil(
      [&] {
        v = Metric(port, series);
        return v >= want;
      },
      10000, 20);
  return v;
}

// Garbage of `size` bytes in which every line starts with a control byte (so it is never a
// valid statsd name) and no line is empty: exactly one malformed line per '\n', plus one.
std::string Garbage(size_t size, bool newlines, uint32_t seed, size_t* lines) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (char& c : s) {
    c = static_cast<char>(rng() & 0xff);
    if (!newlines && c == '\n') {
      c = 'x';
    }
  }
  s[0] = '\x01';
  s.back() = 'x';
  *lines = 1;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '\n') {
      s[i + 1] = '\x01';
      ++*lines;
    }
  }
  return s;
}

// A Unix datagram sender: blocking (it waits while tallyd's queue is full, so nothing it
// sent is lost) and connected (so its datagrams reach tallyd in order).
class UnixSender {
 public:
  // `sndbuf`: the send buffer to ask for, which bounds the datagram size (0: the default).
  explicit UnixSender(const std::string& path, int sndbuf = 0) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sndbuf > 0 && setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) {
      (void)setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~UnixSender() { close(fd_); }
  UnixSender(const UnixSender&) = delete;
  UnixSender& operator=(const UnixSender&) = delete;

  bool connected() const { return connected_; }
  // The largest datagram this sender can send (Linux: its SO_SNDBUF less 32 bytes).
  size_t max_datagram() const {
    int v = 0;
    socklen_t len = sizeof v;
    getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &v, &len);
    return v > 32 ? static_cast<size_t>(v - 32) : 0;
  }
  // Sends one datagram, with `fds` passed as SCM_RIGHTS when not empty; 0 or the errno.
  int Send(std::string_view payload, const std::vector<int>& fds = {}) {
    iovec iov{const_cast<char*>(payload.data()), payload.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = sendmsg(fd_, &msg, 0);
    if (n == static_cast<ssize_t>(payload.size())) {
      return 0;
    }
    return n < 0 ? errno : EMSGSIZE;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Exactly `size` bytes of accepted lines for key 1 (`size` >= 23); *lines receives their
// number. The last line takes up the rest with an ignored tag.
std::string AcceptedLines(size_t size, size_t* lines) {
  const std::string line = "apikey.1.success:1|c\n";
  const std::string last = "apikey.1.success:1|c|#";  // + padding + '\n'
  std::string s;
  *lines = 0;
  while (size - s.size() >= line.size() + last.size() + 1) {
    s += line;
    ++*lines;
  }
  s += last;
  s += std::string(size - s.size() - 1, 'x');
  s += '\n';
  ++*lines;
  return s;
}

const std::string kUdpMalformed = R"(tallyd_lines_total{transport="udp",result="malformed"})";
const std::string kUdpAccepted = R"(tallyd_lines_total{transport="udp",result="accepted"})";
const std::string kUnixAccepted = R"(tallyd_lines_total{transport="unix",result="accepted"})";
const std::string kUnixMalformed = R"(tallyd_lines_total{transport="unix",result="malformed"})";

TEST(FaultDatagram, HostileUdpDatagramsAreCountedMalformed) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "100"});
  const uint16_t http = tallyd.http_port();
  // One connected socket: every datagram goes to the same tallyd socket (SO_REUSEPORT
  // hashes the sender's address), in order, so the last one is a barrier for the others.
  int udp = ConnectLoopback(SOCK_DGRAM, tallyd.udp_port());
  ASSERT_GE(udp, 0);
  size_t sent = 0;
  auto send_udp = [&](std::string_view payload) {
    ASSERT_EQ(send(udp, payload.data(), payload.size(), 0), static_cast<ssize_t>(payload.size()));
    ++sent;
  };

  size_t expected_malformed = 0;
  size_t lines = 0;
  // Empty: no line at all.
  send_udp("");
  // 64 KiB of garbage on one line, and the same with many lines.
  send_udp(Garbage(kMaxUdpPayload, false, 1, &lines));
  expected_malformed += lines;
  send_udp(Garbage(kMaxUdpPayload, true, 2, &lines));
  expected_malformed += lines;
  ASSERT_GT(lines, 100u);
  // NUL bytes, alone and inside otherwise valid lines.
  send_udp(std::string(1000, '\0'));
  ++expected_malformed;
  using namespace std::string_literals;
  send_udp("apikey.1.success:1|c\0"s);
  send_udp("apikey.1.success:1\0|c"s);
  send_udp("apikey.1\0.success:1|c"s);
  send_udp("\0apikey.1.success:1|c"s);
  expected_malformed += 4;
  // Every byte value but '\n', one line.
  std::string binary;
  for (int b = 0; b < 256; ++b) {
    if (b != '\n') {
      binary.push_back(static_cast<char>(b));
    }
  }
  send_udp(binary);
  ++expected_malformed;
  // Good lines around bad ones: the good ones still count.
  send_udp("apikey.1.success:2|c\n\xff\xfe\x00garbage\napikey.1.failure:3|c"s);
  ++expected_malformed;
  // The barrier: once its line is counted, every datagram before it has been read.
  send_udp("apikey.2.success:1|c");
  close(udp);

  EXPECT_EQ(WaitMetric(http, kUdpAccepted, 3), 3) << tallyd.Log();
  // Nothing was lost on the way, so the counts are exact, not bounds.
  EXPECT_EQ(Metric(http, "tallyd_udp_kernel_drops_total"), 0);
  EXPECT_EQ(Metric(http, R"(tallyd_datagrams_total{transport="udp"})"), sent);
  EXPECT_EQ(Metric(http, kUdpMalformed), expected_malformed);
  EXPECT_EQ(Metric(http, R"(tallyd_lines_total{transport="udp",result="ignored"})"), 0);
  WaitForTotal(http, 6);
  EXPECT_EQ(Total(http), 6);
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A Unix datagram up to 512 KiB is counted whole; one byte more and the kernel cuts it at
// tallyd's buffer, so it is refused whole: none of its lines count, not even the whole
// ones before the cut, and tallyd_datagrams_truncated_total counts it.
TEST(FaultDatagram, UnixDatagramOverTheLimitIsRefusedWholeAndCounted) {
  constexpr size_t kLimit = 512 * 1024;
  TempDir dir;
  std::string sock = dir.Sub("tallyd.sock");
  TallydProcess tallyd(dir.Sub("data"), {"--unix-socket", sock, "--flush-interval-ms", "100"});
  const uint16_t http = tallyd.http_port();
  UnixSender sender(sock, 4 << 20);
  ASSERT_TRUE(sender.connected());
  if (sender.max_datagram() < kLimit + 1) {
    GTEST_SKIP() << "this sender may send only " << sender.max_datagram()
                 << "-byte datagrams (raise net.core.wmem_max, or run as root)";
  }
  size_t lines = 0;
  std::string at_limit = AcceptedLines(kLimit, &lines);
  const size_t at_limit_lines = lines;
  std::string over_by_one = AcceptedLines(kLimit + 1, &lines);
  // A cut inside a key: key 123456789 would become 12 if the cut line counted.
  const std::string cut_line = "apikey.requests:1|c|#outcome:success,key:123456789\n";
  const size_t cut_at = cut_line.find("key:") + 6;
  std::string cut_in_key = AcceptedLines(kLimit - cut_at, &lines) + cut_line;
  ASSERT_EQ(cut_in_key.substr(kLimit - 6, 6), "key:12");
  ASSERT_EQ(sender.Send(at_limit), 0);
  ASSERT_EQ(sender.Send(over_by_one), 0);
  ASSERT_EQ(sender.Send(cut_in_key), 0);
  ASSERT_EQ(sender.Send("apikey.2.success:1|c"), 0);  // the barrier

  const double want = static_cast<double>(at_limit_lines + 1);
  EXPECT_EQ(WaitMetric(http, kUnixAccepted, want), want) << tallyd.Log();
  EXPECT_EQ(Metric(http, R"(tallyd_datagrams_total{transport="unix"})"), 4);
  EXPECT_EQ(Metric(http, "tallyd_datagrams_truncated_total"), 2);
  EXPECT_EQ(Metric(http, kUnixMalformed), 0);
  WaitForTotal(http, static_cast<int64_t>(want));
  EXPECT_EQ(Total(http), static_cast<int64_t>(want));
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// Descriptors passed with Unix datagrams (SCM_RIGHTS) never stay open in tallyd: 2,000
// datagrams, each with one or three descriptors, leave its descriptor count flat. Their
// lines count as usual, and tallyd_unix_datagrams_with_fds_total counts the datagrams.
TEST(FaultDatagram, DescriptorsPassedOverTheUnixSocketAreClosed) {
  constexpr int kDatagrams = 2000;
  TempDir dir;
  std::string sock = dir.Sub("tallyd.sock");
  TallydProcess tallyd(dir.Sub("data"), {"--unix-socket", sock});
  const uint16_t http = tallyd.http_port();
  UnixSender sender(sock);
  ASSERT_TRUE(sender.connected());
  ASSERT_EQ(sender.Send("apikey.1.success:1|c"), 0);
  ASSERT_EQ(WaitMetric(http, kUnixAccepted, 1), 1);
  const int fds_before = ProcessFdCount(tallyd.pid());
  ASSERT_GT(fds_before, 0);

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  for (int i = 0; i < kDatagrams; ++i) {
    std::vector<int> fds = {pipe_fds[0]};
    if (i % 10 == 0) {
      fds = {pipe_fds[0], pipe_fds[1], pipe_fds[0]};
    }
    ASSERT_EQ(sender.Send("apikey.1.success:1|c", fds), 0) << "datagram " << i;
  }
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_EQ(WaitMetric(http, kUnixAccepted, kDatagrams + 1), kDatagrams + 1) << tallyd.Log();
  EXPECT_EQ(Metric(http, "tallyd_unix_datagrams_with_fds_total"), kDatagrams);
  // Flat: the store may have opened a file or two meanwhile, never thousands.
  EXPECT_LE(ProcessFdCount(tallyd.pid()), fds_before + 8);
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200);
  WaitForTotal(http, kDatagrams + 1);
  EXPECT_EQ(Total(http), kDatagrams + 1);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

}  // namespace
}  // namespace tally::testing
