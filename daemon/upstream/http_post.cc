#include "daemon/upstream/http_post.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>

namespace tally::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using core::Status;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxAnswerBytes = 1 << 20;

// The exchange on an established stream (plain or TLS): write the request, read the answer.
template <typename Stream>
asio::awaitable<void> Exchange(Stream& stream, bhttp::request<bhttp::string_body>& req,
                               PostResult* out) {
  auto [wec, written] = co_await bhttp::async_write(stream, req, kTuple);
  if (wec) {
    out->error = "write: " + wec.message();
    co_return;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  auto [rec, read] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
  if (rec) {
    out->error = "read: " + rec.message();
    co_return;
  }
  const auto& res = parser.get();
  out->kind = PostResult::Kind::kAnswered;
  out->status = res.result_int();
  out->body = res.body();
  if (auto it = res.find(bhttp::field::retry_after); it != res.end()) {
    uint64_t seconds = 0;
    std::string_view v = it->value();
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
    if (ec == std::errc() && end == v.data() + v.size()) {
      out->retry_after = std::chrono::seconds(std::min<uint64_t>(seconds, 3600));
    }
  }
}

}  // namespace

core::StatusOr<std::unique_ptr<HttpPost>> HttpPost::Create(UpstreamTarget target) {
  std::unique_ptr<HttpPost> post(new HttpPost(std::move(target)));
  if (post->target_.tls) {
    post->ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    post->ssl_->set_verify_mode(asio::ssl::verify_peer, ec);
    if (post->target_.ca_file.empty()) {
      post->ssl_->set_default_verify_paths(ec);
    } else {
      post->ssl_->load_verify_file(post->target_.ca_file, ec);
    }
    if (ec) {
      return Status::InvalidArgument("--forward-ca-file: cannot load the CA bundle: " +
                                     ec.message());
    }
  }
  return post;
}

HttpPost::HttpPost(UpstreamTarget target) : target_(std::move(target)) {}

void HttpPost::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  io_.stop();
}

PostResult HttpPost::Post(const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::string& body) {
  PostResult out;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) {
      out.error = "stopping";
      return out;
    }
    io_.restart();
  }
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, path, 11};
  req.set(bhttp::field::host, target_.host);
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::user_agent, "tallyd-forwarder");
  for (const auto& [name, value] : headers) {
    req.set(name, value);
  }
  req.body() = body;
  req.prepare_payload();
  const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
  bool timed_out = false;

  auto run = [&]() -> asio::awaitable<void> {
    asio::ip::tcp::resolver resolver(io_);
    auto [rec, endpoints] = co_await resolver.async_resolve(target_.host, target_.port, kTuple);
    if (rec) {
      out.error = "resolve " + target_.host + ": " + rec.message();
      co_return;
    }
    beast::tcp_stream tcp(io_);
    tcp.expires_at(deadline);
    auto [cec, ep] = co_await tcp.async_connect(endpoints, kTuple);
    if (cec) {
      timed_out = cec == beast::error::timeout;
      out.error = "connect: " + cec.message();
      co_return;
    }
    if (!target_.tls) {
      co_await Exchange(tcp, req, &out);
      timed_out =
          out.kind != PostResult::Kind::kAnswered && std::chrono::steady_clock::now() >= deadline;
      boost::system::error_code ignored;
      tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp), *ssl_);
    if (!SSL_set_tlsext_host_name(tls.native_handle(), target_.host.c_str())) {
      out.error = "TLS: cannot set the server name";
      co_return;
    }
    tls.set_verify_callback(asio::ssl::host_name_verification(target_.host));
    auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kTuple);
    if (hec) {
      timed_out = hec == beast::error::timeout;
      out.error = "TLS handshake: " + hec.message();
      co_return;
    }
    co_await Exchange(tls, req, &out);
    timed_out =
        out.kind != PostResult::Kind::kAnswered && std::chrono::steady_clock::now() >= deadline;
  };
  asio::co_spawn(io_, run(), asio::detached);
  io_.run();
  if (out.kind != PostResult::Kind::kAnswered) {
    out.kind = timed_out ? PostResult::Kind::kTimeout : PostResult::Kind::kConnection;
    if (out.error.empty()) {
      out.error = "stopping";
    }
  }
  return out;
}

}  // namespace tally::daemon
