#include "daemon/http/session.h"

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "daemon/http/framing.h"

namespace tally::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

using RequestParser = http::request_parser<IncrementalBody>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection over `Stream`: beast::tcp_stream, or beast::ssl_stream over it (the TLS
// listener, --http-tls-cert), which first completes the handshake within the request timeout.
template <typename Stream>
class SessionOf : public Session {
 public:
  SessionOf(tcp::socket socket, HttpListener& listener)
      : stream_(MakeStream(std::move(socket), listener)),
        listener_(listener),
        connections_(listener.connections_) {}

  // Touches only the Daemon-owned connection count, not the listener: a session whose
  // handler was still pending when its io_context was cut short (the stop's deadline) is
  // destroyed with the io_context, after the listener.
  ~SessionOf() override {
    // Relaxed: a bound on connections; nothing is published through it.
    connections_.fetch_sub(1, std::memory_order_relaxed);
  }

  void Start() override {
    if constexpr (kTls) {
      Lowest().expires_after(listener_.limits_.request_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = Self()](beast::error_code ec) {
                                if (ec) {
                                  return self->Close();
                                }
                                self->DoRead();
                              });
    } else {
      DoRead();
    }
  }

  // Called when the listener stops. A connection waiting for a new request closes now; one
  // in the middle of a request gets a short deadline to finish sending it; one whose request
  // is being handled closes after its answer (keep-alive is off once stopping).
  void OnStop() override {
    if (busy_) {
      return;
    }
    if (!parser_->got_some() && buffer_.size() == 0) {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      Lowest().close();
      return;
    }
    Lowest().expires_after(kStopGrace);
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  static Stream MakeStream(tcp::socket socket, HttpListener& listener) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *listener.tls_);
    } else {
      return Stream(std::move(socket));
    }
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  std::shared_ptr<SessionOf> Self() {
    return std::static_pointer_cast<SessionOf>(shared_from_this());
  }

  static constexpr std::chrono::seconds kStopGrace{5};
  static constexpr std::chrono::seconds kLinger{2};
  static constexpr size_t kLingerBytes = 8 * 1024 * 1024;
  static constexpr size_t kReadSize = 64 * 1024;  // one body read

  void DoRead() {
    busy_ = false;
    head_ = false;
    parser_.emplace();
    parser_->header_limit(listener_.limits_.header_limit);
    parser_->body_limit(listener_.limits_.max_body_bytes);
    Lowest().expires_after(listener_.limits_.request_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = Self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // The header is in: check its framing, then read the body, after "100 Continue" when the
  // client waits for it and the handler admits the request.
  void OnHeader(beast::error_code ec) {
    if (ec) {
      return OnRead(ec);
    }
    http::request_header<>& header = parser_->get().base();
    if (std::optional<Refusal> refusal = CheckFraming(header)) {
      return Fail(refusal->status, std::string(refusal->message));
    }
    if (std::optional<std::string> origin = OriginForm(header.target())) {
      header.target(*origin);
    }
    if (header.method() == http::verb::head) {
      head_ = true;
      header.method(http::verb::get);
    }
    if (parser_->is_done()) {
      return OnRead(ec);
    }
    // A body follows: the handler screens the header first (route, method, token,
    // stopping), so a refused request is answered at once and its body never buffered.
    // The connection then closes, discarding a bounded amount of what is still arriving.
    if (std::optional<Response> refused = listener_.handler_.Screen(header)) {
      busy_ = true;
      keep_alive_ = false;
      version_ = header.version();
      failed_ = true;
      return Write(std::move(*refused));
    }
    // RFC 9110 10.1.1: an HTTP/1.0 client's 100-continue expectation is ignored.
    auto expect = header.find(http::field::expect);
    if (header.version() >= 11 && expect != header.end() &&
        beast::iequals(expect->value(), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                               [self = Self()](beast::error_code ec, size_t) {
                                 if (ec) {
                                   return self->Close();
                                 }
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  // Feeds the body to the parser as it arrives, one read at a time, so that what a chunked
  // body's framing holds back is checked after every read (CheckPendingChunkFraming).
  void ReadBody() {
    parser_->eager(true);
    while (buffer_.size() > 0 && !parser_->is_done()) {
      beast::error_code ec;
      size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        break;
      }
      if (ec) {
        return OnRead(ec);
      }
      if (used == 0) {
        break;
      }
    }
    if (parser_->is_done()) {
      return OnRead({});
    }
    if (parser_->chunked()) {
      const auto* data = static_cast<const char*>(buffer_.data().data());
      if (std::optional<Refusal> refusal = CheckPendingChunkFraming(
              std::string_view(data, buffer_.size()), listener_.limits_.header_limit)) {
        return Fail(refusal->status, std::string(refusal->message));
      }
    }
    stream_.async_read_some(buffer_.prepare(kReadSize),
                            [self = Self()](beast::error_code ec, size_t n) {
                              if (ec) {
                                return self->OnRead(ec);
                              }
                              self->buffer_.commit(n);
                              self->ReadBody();
                            });
  }

  void OnRead(beast::error_code ec) {
    busy_ = true;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor || ec == asio::error::eof) {
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
    auto parsed = parser_->release();
    Request req(std::move(parsed.base()), std::move(parsed.body()));
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    if (req.target() == "*") {
      return Write(AsteriskResponse(req.method()));
    }
    // The work guard keeps this thread's io_context running until the answer is written,
    // even when the handler answers later from another thread and nothing else is pending
    // (the orderly stop waits for exactly that).
    auto self = Self();
    // Exactly one of the two is called; each carries a guard (a copy of the same work).
    auto guard = asio::make_work_guard(stream_.get_executor());
    listener_.handler_.HandleStreaming(
        std::move(req),
        [self, guard](Response res) mutable {
          asio::post(self->stream_.get_executor(),
                     [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
          guard.reset();
        },
        [self, guard](Response head, BodySource body) mutable {
          asio::post(self->stream_.get_executor(),
                     [self, head = std::move(head), body = std::move(body), guard]() mutable {
                       self->WriteStream(std::move(head), std::move(body), std::move(guard));
                     });
          guard.reset();
        });
  }

  // "OPTIONS *" asks about the server as a whole: 204 with every method tallyd serves. The
  // asterisk with another method is no resource.
  static Response AsteriskResponse(http::verb method) {
    if (method != http::verb::options) {
      return JsonError(http::status::bad_request, "the target * is only for OPTIONS");
    }
    Response res{http::status::no_content, 11};
    res.set(http::field::allow, "GET, HEAD, POST, PUT, DELETE, OPTIONS");
    return res;
  }

  // A streamed answer: the header, then one chunk per piece, then the last chunk. The work
  // guard keeps this thread running while a piece is being produced elsewhere.
  using Guard = asio::executor_work_guard<tcp::socket::executor_type>;
  void WriteStream(Response head, BodySource body, Guard guard) {
    const bool keep_alive = keep_alive_ && head.keep_alive() && !listener_.stopping_;
    listener_.counters_.CountStatus(static_cast<unsigned>(head.result_int()));
    auto header = std::make_shared<http::response<http::empty_body>>(head.result(), version_);
    for (const auto& field : head) {
      if (field.name() != http::field::content_length &&
          field.name() != http::field::transfer_encoding) {
        header->set(field.name_string(), field.value());
      }
    }
    header->keep_alive(keep_alive);
    header->chunked(true);
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*header);
    Lowest().expires_after(listener_.limits_.request_timeout);
    http::async_write_header(stream_, *sr,
                             [self = Self(), header, sr, body = std::move(body), keep_alive,
                              guard = std::move(guard)](beast::error_code ec, size_t) mutable {
                               if (ec) {
                                 return self->Close();
                               }
                               if (self->head_) {
                                 // HEAD: the GET's header (chunked) without its body; the source is
                                 // never asked.
                                 return keep_alive ? self->DoRead() : self->Close();
                               }
                               self->NextPiece(std::make_shared<BodySource>(std::move(body)),
                                               keep_alive, std::move(guard));
                             });
  }

  void NextPiece(std::shared_ptr<BodySource> body, bool keep_alive, Guard guard) {
    auto self = Self();
    (*body)([self, body, keep_alive, guard](std::optional<std::string> piece) mutable {
      asio::post(self->stream_.get_executor(), [self, body, keep_alive, guard,
                                                piece = std::move(piece)]() mutable {
        self->WritePiece(std::move(body), std::move(piece), keep_alive, std::move(guard));
      });
    });
  }

  void WritePiece(std::shared_ptr<BodySource> body, std::optional<std::string> piece,
                  bool keep_alive, Guard guard) {
    if (!piece) {
      return Close();  // aborted: no last chunk, the client sees a truncated body
    }
    Lowest().expires_after(listener_.limits_.request_timeout);
    if (piece->empty()) {
      return asio::async_write(
          stream_, http::make_chunk_last(),
          [self = Self(), keep_alive, guard = std::move(guard)](beast::error_code ec, size_t) {
            if (ec || !keep_alive) {
              return self->Close();
            }
            self->DoRead();
          });
    }
    auto data = std::make_shared<std::string>(std::move(*piece));
    asio::async_write(stream_, http::make_chunk(asio::buffer(*data)),
                      [self = Self(), body = std::move(body), data, keep_alive,
                       guard = std::move(guard)](beast::error_code ec, size_t) mutable {
                        if (ec) {
                          return self->Close();
                        }
                        self->NextPiece(std::move(body), keep_alive, std::move(guard));
                      });
  }

  // Answers an unreadable request and closes: the stream cannot be resynchronized.
  void Fail(http::status status, const std::string& message) {
    busy_ = true;
    keep_alive_ = false;
    version_ = 11;
    failed_ = true;
    Write(JsonError(status, message));
  }

  void Write(Response res) {
    bool keep_alive = keep_alive_ && !listener_.stopping_;
    res.version(version_);
    res.keep_alive(keep_alive);
    const unsigned status = res.result_int();
    if (status / 100 == 1 || status == 204 || status == 304) {
      res.erase(http::field::content_length);  // RFC 9110 §8.6: these carry no body
    }
    listener_.counters_.CountStatus(status);
    auto sp = std::make_shared<Response>(std::move(res));
    auto on_written = [self = Self(), keep_alive](beast::error_code ec, size_t) {
      if (ec) {
        return self->Close();
      }
      if (!keep_alive) {
        return self->failed_ ? self->Linger() : self->Close();
      }
      self->DoRead();
    };
    Lowest().expires_after(listener_.limits_.request_timeout);
    if (head_) {
      // The GET's header, Content-Length included, without its body (RFC 9110 §9.3.2).
      auto serializer = std::make_shared<http::response_serializer<http::string_body>>(*sp);
      return http::async_write_header(
          stream_, *serializer,
          [sp, serializer, on_written = std::move(on_written)](
              beast::error_code ec, size_t n) mutable { on_written(ec, n); });
    }
    http::async_write(stream_, *sp,
                      [sp, on_written = std::move(on_written)](
                          beast::error_code ec, size_t n) mutable { on_written(ec, n); });
  }

  // After an error answer the client may still be sending (a body past the limit): closing
  // now would reset the connection and could destroy the answer in flight. Stop sending,
  // then discard what arrives for a short while before closing.
  // What is discarded is never read, so every lingering session of a thread shares one
  // buffer: many refused clients still sending cost no memory each.
  void Linger() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest().expires_after(kLinger);
    buffer_.clear();
    buffer_.shrink_to_fit();
    parser_.reset();
    DiscardSome();
  }

  void DiscardSome() {
    // Per thread: a session's reads all run on its own thread (one io_context each).
    thread_local std::array<char, 64 * 1024> discard;
    stream_.async_read_some(asio::buffer(discard), [self = Self()](beast::error_code ec, size_t n) {
      self->discarded_ += n;
      if (ec || self->discarded_ > kLingerBytes) {
        return self->Close();
      }
      self->DiscardSome();
    });
  }

  void Close() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest().close();
  }

  Stream stream_;
  HttpListener& listener_;
  std::atomic<uint32_t>& connections_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  size_t discarded_ = 0;
  bool keep_alive_ = false;
  bool failed_ = false;
  unsigned version_ = 11;
  bool busy_ = false;
  bool head_ = false;  // the request was HEAD, handled as GET: the answer is sent bodiless
};

std::shared_ptr<Session> MakeSession(tcp::socket socket, HttpListener& listener) {
  if (listener.tls_) {
    return std::make_shared<SessionOf<TlsStream>>(std::move(socket), listener);
  }
  return std::make_shared<SessionOf<beast::tcp_stream>>(std::move(socket), listener);
}

}  // namespace tally::daemon
