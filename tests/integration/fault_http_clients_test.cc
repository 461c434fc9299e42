// Fault test: slow and hostile HTTP clients against the real tallyd.
//
// Guarantees checked: while 1,000 idle connections, a slowloris and a series of hostile
// requests (oversized headers and bodies, malformed request lines, bad Content-Length) hit
// tallyd, a well-behaved client is served throughout, within a bound; every hostile client
// gets its 4xx answer or a closed connection; tallyd does not crash and its counts are
// untouched by what it refused.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Enough descriptors for 1,000 idle connections here and in tallyd (which inherits it).
void RaiseFdLimit(rlim_t want) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < want) {
    lim.rlim_cur = std::min(want, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// A well-behaved client asking /healthz and ingesting one line, again and again, on fresh
// connections; records the slowest answer and any failure.
struct GoodClient {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<int64_t> slowest_ms{0};
  std::atomic<int64_t> ingested{0};
  std::thread thread;

  void Start(uint16_t port) {
    thread = std::thread([this, port] {
      while (!stop.load()) {
        auto t0 = Clock::now();
        RawConnection c(port, 5000);
        HttpResult h = c.Request("GET", "/healthz");
        HttpResult i = c.Request("POST", "/v1/ingest", "apikey.5.success:1|c");
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        if (h.status == 200 && i.status == 202) {
          ++ok;
          ++ingested;
        } else {
          ++failed;
        }
        if (ms > slowest_ms.load()) {
          slowest_ms = ms;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // pacing the good client
      }
    });
  }
  void Join() {
    stop = true;
    thread.join();
  }
};

// Sends `bytes` on a fresh connection and returns the answer's status (0: closed without one).
int Hostile(uint16_t port, std::string_view bytes, bool* closed) {
  RawConnection c(port, 5000);
  EXPECT_TRUE(c.connected());
  c.Send(bytes);  // may fail midway: tallyd is allowed to answer and close early
  HttpResult r = c.ReadResponse();
  *closed = c.WaitClosed(5000);
  return r.status;
}

TEST(FaultHttpClients, HostileClientsAreRefusedWhileOthersAreServed) {
  RaiseFdLimit(4096);
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "100"});
  const uint16_t port = tallyd.http_port();
  GoodClient good;
  good.Start(port);

  // 1,000 idle connections: connected, never a byte sent.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port, 1000));
    ASSERT_TRUE(idle.back()->connected()) << "connection " << i;
  }
  // The good client and a fresh one are still served with all of them open.
  EXPECT_EQ(Http(port, "GET", "/healthz").status, 200);

  // Slowloris: a request header trickled one byte a second, never finished.
  std::atomic<bool> slow_stop{false};
  std::atomic<bool> slow_closed{false};
  std::atomic<int> slow_bytes{0};
  std::thread slowloris([&] {
    RawConnection c(port, 1000);
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    size_t i = 0;
    while (!slow_stop.load()) {
      char b = i < head.size() ? head[i] : 'a';
      if (!c.Send(std::string_view(&b, 1))) {
        slow_closed = true;
        return;
      }
      ++i;
      ++slow_bytes;
      if (c.WaitClosed(1000)) {
        slow_closed = true;
        return;
      }
    }
  });

  bool closed = false;
  // Oversized header: past the 16 KiB header limit.
  int s = Hostile(
      port,
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n",
      &closed);
  EXPECT_TRUE(s == 431 || s == 400) << s;
  EXPECT_TRUE(closed);
  // Oversized body, announced: past the 4 MiB body limit, refused on the header alone.
  s = Hostile(port,
              "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  std::to_string(5 * 1024 * 1024) + "\r\n\r\n",
              &closed);
  EXPECT_EQ(s, 413);
  EXPECT_TRUE(closed);
  // Oversized body, chunked: the limit holds without a Content-Length too. tallyd answers
  // 413 and closes while bytes are still coming, so the client may see only the reset.
  std::string chunked = "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 6; ++i) {
    chunked += "100000\r\n" + std::string(1 << 20, 'y') + "\r\n";
  }
  chunked += "0\r\n\r\n";
  s = Hostile(port, chunked, &closed);
  EXPECT_TRUE(s == 413 || s == 0) << s;
  EXPECT_TRUE(closed);
  // Malformed request lines.
  for (std::string_view line :
       {std::string_view("GARBAGE\r\n\r\n"), std::string_view("GET /healthz HTTP/9.9\r\n\r\n"),
        std::string_view("GET\r\n\r\n"), std::string_view("GET /healthz\r\n\r\n"),
        std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),
        std::string_view("G\0T / HTTP/1.1\r\n\r\n", 18)}) {
    s = Hostile(port, line, &closed);
    EXPECT_EQ(s, 400) << "request line: " << line;
    EXPECT_TRUE(closed) << "request line: " << line;
  }
  // Bad Content-Length values.
  for (std::string cl : {"abc", "-1", "1e3", "99999999999999999999999", "5, 6"}) {
    s = Hostile(port,
                "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: " + cl +
                    "\r\n\r\napikey.9.success:1|c",
                &closed);
    EXPECT_TRUE(s == 400 || s == 413) << "Content-Length: " << cl << " answered " << s;
    EXPECT_TRUE(closed) << "Content-Length: " << cl;
  }
  // Two different Content-Length headers (request smuggling shape).
  s = Hostile(port,
              "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nContent-Length: 5"
              "\r\n\r\napikey.9.success:1|c",
              &closed);
  EXPECT_EQ(s, 400);
  EXPECT_TRUE(closed);
  // Content-Length larger than the body sent, then silence: a slow client, closed by the
  // request timeout at the latest, never answered as if complete.
  {
    RawConnection c(port, 2000);
    c.Send(
        "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\napikey.9.success:1|c");
    HttpResult r = c.ReadResponse();  // times out after 2 s, or the connection closes
    EXPECT_TRUE(r.status == 0 || r.status == 400) << r.status;
  }

  // The slowloris has been trickling for a while now; others are still served. Not
  // synchronisation: time under attack is what the good client must get through.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_GE(slow_bytes.load(), 3);
  EXPECT_EQ(Http(port, "GET", "/healthz").status, 200);

  // Every idle connection and the slowloris are closed by tallyd's request timeout (30 s by
  // default); wait for them, with a margin, while the good client keeps going.
  auto deadline = Clock::now() + std::chrono::seconds(45);
  size_t idle_closed = 0;
  for (auto& c : idle) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (c->WaitClosed(static_cast<int>(std::max<int64_t>(left.count(), 1)))) {
      ++idle_closed;
    }
  }
  EXPECT_EQ(idle_closed, idle.size()) << "idle connections left open past the request timeout";
  const auto slow_left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  EXPECT_TRUE(WaitUntil([&] { return slow_closed.load(); },
                        static_cast<int>(std::max<int64_t>(slow_left.count(), 1)), 100))
      << "the slowloris was never cut off";
  slow_stop = true;
  slowloris.join();

  good.Join();
  EXPECT_EQ(good.failed.load(), 0);
  EXPECT_GT(good.ok.load(), 20);
  EXPECT_LT(good.slowest_ms.load(), 2000) << "a good client waited on hostile ones";
  // Only the good client's lines counted: nothing from a refused request.
  WaitForTotal(port, good.ingested.load(), 5000);
  HttpResult sum = Http(port, "GET", "/admin/apikey-stats/summary");
  EXPECT_EQ(boost::json::parse(sum.body).at("total_requests").to_number<int64_t>(),
            good.ingested.load());
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// Past --max-connections, a new connection is refused with 503 and closed, and once the
// holders go away tallyd serves new clients again.
TEST(FaultHttpClients, ConnectionCapRefusesExtraClientsThenRecovers) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--max-connections", "20"});
  const uint16_t port = tallyd.http_port();
  std::vector<std::unique_ptr<RawConnection>> held;
  // Each holder proves it is accepted (answered) before the next opens.
  for (int i = 0; i < 20; ++i) {
    held.push_back(std::make_unique<RawConnection>(port, 5000));
    ASSERT_EQ(held.back()->Request("GET", "/healthz").status, 200) << "holder " << i;
  }
  for (int i = 0; i < 5; ++i) {
    RawConnection extra(port, 5000);
    HttpResult r = extra.Request("GET", "/healthz");
    EXPECT_TRUE(r.status == 503 || r.status == 0) << "extra client answered " << r.status;
    EXPECT_TRUE(extra.WaitClosed(5000));
  }
  held.clear();
  // The held connections are gone; new clients are served again.
  EXPECT_TRUE(WaitUntil([&] { return Http(port, "GET", "/healthz").status == 200; }, 2000, 20));
  // Scraped once the holders are gone: while every connection is held, /metrics itself
  // would be refused.
  std::optional<double> refused = ScrapeMetric(port, "tallyd_http_connections_refused_total");
  ASSERT_TRUE(refused.has_value()) << "/metrics lacks tallyd_http_connections_refused_total";
  EXPECT_GE(*refused, 5);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

}  // namespace
}  // namespace tally::testing
