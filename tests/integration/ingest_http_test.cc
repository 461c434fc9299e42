// The HTTP transport against the real binary: keep-alive with pipelining, the body limit
// (413), the header limit (431), a slow client not holding up others, the connection cap,
// and the stop (idle connections closed, a request finishing after the stop began gets 503).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

// A blocking loopback TCP client with a receive timeout.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{15, 0};  // generous: sanitizer builds on a loaded 2-core machine
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }
  uint16_t local_port() const {
    sockaddr_in local{};
    socklen_t len = sizeof local;
    return getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len) == 0 ? ntohs(local.sin_port)
                                                                            : 0;
  }
  bool Send(std::string_view bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads until `count` complete responses (by Content-Length) are in, EOF, or timeout.
  // Returns the status codes and bodies in order.
  std::vector<std::pair<int, std::string>> Read(size_t count) {
    std::vector<std::pair<int, std::string>> out;
    while (out.size() < count) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = buf_.find("Content-Length: ");
        size_t length = cl != std::string::npos && cl < end ? std::stoul(buf_.substr(cl + 16)) : 0;
        if (buf_.size() >= end + 4 + length) {
          out.emplace_back(std::stoi(buf_.substr(9, 3)), buf_.substr(end + 4, length));
          buf_.erase(0, end + 4 + length);
          continue;
        }
      }
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        break;
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
    return out;
  }
  // True if the server closes the connection within the receive timeout.
  bool Closed() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

TEST(IngestHttp, KeepAliveWithPipelinedRequestsAnsweredInOrder) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"));
  Client c(t.http_port());
  ASSERT_TRUE(c.connected());
  // Three requests in one write; the answers come back in order on the same connection.
  ASSERT_TRUE(c.Send(Post("/v1/ingest", "apikey.1.success:1|c") +
                     "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
                     Post("/v1/ingest?wait=flush", "apikey.1.failure:2|c\nx\n")));
  auto answers = c.Read(3);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].first, 202);
  EXPECT_EQ(answers[1].first, 404);
  EXPECT_EQ(answers[2].first, 200);
  EXPECT_EQ(answers[2].second, R"({"accepted":1,"ignored":0,"malformed":1,"refused":0})");
  // Still open for more.
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.Read(1).at(0).first, 200);
  EXPECT_NE(WaitForTotal(t.http_port(), 3).find(R"("total_requests":3)"), std::string::npos);
}

TEST(IngestHttp, BodyAndHeaderLimits) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), {"--max-body-bytes", "1024"});
  std::string big(2000, 'x');
  HttpResult r = Http(t.http_port(), "POST", "/v1/ingest", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, R"({"error":"request body too large"})");
  // Refused from the Content-Length alone, before the client sends the body.
  Client c(t.http_port());
  ASSERT_TRUE(c.Send("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"));
  auto answers = c.Read(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].first, 413);
  EXPECT_TRUE(c.Closed());

  HttpResult h = Http(t.http_port(), "GET", "/healthz", {}, {{"X-Big", std::string(20000, 'h')}});
  EXPECT_EQ(h.status, 431);
  EXPECT_EQ(Http(t.http_port(), "POST", "/v1/ingest", std::string(1000, '\n')).status, 202);
  // Garbage is a 400, and the daemon keeps serving.
  Client g(t.http_port());
  ASSERT_TRUE(g.Send("NOT HTTP AT ALL\r\n\r\n"));
  auto bad = g.Read(1);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].first, 400);
  EXPECT_EQ(Http(t.http_port(), "GET", "/healthz").status, 200);
}

TEST(IngestHttp, SlowAndIdleClientsDoNotHoldUpOthers) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"));
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<Client>(t.http_port()));
    ASSERT_TRUE(slow.back()->Send("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Le"));
  }
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<Client>(t.http_port()));  // idle: sends nothing
  }
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(Http(t.http_port(), "POST", "/v1/ingest", "apikey.5.success:1|c").status, 202);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // The slow ones can still finish.
  ASSERT_TRUE(slow[0]->Send("ngth: 20\r\n\r\napikey.5.success:1|c"));
  EXPECT_EQ(slow[0]->Read(1).at(0).first, 202);
}

TEST(IngestHttp, ConnectionCapAnswers503) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), {"--max-connections", "3"});
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Client>(t.http_port()));
    ASSERT_TRUE(held.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(held.back()->Read(1).size(), 1u);  // accepted and served: the session is live
  }
  Client over(t.http_port());
  auto answers = over.Read(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].first, 503);
  EXPECT_EQ(answers[0].second, R"({"error":"too many connections"})");
  held.pop_back();
  // Once one closes there is room again (the server notices the close asynchronously).
  EXPECT_TRUE(
      WaitUntil([&] { return Http(t.http_port(), "GET", "/healthz").status == 200; }, 5000));
}

TEST(IngestHttp, StopClosesIdleConnectionsAndAnswersPartialRequests) {
  TempDir dir;
  std::string data = dir.Sub("data");
  {
    TallydProcess t(data, {"--flush-interval-ms", "3600000"});
    Client idle(t.http_port());
    ASSERT_TRUE(idle.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(idle.Read(1).size(), 1u);
    Client partial(t.http_port());
    ASSERT_TRUE(partial.Send(Post("/v1/ingest", "apikey.8.success:4|c")));
    ASSERT_EQ(partial.Read(1).at(0).first, 202);
    ASSERT_TRUE(partial.Send("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"));
    // tallyd has read the head: nothing is left in its receive queue.
    ASSERT_TRUE(WaitUntil(
        [&] { return ReceiveQueueBytes("tcp", t.http_port(), partial.local_port()) == 0; }, 10000));
    kill(t.pid(), SIGTERM);
    EXPECT_TRUE(idle.Closed());
    // The request that completes after the stop began is refused, not lost: 503.
    ASSERT_TRUE(partial.Send("apikey.8.success:1|c"));
    auto answers = partial.Read(1);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].first, 503);
    EXPECT_TRUE(partial.Closed());
    EXPECT_EQ(t.Stop(), 0) << t.Log();
  }
  TallydProcess t(data);
  // The accepted 4 were flushed at stop; the refused 1 was not counted.
  EXPECT_NE(
      Http(t.http_port(), "GET", "/admin/apikey-stats/summary").body.find(R"("total_requests":4,)"),
      std::string::npos);
}

TEST(IngestHttp, SigtermDuringConcurrentIngestKeepsEveryAcknowledgedLine) {
  TempDir dir;
  std::string data = dir.Sub("data");
  std::atomic<int64_t> acknowledged{0};  // relaxed: summed after the threads are joined
  {
    TallydProcess t(data, {"--flush-interval-ms", "50"});
    std::vector<std::thread> clients;
    std::atomic<int> requests{0};
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        std::string body;
        for (int i = 0; i < 10; ++i) {
          body += "apikey." + std::to_string(1 + (c * 10 + i) % 7) + ".success:1|c\n";
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
          HttpResult r = Http(t.http_port(), "POST", "/v1/ingest", body);
          if (r.status == 202) {
            acknowledged.fetch_add(boost::json::parse(r.body).at("accepted").as_int64(),
                                   std::memory_order_relaxed);
            requests.fetch_add(1, std::memory_order_relaxed);
          } else if (r.status == 0 || r.status == 503) {
            return;  // stopped: refused, not accepted
          } else {
            ADD_FAILURE() << r.status << " " << r.body;
            return;
          }
        }
      });
    }
    EXPECT_TRUE(
        WaitUntil([&] { return requests.load(std::memory_order_relaxed) >= 200; }, 30000, 5));
    EXPECT_EQ(t.Stop(), 0) << t.Log();
    for (std::thread& th : clients) {
      th.join();
    }
  }
  TallydProcess t(data);
  HttpResult r = Http(t.http_port(), "GET", "/admin/apikey-stats/summary");
  EXPECT_EQ(boost::json::parse(r.body).at("total_requests").as_int64(), acknowledged.load());
  EXPECT_GE(acknowledged.load(), 2000);
}

}  // namespace
}  // namespace tally::testing
