// Datagram ingestion against the real binary: UDP datagrams mixing valid, malformed and
// foreign lines; the Unix datagram socket (mode 0660, a blocking sender loses nothing, a
// datagram over 64 KiB counts whole); and
// SIGTERM in the middle of sustained UDP load (totals after restart = sent - kernel drops).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <regex>
#include <thread>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

int64_t Total(const TallydProcess& t) {
  HttpResult r = Http(t.http_port(), "GET", "/admin/apikey-stats/summary");
  return boost::json::parse(r.body).at("total_requests").as_int64();
}

// The value of one series on /metrics (the text before the value), or -1.
int64_t Metric(uint16_t port, const std::string& series) {
  HttpResult r = Http(port, "GET", "/metrics");
  size_t pos = r.body.find("\n" + series + " ");
  if (pos == std::string::npos) {
    return -1;
  }
  return std::stoll(r.body.substr(pos + series.size() + 2));
}

std::string Lines(const std::string& transport, const std::string& result) {
  return "tallyd_lines_total{transport=\"" + transport + "\",result=\"" + result + "\"}";
}

// Polls until the metric reaches `want` (lines are counted when the receiver reads them).
int64_t WaitMetric(uint16_t port, const std::string& series, int64_t want) {
  int64_t v = -1;
  WaitUntil(
      [&] {
        v = Metric(port, series);
        return v >= want;
      },
      5000);
  return v;
}

TEST(IngestDatagram, UdpMixesValidMalformedAndForeignLines) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"));
  SendUdp(t.udp_port(),
          "apikey.1.success:2|c\n"
          "apikey.1.failure:1|c\n"
          "apikey.requests:3|c|#key:2,outcome:success\n"  // DogStatsD tag form
          "nginx.requests:1|c\n"                          // foreign name: ignored
          "apikey.1.success:5|g\n"                        // foreign type: ignored
          "apikey.x.success:1|c\n"                        // malformed
          "garbage\n"
          "apikey.3.success:1|c|@0.1\n");           // sampled: refused, counts would not be exact
  SendUdp(t.udp_port(), "apikey.4.failure:1:2|c");  // DogStatsD packing adds up
  EXPECT_EQ(WaitMetric(t.http_port(), Lines("udp", "accepted"), 4), 4);
  EXPECT_EQ(Metric(t.http_port(), Lines("udp", "ignored")), 2);
  EXPECT_EQ(Metric(t.http_port(), Lines("udp", "malformed")), 2);
  EXPECT_EQ(Metric(t.http_port(), Lines("udp", "refused")), 1);
  WaitForTotal(t.http_port(), 9);
  EXPECT_EQ(Total(t), 9);
  EXPECT_EQ(t.Stop(), 0);
}

TEST(IngestDatagram, UnixSocketIs0660AndABlockingSenderLosesNothing) {
  TempDir dir;
  std::string path = dir.Sub("tallyd.sock");
  TallydProcess t(dir.Sub("data"), {"--unix-socket", path});
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);  // blocking: waits when tallyd's queue is full
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // Far more than the socket's queue holds, sent as fast as the sender can.
  constexpr int kDatagrams = 50'000;
  constexpr int kLinesPer = 10;
  std::string payload;
  for (int i = 0; i < kLinesPer; ++i) {
    payload += "apikey." + std::to_string(100 + i) + ".success:1|c\n";
  }
  for (int i = 0; i < kDatagrams; ++i) {
    ASSERT_EQ(send(fd, payload.data(), payload.size(), 0), static_cast<ssize_t>(payload.size()));
  }
  close(fd);
  EXPECT_EQ(WaitMetric(t.http_port(), Lines("unix", "accepted"), kDatagrams * kLinesPer),
            kDatagrams * kLinesPer);
  WaitForTotal(t.http_port(), kDatagrams * kLinesPer, 20000);
  EXPECT_EQ(Total(t), kDatagrams * kLinesPer);
  EXPECT_EQ(t.Stop(), 0) << t.Log();
}

// A Unix datagram longer than 64 KiB is counted whole: 200,000 bytes, as large as a sender
// with Linux's default SO_SNDBUF (212,960 bytes at most) sends, every one of its lines.
TEST(IngestDatagram, UnixDatagramOf200000BytesIsCountedWhole) {
  TempDir dir;
  std::string path = dir.Sub("tallyd.sock");
  TallydProcess t(dir.Sub("data"), {"--unix-socket", path});
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);  // blocking, the default send buffer
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string payload;
  int64_t lines = 0;
  while (payload.size() + 22 < 200'000) {
    payload += "apikey.12.success:1|c\n";
    ++lines;
  }
  payload += "apikey.1.success:1|c";  // the last line needs no '\n'
  ++lines;
  ASSERT_EQ(payload.size(), 200'000u);
  ASSERT_EQ(send(fd, payload.data(), payload.size(), 0), static_cast<ssize_t>(payload.size()))
      << std::strerror(errno);
  close(fd);
  EXPECT_EQ(WaitMetric(t.http_port(), Lines("unix", "accepted"), lines), lines) << t.Log();
  EXPECT_EQ(Metric(t.http_port(), Lines("unix", "malformed")), 0);
  EXPECT_EQ(Metric(t.http_port(), "tallyd_datagrams_truncated_total"), 0);
  WaitForTotal(t.http_port(), lines);
  EXPECT_EQ(Total(t), lines);
  EXPECT_EQ(t.Stop(), 0) << t.Log();
}

// Sum of the final per-socket kernel-drop counts tallyd logs when it closes its UDP sockets.
int64_t LoggedUdpDrops(const std::string& log, int* sockets) {
  std::regex line("udp socket drained and closed; kernel drops: ([0-9]+)");
  int64_t sum = 0;
  *sockets = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    sum += std::stoll((*it)[1].str());
    ++*sockets;
  }
  return sum;
}

TEST(IngestDatagram, SigtermUnderSustainedUdpLoadLosesNothingAccepted) {
  TempDir dir;
  std::string data = dir.Sub("data");
  constexpr int kLinesPer = 20;
  constexpr int64_t kMaxDatagrams = 4'000'000;
  int64_t sent_to_open = 0;
  int64_t drops = 0;
  {
    TallydProcess t(data);
    // A connected sender: once every tallyd socket is fenced, the next datagram finds no
    // socket, the kernel answers with ICMP port unreachable, and the send after it fails
    // with ECONNREFUSED. So exactly one datagram, the last successful send, went nowhere.
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(t.udp_port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::vector<std::string> payloads;
    for (int p = 0; p < 50; ++p) {
      std::string s;
      for (int i = 0; i < kLinesPer; ++i) {
        s += "apikey." + std::to_string(1 + (p * kLinesPer + i) % 997) +
             (i % 4 == 0 ? ".failure" : ".success") + ":1|c\n";
      }
      payloads.push_back(std::move(s));
    }
    std::atomic<int64_t> sent{0};  // relaxed: read by the test thread as progress only
    std::atomic<bool> refused{false};
    std::thread sender([&] {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      int64_t n = 0;
      while (n < kMaxDatagrams && std::chrono::steady_clock::now() < deadline) {
        const std::string& p = payloads[static_cast<size_t>(n % 50)];
        if (send(fd, p.data(), p.size(), 0) < 0) {
          if (errno == ECONNREFUSED) {
            refused.store(true);
            break;
          }
          continue;  // ENOBUFS and the like: not sent, try again
        }
        sent.store(++n, std::memory_order_relaxed);
      }
    });
    // Progress, not a pause: wait (bounded) until the sender is well under way.
    EXPECT_TRUE(WaitUntil([&] { return sent.load(std::memory_order_relaxed) >= 20'000; }, 10000, 5))
        << "the sender did not get going";
    int64_t drops_before = Metric(t.http_port(), "tallyd_udp_kernel_drops_total");
    EXPECT_GE(drops_before, 0);
    EXPECT_EQ(t.Stop(), 0) << t.Log();
    sender.join();
    if (refused.load()) {
      sent_to_open = sent.load() - 1;
    } else {
      // The sender reached its bound first. If its last datagram found no socket, the ICMP
      // error is pending and this probe reports it; otherwise every datagram was queued.
      char probe = '\n';
      bool pending_error = send(fd, &probe, 1, 0) < 0 && errno == ECONNREFUSED;
      sent_to_open = sent.load() - (pending_error ? 1 : 0);
    }
    close(fd);
    int sockets = 0;
    drops = LoggedUdpDrops(t.Log(), &sockets);
    EXPECT_EQ(sockets, 2) << t.Log();  // --io-threads 2: one UDP socket each
    EXPECT_GE(drops, drops_before);
  }
  TallydProcess t(data);
  int64_t want = (sent_to_open - drops) * kLinesPer;
  EXPECT_EQ(Total(t), want) << "sent " << sent_to_open << " datagrams, kernel dropped " << drops;
  EXPECT_GT(want, 0);
}

}  // namespace
}  // namespace tally::testing
