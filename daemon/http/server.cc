#include "daemon/http/server.h"

#include <sys/socket.h>

#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <string>

#include "daemon/http/session.h"
#include "daemon/log.h"

namespace tally::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

HttpListener::HttpListener(asio::io_context& io, int fd, Handler& handler, const HttpLimits& limits,
                           std::atomic<uint32_t>& connections, ThreadCounters& counters)
    : io_(io),
      acceptor_(io, tcp::v4(), fd),
      handler_(handler),
      limits_(limits),
      connections_(connections),
      counters_(counters),
      backoff_(io) {
  // The protocol argument only tags the descriptor; fix it for IPv6 listeners.
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
      addr.ss_family == AF_INET6) {
    acceptor_.release();
    acceptor_.assign(tcp::v6(), fd);
  }
}

HttpListener::~HttpListener() = default;

void HttpListener::Start() { Accept(); }

void HttpListener::Accept() {
  acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) {
      return;
    }
    if (ec) {
      counters_.accept_errors.Add(1);
      // Out of descriptors (EMFILE, ENFILE) or memory: the pending connection stays in the
      // backlog, so accepting again at once would spin. Log it rate-limited and try again
      // after a breath. Other errors (a client that reset before the accept) are per
      // connection: carry on at once.
      const bool exhausted = ec == asio::error::no_descriptors || ec.value() == ENFILE ||
                             ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
      if (!exhausted) {
        return Accept();
      }
      static RateLimiter limiter(std::chrono::seconds(10));
      if (uint64_t suppressed = 0; limiter.Allow(&suppressed)) {
        LogHttp()->warn("accept failed: {} ({} more since the last message); retrying in {} ms",
                        ec.message(), suppressed, kAcceptBackoff.count());
      }
      backoff_.expires_after(kAcceptBackoff);
      backoff_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !stopping_) {
          Accept();
        }
      });
      return;
    }
    // Relaxed: the cap is approximate under races by at most the number of threads.
    if (connections_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_connections) {
      connections_.fetch_sub(1, std::memory_order_relaxed);
      counters_.connections_refused.Add(1);
      // Best effort, never blocking: tell the client why before closing.
      static const std::string kBusy = [] {
        std::string body = R"({"error":"too many connections"})";
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      }();
      beast::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(asio::buffer(kBusy.data(), kBusy.size()), ignored);
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      socket.close(ignored);
    } else {
      std::shared_ptr<Session> session = MakeSession(std::move(socket), *this);
      sessions_.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
      sessions_.push_back(session);
      session->Start();
    }
    Accept();
  });
}

void HttpListener::Stop() {
  stopping_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  backoff_.cancel();
  for (const std::weak_ptr<Session>& w : sessions_) {
    if (std::shared_ptr<Session> s = w.lock()) {
      s->OnStop();
    }
  }
}

}  // namespace tally::daemon
