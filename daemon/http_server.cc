#include "daemon/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <optional>

#include "daemon/json_writer.h"
#include "daemon/log.h"

namespace tally::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

Response JsonResponse(http::status status, std::string body) {
  Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response JsonError(http::status status, std::string_view message) {
  JsonWriter w;
  w.BeginObject().Key("error").String(message).EndObject();
  return JsonResponse(status, w.Take());
}

core::StatusOr<int> OpenTcpListener(const Endpoint& ep) {
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(ep.host, ec), ep.port);
  if (ec) {
    return core::Status::InvalidArgument("bad address " + ep.host);
  }
  asio::io_context scratch;
  tcp::acceptor acceptor(scratch);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    int one = 1;
    ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return core::Status::IoError("http listen " + ep.ToString() + ": " + ec.message());
  }
  return acceptor.release();
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpListener& listener)
      : stream_(std::move(socket)), listener_(listener) {}

  ~Session() {
    // Relaxed: a bound on connections; nothing is published through it.
    listener_.connections_.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() { DoRead(); }

  // Closes the connection if it is waiting for a new request; a busy one closes after its
  // answer because the listener is stopping.
  void CloseIfIdle() {
    if (!busy_ && buffer_.size() == 0) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.close();
    }
  }

 private:
  void DoRead() {
    busy_ = false;
    parser_.emplace();
    parser_->header_limit(listener_.limits_.header_limit);
    parser_->body_limit(listener_.limits_.max_body_bytes);
    stream_.expires_after(listener_.limits_.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    busy_ = true;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Fail(http::status::payload_too_large, "request body too large");
    }
    if (ec == http::error::header_limit) {
      return Fail(http::status::request_header_fields_too_large, "request headers too large");
    }
    if (ec) {
      return Fail(http::status::bad_request, "malformed HTTP request: " + ec.message());
    }
    Request req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    auto self = shared_from_this();
    listener_.handler_.Handle(std::move(req), [self](Response res) {
      asio::post(self->stream_.get_executor(),
                 [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    });
  }

  // Answers an unreadable request and closes: the stream cannot be resynchronized.
  void Fail(http::status status, const std::string& message) {
    keep_alive_ = false;
    version_ = 11;
    Write(JsonError(status, message));
  }

  void Write(Response res) {
    bool keep_alive = keep_alive_ && !listener_.stopping_;
    res.version(version_);
    res.keep_alive(keep_alive);
    listener_.counters_.CountStatus(static_cast<unsigned>(res.result_int()));
    auto sp = std::make_shared<Response>(std::move(res));
    stream_.expires_after(listener_.limits_.request_timeout);
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), sp, keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) {
                          return self->Close();
                        }
                        self->DoRead();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpListener& listener_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  bool busy_ = false;
};

HttpListener::HttpListener(asio::io_context& io, int fd, Handler& handler, const HttpLimits& limits,
                           std::atomic<uint32_t>& connections, ThreadCounters& counters)
    : io_(io),
      acceptor_(io, tcp::v4(), fd),
      handler_(handler),
      limits_(limits),
      connections_(connections),
      counters_(counters) {
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
    if (!ec) {
      // Relaxed: the cap is approximate under races by at most the number of threads.
      if (connections_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_connections) {
        connections_.fetch_sub(1, std::memory_order_relaxed);
        counters_.connections_refused.Add(1);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        auto session = std::make_shared<Session>(std::move(socket), *this);
        sessions_.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions_.push_back(session);
        session->Start();
      }
    } else if (ec == asio::error::no_descriptors) {
      // Out of file descriptors: count it and keep accepting after a breath.
      counters_.accept_errors.Add(1);
    }
    Accept();
  });
}

void HttpListener::Stop() {
  stopping_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  for (const std::weak_ptr<Session>& w : sessions_) {
    if (std::shared_ptr<Session> s = w.lock()) {
      s->CloseIfIdle();
    }
  }
}

}  // namespace tally::daemon
