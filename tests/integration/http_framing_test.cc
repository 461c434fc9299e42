// HTTP framing against the real tallyd (RFC 9112): bounded chunk extensions and trailers,
// Transfer-Encoding and Host rules against request smuggling, bare-LF chunk lines, and a
// declared body length that allocates nothing.
//
// Guarantees checked: every such request gets its 4xx/5xx answer and a closed connection,
// promptly (not at the 30 s request timeout), nothing it carried is counted, resident memory
// stays flat, and tallyd stays up and stops cleanly.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

using Clock = std::chrono::steady_clock;

// What a flooding client saw: the answer's status (0: none), how many bytes it managed to
// send, and whether tallyd closed the connection.
struct FloodResult {
  int status = 0;
  uint64_t sent = 0;
  bool closed = false;
};

// Sends `head`, then up to `total` bytes of `fill` in 64 KiB writes, while a reader thread
// waits (at most 15 s) for the answer and the close. Sending stops at the first failed write
// (tallyd closed) or once the reader is done.
FloodResult Flood(uint16_t port, const std::string& head, char fill, uint64_t total) {
  FloodResult result;
  int fd = ConnectLoopback(SOCK_STREAM, port);
  EXPECT_GE(fd, 0);
  if (fd < 0) {
    return result;
  }
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    std::string in;
    auto deadline = Clock::now() + std::chrono::seconds(15);
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) {
        continue;
      }
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        result.closed = true;
        break;
      }
      in.append(buf, static_cast<size_t>(n));
      if (result.status == 0 && in.size() >= 12 && in.find("\r\n") != std::string::npos) {
        result.status = std::atoi(in.c_str() + 9);
      }
    }
    reader_done = true;
  });
  std::string chunk(64 * 1024, fill);
  bool ok = send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size());
  while (ok && result.sent < total && !reader_done.load()) {
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        continue;  // tallyd is not reading (yet); the reader decides when to give up
      }
      break;
    }
    result.sent += static_cast<uint64_t>(n);
  }
  reader.join();
  close(fd);
  return result;
}

// A value in KiB from /proc/<pid>/status ("VmRSS", "VmSize"); -1 if absent.
int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) {
      return std::stoll(line.substr(field.size() + 1));
    }
  }
  return -1;
}

int64_t TotalRequests(uint16_t port) {
  EXPECT_EQ(Http(port, "POST", "/admin/flush").status, 200);
  HttpResult sum = Http(port, "GET", "/admin/apikey-stats/summary");
  return boost::json::parse(sum.body).at("total_requests").to_number<int64_t>();
}

constexpr uint64_t kFloodBytes = 64ULL * 1024 * 1024;
const std::string kChunkedHead =
    "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
// With the token: a request without it is refused on its header before any body byte is
// read (HttpRequests.UnauthorizedBodiesAreNeverBuffered), so the framing bounds below are
// what hold for an admitted client.
const std::string kAuthorizedChunkedHead =
    "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Internal-Token: int-token\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

TEST(HttpFraming, EndlessChunkExtensionIsRefusedWithFlatMemory) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--internal-token", "int-token"});
  const int64_t rss_before = ProcStatusKb(tallyd.pid(), "VmRSS");
  FloodResult r = Flood(tallyd.http_port(), kAuthorizedChunkedHead + "16;", 'a', kFloodBytes);
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(r.closed);
  EXPECT_LT(r.sent, kFloodBytes / 2) << "tallyd kept reading an endless chunk extension";
  const int64_t rss_after = ProcStatusKb(tallyd.pid(), "VmRSS");
  EXPECT_LT(rss_after - rss_before, 16 * 1024) << "RSS grew from " << rss_before << " KiB";
  EXPECT_EQ(Http(tallyd.http_port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

TEST(HttpFraming, EndlessTrailerIsRefusedWithFlatMemory) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--internal-token", "int-token"});
  const int64_t rss_before = ProcStatusKb(tallyd.pid(), "VmRSS");
  FloodResult r =
      Flood(tallyd.http_port(), kAuthorizedChunkedHead + "0\r\nX-T: ", 'a', kFloodBytes);
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(r.closed);
  EXPECT_LT(r.sent, kFloodBytes / 2) << "tallyd kept reading an endless trailer";
  const int64_t rss_after = ProcStatusKb(tallyd.pid(), "VmRSS");
  EXPECT_LT(rss_after - rss_before, 16 * 1024) << "RSS grew from " << rss_before << " KiB";
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A bare LF where the chunked framing needs CRLF: 400 at once, not the 30 s request timeout.
TEST(HttpFraming, BareLfInChunkedBodyIsRefusedPromptly) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  for (std::string body : {"14\napikey.3.success:1|c\n0\n\n", "14\r\napikey.3.success:1|c\r\n0\n\n",
                           "14\r\napikey.3.success:1|c\r\n0\r\nX-T: 1\n\n"}) {
    RawConnection c(tallyd.http_port(), 5000);
    auto t0 = Clock::now();
    ASSERT_TRUE(c.Send(kChunkedHead + body));
    HttpResult r = c.ReadResponse();
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_TRUE(c.WaitClosed(5000)) << body;
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(4)) << body;
  }
  EXPECT_EQ(TotalRequests(tallyd.http_port()), 0);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A request whose body would be read as the next request if its Transfer-Encoding were
// ignored: the smuggled POST must never be answered nor counted.
TEST(HttpFraming, TransferEncodingMustBeExactlyChunked) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  const std::string smuggled =
      "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\napikey.7.success:1|c";
  struct Case {
    std::string encoding;
    int status;
  };
  for (const Case& k : {Case{"gzip", 400}, Case{"identity", 400}, Case{"chunked, identity", 400},
                        Case{"chunked, chunked", 400}, Case{"", 400}, Case{"gzip, chunked", 501}}) {
    RawConnection c(tallyd.http_port(), 5000);
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + k.encoding +
                       "\r\n\r\n" + smuggled));
    HttpResult r = c.ReadResponse();
    EXPECT_EQ(r.status, k.status) << "Transfer-Encoding: " << k.encoding;
    EXPECT_TRUE(c.WaitClosed(5000)) << "Transfer-Encoding: " << k.encoding;
  }
  // Content-Length and Transfer-Encoding together, in either order.
  for (std::string fields : {"Content-Length: 20\r\nTransfer-Encoding: chunked",
                             "Transfer-Encoding: chunked\r\nContent-Length: 20",
                             "Transfer-Encoding: gzip\r\nContent-Length: 20"}) {
    RawConnection c(tallyd.http_port(), 5000);
    ASSERT_TRUE(c.Send("POST /v1/ingest HTTP/1.1\r\nHost: x\r\n" + fields +
                       "\r\n\r\napikey.7.success:1|c" + smuggled));
    HttpResult r = c.ReadResponse();
    EXPECT_EQ(r.status, 400) << fields;
    EXPECT_TRUE(c.WaitClosed(5000)) << fields;
  }
  // Plain chunked still works.
  RawConnection ok(tallyd.http_port(), 5000);
  ASSERT_TRUE(ok.Send(kChunkedHead + "14\r\napikey.8.success:1|c\r\n0\r\n\r\n"));
  EXPECT_EQ(ok.ReadResponse().status, 202);
  EXPECT_EQ(TotalRequests(tallyd.http_port()), 1) << "a smuggled request was counted";
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

TEST(HttpFraming, Http11NeedsExactlyOneHost) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  for (std::string head :
       {"GET /healthz HTTP/1.1\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}) {
    RawConnection c(tallyd.http_port(), 5000);
    ASSERT_TRUE(c.Send(head));
    EXPECT_EQ(c.ReadResponse().status, 400) << head;
    EXPECT_TRUE(c.WaitClosed(5000)) << head;
  }
  // HTTP/1.0 predates Host.
  RawConnection c(tallyd.http_port(), 5000);
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// With the largest body limit, a declared length is never allocated up front: tallyd's
// address space does not grow by it, and a length past the limit is 413.
TEST(HttpFraming, DeclaredBodyLengthAllocatesNothing) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--max-body-bytes", "1073741824"});
  const uint16_t port = tallyd.http_port();
  const int64_t vm_before = ProcStatusKb(tallyd.pid(), "VmSize");
  {
    RawConnection c(port, 5000);
    ASSERT_TRUE(c.Send(
        "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\napikey.1.s"));
    // An up-front allocation would follow the first body bytes at once, and nothing
    // observable marks its absence: watch the address space for a bounded while.
    int64_t vm_max = vm_before;
    for (auto until = Clock::now() + std::chrono::seconds(1); Clock::now() < until;) {
      vm_max = std::max(vm_max, ProcStatusKb(tallyd.pid(), "VmSize"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_LT(vm_max - vm_before, 256 * 1024) << "VmSize grew by the declared body length";
  }
  EXPECT_EQ(Http(port, "GET", "/healthz").status, 200);
  RawConnection huge(port, 5000);
  ASSERT_TRUE(huge.Send(
      "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\napikey.1.s"));
  EXPECT_EQ(huge.ReadResponse().status, 413);
  EXPECT_TRUE(huge.WaitClosed(5000));
  EXPECT_EQ(Http(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// The body limit itself is bounded: past 1 GiB, tallyd refuses to start (exit 2, one line).
// Every listener off makes an accepted value end the run too (exit 1), so this never hangs.
TEST(HttpFraming, BodyLimitIsAtMostOneGib) {
  TempDir dir;
  std::string output;
  EXPECT_EQ(RunTallyd({"--data-dir", dir.Sub("data"), "--udp-listen", "off", "--http-listen", "off",
                       "--max-body-bytes", "1073741825"},
                      &output),
            2)
      << output;
  EXPECT_NE(output.find("--max-body-bytes"), std::string::npos) << output;
}

}  // namespace
}  // namespace tally::testing
