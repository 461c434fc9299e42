// Request handling edges against the real tallyd: HEAD, 204 framing, absolute-form targets,
// OPTIONS *, "Expect: 100-continue" before auth (and never for HTTP/1.0), unauthorized bodies
// that are never buffered, and a refused ingest that counts nothing.
//
// Guarantees checked: an answer never carries bytes its framing does not announce (a
// kept-alive connection stays in step after HEAD and 204), a client that will be refused
// never gets "100 Continue", and a request answered 4xx applies nothing.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/sanitized.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

// A raw connection that reads an answer's header and, separately, exactly as many body bytes
// as asked: a HEAD answer announces a length it does not send.
class Wire {
 public:
  explicit Wire(uint16_t port) : fd_(ConnectLoopback(SOCK_STREAM, port)) {}
  ~Wire() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  bool Send(std::string_view bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // The status and lower-cased headers of the next answer; status 0 on close or timeout.
  HttpResult ReadHeader() {
    HttpResult r;
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) {
        return r;
      }
    }
    std::string head = in_.substr(0, end);
    in_.erase(0, end + 4);
    r.status = std::atoi(head.c_str() + 9);
    for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      pos = next;
    }
    return r;
  }
  // Exactly `n` body bytes ("" on close or timeout).
  std::string ReadBody(size_t n) {
    while (in_.size() < n) {
      if (!Fill()) {
        return "";
      }
    }
    std::string body = in_.substr(0, n);
    in_.erase(0, n);
    return body;
  }
  // A whole answer with a Content-Length body.
  HttpResult Read() {
    HttpResult r = ReadHeader();
    if (r.status != 0 && r.headers.count("content-length") != 0) {
      r.body = ReadBody(std::stoul(r.headers["content-length"]));
    }
    return r;
  }
  // True when tallyd closes (EOF or reset) within 5 s; bytes that arrive meanwhile are kept.
  bool Closed() {
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
         std::chrono::steady_clock::now() < until;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) {
        continue;
      }
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        return true;
      }
      in_.append(buf, static_cast<size_t>(n));
    }
    return false;
  }
  // Bytes received and not yet read as an answer.
  const std::string& unread() const { return in_; }

 private:
  bool Fill() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) {
      return false;
    }
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string in_;
};

TEST(HttpRequests, HeadIsGetWithoutTheBody) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), Tokens());
  const std::string get_body = Http(tallyd.http_port(), "GET", "/healthz").body;
  Wire w(tallyd.http_port());
  ASSERT_TRUE(w.Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResult head = w.ReadHeader();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], std::to_string(get_body.size()));
  // A method the path does not serve: 405 with Allow, still without a body.
  ASSERT_TRUE(w.Send("HEAD /v1/ingest HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResult not_allowed = w.ReadHeader();
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_EQ(not_allowed.headers["allow"], "POST");
  // The next answer on the connection starts right where the header ended.
  ASSERT_TRUE(w.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResult get = w.Read();
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, get_body);
  // GET routes name HEAD among their methods.
  HttpResult put = Http(tallyd.http_port(), "PUT", "/healthz");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.headers["Allow"], "GET, HEAD");
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

TEST(HttpRequests, NoContentCarriesNoContentLength) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), Tokens());
  const uint16_t port = tallyd.http_port();
  HttpResult created = Http(port, "POST", "/admin/provider-groups",
                            R"({"name":"g","type":"t","base_url":"u"})", kAdmin);
  ASSERT_EQ(created.status, 201);
  const int64_t id = boost::json::parse(created.body).at("ID").to_number<int64_t>();
  Wire w(port);
  ASSERT_TRUE(w.Send("DELETE /admin/provider-groups/" + std::to_string(id) +
                     " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer adm-token\r\n\r\n"));
  HttpResult deleted = w.ReadHeader();
  EXPECT_EQ(deleted.status, 204);
  EXPECT_EQ(deleted.headers.count("content-length"), 0U);
  ASSERT_TRUE(w.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(w.Read().status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

TEST(HttpRequests, AbsoluteFormTargetsAndOptionsAsterisk) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), Tokens());
  Wire w(tallyd.http_port());
  ASSERT_TRUE(w.Send("GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  EXPECT_EQ(w.Read().status, 200);
  ASSERT_TRUE(
      w.Send("GET HTTP://x:1/admin/apikey-stats/summary?group_id=0 HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer adm-token\r\n\r\n"));
  EXPECT_EQ(w.Read().status, 200);
  ASSERT_TRUE(w.Send("GET http://x?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(w.Read().status, 302);  // "/?a=1": served as the path "/", the status page's redirect
  ASSERT_TRUE(w.Send("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResult options = w.ReadHeader();
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.headers["allow"], "GET, HEAD, POST, PUT, DELETE, OPTIONS");
  EXPECT_EQ(options.headers.count("content-length"), 0U);
  ASSERT_TRUE(w.Send("GET * HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(w.Read().status, 400);
  ASSERT_TRUE(w.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(w.Read().status, 200);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// "100 Continue" only once the route and the token admit the request; a refused client gets
// its final status at once, and the connection closes without its body being read.
TEST(HttpRequests, ContinueOnlyAfterAuth) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), Tokens());
  const std::string body = "apikey.4.success:1|c";
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  struct Case {
    std::string head;
    int status;
  };
  for (const Case& k : {
           Case{"POST /v1/ingest HTTP/1.1\r\nHost: x\r\n", 401},
           Case{"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Internal-Token: wrong\r\n", 401},
           Case{"POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nX-Internal-Token: int-token\r\n", 404},
           Case{"PUT /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Internal-Token: int-token\r\n", 405},
           Case{"POST /admin/flush HTTP/1.1\r\nHost: x\r\nX-Internal-Token: int-token\r\n", 401},
       }) {
    Wire w(tallyd.http_port());
    ASSERT_TRUE(w.Send(k.head + length + "Expect: 100-continue\r\n\r\n"));
    HttpResult r = w.Read();
    EXPECT_EQ(r.status, k.status) << k.head;
    EXPECT_EQ(r.headers["connection"], "close") << k.head;
    EXPECT_TRUE(w.Closed()) << k.head;
    EXPECT_EQ(w.unread(), "") << k.head;
  }
  // Admitted: 100 Continue, then the body, then the answer.
  Wire w(tallyd.http_port());
  ASSERT_TRUE(w.Send("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Internal-Token: int-token\r\n" +
                     length + "Expect: 100-continue\r\n\r\n"));
  EXPECT_EQ(w.ReadHeader().status, 100);
  ASSERT_TRUE(w.Send(body));
  EXPECT_EQ(w.Read().status, 202);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A client without the token never gets its body read: it is answered 401 on the header
// alone, with Connection: close, while most of its declared body is still unsent, and
// tallyd's memory does not grow with the bodies (fixed and chunked alike).
TEST(HttpRequests, UnauthorizedBodiesAreNeverBuffered) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), Tokens());
  const uint16_t port = tallyd.http_port();
  constexpr int kClients = 50;
  constexpr size_t kSent = 1024 * 1024;  // of a declared 4 MiB
  const std::string part(kSent, 'x');
  const int64_t rss_before = ProcessRssKb(tallyd.pid());
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < kClients; ++i) {
    auto& c = clients.emplace_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(c->connected());
    const bool chunked = i % 2 == 1;
    std::string head = "POST /v1/ingest HTTP/1.1\r\nHost: x\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n100000\r\n"
                    : "Content-Length: 4194304\r\n\r\n";
    ASSERT_TRUE(c->Send(head));
    ASSERT_TRUE(c->Send(part)) << "client " << i;
  }
  // Every body byte sent so far has reached tallyd (it read or discarded them to let the
  // sends finish); none of them may be held.
  const int64_t growth_kb = ProcessRssKb(tallyd.pid()) - rss_before;
  if (!kSanitized) {
    EXPECT_LT(growth_kb, 8 * 1024) << "RSS grew by " << growth_kb << " KiB";
  }
  for (int i = 0; i < kClients; ++i) {
    HttpResult r = clients[i]->ReadResponse();
    ASSERT_EQ(r.status, 401) << "client " << i << ": no answer before the whole body";
    EXPECT_EQ(r.headers["connection"], "close");
  }
  clients.clear();
  HttpResult ok =
      Http(port, "POST", "/v1/ingest", "apikey.7.success:1|c", {{"X-Internal-Token", "int-token"}});
  EXPECT_EQ(ok.status, 202) << ok.body;
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// RFC 9110 10.1.1: an HTTP/1.0 request's "Expect: 100-continue" is ignored; its answer is
// the final one, never "100 Continue".
TEST(HttpRequests, NoContinueForHttp10) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), Tokens());
  const std::string body = "apikey.4.success:1|c";
  Wire w(tallyd.http_port());
  ASSERT_TRUE(
      w.Send("POST /v1/ingest HTTP/1.0\r\nX-Internal-Token: int-token\r\n"
             "Content-Length: " +
             std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n" + body));
  HttpResult r = w.Read();
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(w.Closed());
  EXPECT_EQ(w.unread(), "");
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A refused ingest counts nothing: after a 400 for its query, a corrected retry counts its
// lines once.
TEST(HttpRequests, RefusedIngestCountsNothing) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  const uint16_t port = tallyd.http_port();
  for (std::string query : {"?wait=bogus", "?wait", "?wait=", "?wait=FLUSH"}) {
    EXPECT_EQ(Http(port, "POST", "/v1/ingest" + query, "apikey.6.success:1|c").status, 400)
        << query;
  }
  EXPECT_EQ(Http(port, "POST", "/v1/ingest?wait=flush", "apikey.6.success:1|c").status, 200);
  HttpResult sum = Http(port, "GET", "/admin/apikey-stats/summary");
  EXPECT_EQ(boost::json::parse(sum.body).at("total_requests").to_number<int64_t>(), 1);
  EXPECT_EQ(ScrapeMetric(port, R"(tallyd_lines_total{transport="http",result="accepted"})"), 1.0);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

}  // namespace
}  // namespace tally::testing
