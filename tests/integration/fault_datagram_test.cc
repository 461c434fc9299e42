// Fault test: hostile datagrams against the real tallyd.
//
// Guarantee checked: no datagram, however malformed, crashes tallyd or changes a count it
// should not; every non-empty line of garbage is counted as malformed in
// tallyd_lines_total, and a bad line never costs the good lines of its datagram.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <random>
#include <string>
#include <thread>

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
  for (int i = 0; i < 500; ++i) {
    v = Metric(port, series);
    if (v >= want) {
      return v;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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

void SendUnix(const std::string& path, std::string_view payload) {
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  int sndbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  path.copy(addr.sun_path, path.size());
  ssize_t n = sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                     sizeof addr);
  int err = errno;
  close(fd);
  ASSERT_EQ(n, static_cast<ssize_t>(payload.size())) << std::strerror(err);
}

const std::string kUdpMalformed = R"(tallyd_lines_total{transport="udp",result="malformed"})";
const std::string kUdpAccepted = R"(tallyd_lines_total{transport="udp",result="accepted"})";

TEST(FaultDatagram, HostileUdpDatagramsAreCountedMalformed) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "100"});
  const uint16_t udp = tallyd.udp_port();
  const uint16_t http = tallyd.http_port();

  size_t expected_malformed = 0;
  size_t lines = 0;
  // Empty: no line at all.
  SendUdp(udp, "");
  // 64 KiB of garbage on one line, and the same with many lines.
  SendUdp(udp, Garbage(kMaxUdpPayload, false, 1, &lines));
  expected_malformed += lines;
  SendUdp(udp, Garbage(kMaxUdpPayload, true, 2, &lines));
  expected_malformed += lines;
  ASSERT_GT(lines, 100u);
  // NUL bytes, alone and inside otherwise valid lines.
  SendUdp(udp, std::string(1000, '\0'));
  ++expected_malformed;
  using namespace std::string_literals;
  SendUdp(udp, "apikey.1.success:1|c\0"s);
  SendUdp(udp, "apikey.1.success:1\0|c"s);
  SendUdp(udp, "apikey.1\0.success:1|c"s);
  SendUdp(udp, "\0apikey.1.success:1|c"s);
  expected_malformed += 4;
  // Every byte value but '\n', one line.
  std::string binary;
  for (int b = 0; b < 256; ++b) {
    if (b != '\n') {
      binary.push_back(static_cast<char>(b));
    }
  }
  SendUdp(udp, binary);
  ++expected_malformed;
  // Good lines around bad ones: the good ones still count.
  SendUdp(udp, "apikey.1.success:2|c\n\xff\xfe\x00garbage\napikey.1.failure:3|c"s);
  ++expected_malformed;

  EXPECT_EQ(WaitMetric(http, kUdpMalformed, expected_malformed), expected_malformed)
      << tallyd.Log();
  EXPECT_EQ(WaitMetric(http, kUdpAccepted, 2), 2);
  // Nothing more arrives late: the counts stay put.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Metric(http, kUdpMalformed), expected_malformed);
  EXPECT_EQ(Metric(http, kUdpAccepted), 2);
  WaitForTotal(http, 5);
  EXPECT_EQ(Total(http), 5);
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A Unix datagram can be larger than tallyd's 64 KiB receive buffer: the kernel truncates
// it. The line cut in the middle must not count, whatever the cut leaves.
TEST(FaultDatagram, TruncatedUnixDatagramNeverCountsTheCutLine) {
  TempDir dir;
  std::string sock = dir.Sub("tallyd.sock");
  TallydProcess tallyd(dir.Sub("data"), {"--unix-socket", sock, "--flush-interval-ms", "100"});
  const uint16_t http = tallyd.http_port();

  // Whole lines up to just before the 65536-byte cut, then a tagged line whose key the cut
  // shortens from 123456789 to 12: accepting the remainder would count key 12.
  const std::string good = "apikey.1.success:1|c\n";
  const std::string cut_line = "apikey.requests:1|c|#outcome:success,key:123456789\n";
  const size_t cut = 65536;
  const size_t key_digits_offset = cut_line.find("key:") + 4;
  std::string payload;
  size_t good_lines = 0;
  while (payload.size() + good.size() + key_digits_offset + 2 <= cut) {
    payload += good;
    ++good_lines;
  }
  // Pad with ignored lines so the cut falls exactly after "key:12".
  while (payload.size() + key_digits_offset + 2 < cut) {
    std::string pad = "x:1|g\n";
    size_t room = cut - (payload.size() + key_digits_offset + 2);
    if (room < pad.size()) {
      pad = std::string(room - 1, 'y') + "\n";  // a one-word malformed line
    }
    payload += pad;
  }
  ASSERT_EQ(payload.size() + key_digits_offset + 2, cut);
  payload += cut_line;
  payload += std::string(5000, 'z');  // well past the cut
  ASSERT_GT(payload.size(), cut);
  SendUnix(sock, payload);

  const std::string accepted = R"(tallyd_lines_total{transport="unix",result="accepted"})";
  double got = WaitMetric(http, accepted, good_lines);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  got = Metric(http, accepted);
  EXPECT_LE(got, static_cast<double>(good_lines)) << "the truncated last line was accepted";
  WaitForTotal(http, static_cast<int64_t>(good_lines), 3000);
  EXPECT_LE(Total(http), static_cast<int64_t>(good_lines))
      << "a line cut by truncation was counted";
  EXPECT_EQ(Http(http, "GET", "/healthz").status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

}  // namespace
}  // namespace tally::testing
