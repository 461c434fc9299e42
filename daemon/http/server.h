// HttpListener and its sessions: HTTP/1.1 over Boost.Beast, one listener per I/O thread.
//
// Each I/O thread runs its own io_context with its own acceptor (SO_REUSEPORT), so a
// connection lives on one thread from accept to close and needs no strand. A session reads
// one request at a time (keep-alive; pipelined requests wait in its buffer and are answered
// in order), hands it to the Handler, and writes the answer, which may come later from
// another thread (wait=flush, store work): the answer is posted back to the session's thread,
// and a work guard keeps that thread running until it is written.
//
// Limits per connection: a deadline for reading each request and writing each answer (a
// slow or idle client only ever holds its own connection), a header limit (431), a body
// limit (413, checked against Content-Length before the body is read), and a cap on
// connections across all threads (503 and close past it). An accept error (EMFILE...) is
// counted and retried after a short backoff.
//
// Framing (RFC 9112), checked on the header before any body byte is read; each failure is
// answered and the connection closed, since the stream cannot be trusted after it:
//   - HTTP/1.1 needs exactly one Host header (400).
//   - Transfer-Encoding must be exactly "chunked" (400 when it does not end in chunked or
//     names chunked twice, 501 for another coding before chunked); with Content-Length, 400.
//   - A chunk-size line (with its extensions) or the trailer section longer than the header
//     limit is 400 or 431; a chunked body's lines must end in CRLF (a bare LF is 400). Memory
//     per connection stays within the header limit plus one 64 KiB read.
//   - The body is read incrementally: nothing is allocated from a declared Content-Length.
// Methods and targets: HEAD is answered as GET without the body (the GET's Content-Length);
// an absolute-form target ("http://host/path") is reduced to its path and query; "OPTIONS *"
// is answered 204 with the methods tallyd serves in Allow. 1xx, 204 and 304 answers carry no
// Content-Length.
// Screening: a request with a body is first put to Handler::Screen on its header alone
// (route, method, token, stopping); a refused one is answered at once with
// "Connection: close" and its body is never buffered (what still arrives is discarded, at
// most 8 MiB for 2 s, into one per-thread scratch buffer, before the close). A request
// without a body goes straight to the handler, which refuses it the same way but keeps the
// connection. "Expect: 100-continue" gets "100 Continue" only for an HTTP/1.1 request that
// Screen admitted; an HTTP/1.0 client's expectation is ignored (RFC 9110 10.1.1).
//
// Stop: the acceptor closes, idle connections close, a connection in the middle of sending a
// request gets a few seconds to finish it, and a request being handled is answered with
// keep-alive off.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "daemon/endpoint.h"
#include "daemon/metrics.h"

namespace tally::daemon {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
// Called exactly once with the answer, from any thread.
using Responder = std::function<void(Response)>;

// A streamed body (sent with Transfer-Encoding: chunked, so it is never held whole): the
// session calls the source on its own thread for the first piece and again each time the
// previous piece is written; the source calls `emit` exactly once per call, from any thread,
// with the next piece, with "" when the body is complete, or with nullopt to abort (the
// connection is closed without the final chunk, so the client sees a truncated body rather
// than a silently short one).
using EmitPiece = std::function<void(std::optional<std::string> piece)>;
using BodySource = std::function<void(EmitPiece emit)>;
// Answers with `head` (its status and fields; its body is ignored) and a streamed body.
// Only for HTTP/1.1 requests (chunked encoding). `head.keep_alive(false)` closes the
// connection after the body (a long-lived stream: GET /admin/events).
using StreamResponder = std::function<void(Response head, BodySource body)>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void Handle(Request request, Responder done) = 0;
  // Decides on a request's header alone, before its body is read: an answer refuses the
  // request (unknown path, method, token, stopping), nullopt lets it proceed to Handle().
  // Called on the session's thread for every request with a body, before any body byte is
  // read; must not block.
  virtual std::optional<Response> Screen(const http::request_header<>& header) {
    (void)header;
    return std::nullopt;
  }
  // As Handle; the handler may instead answer once through `stream`. The session calls this
  // one; the default ignores `stream`.
  virtual void HandleStreaming(Request request, Responder done, StreamResponder stream) {
    (void)stream;
    Handle(std::move(request), std::move(done));
  }
};

struct HttpLimits {
  uint64_t max_body_bytes = 4 * 1024 * 1024;
  uint32_t header_limit = 16 * 1024;
  std::chrono::seconds request_timeout{30};
  uint32_t max_connections = 10'000;
};

// Opens a listening TCP socket with SO_REUSEPORT on `ep`.
core::StatusOr<int> OpenTcpListener(const Endpoint& ep);

class Session;

class HttpListener {
 public:
  // Takes ownership of `fd`, a listening socket. `connections` is shared by all listeners.
  HttpListener(boost::asio::io_context& io, int fd, Handler& handler, const HttpLimits& limits,
               std::atomic<uint32_t>& connections, ThreadCounters& counters);
  ~HttpListener();

  // Serves TLS with `tls` (a server context holding the certificate and key); call before
  // Start. Shared by every listener of the process.
  void SetTls(std::shared_ptr<boost::asio::ssl::context> tls) { tls_ = std::move(tls); }

  void Start();
  // Closes the acceptor and every idle connection; busy ones close after their answer.
  // Call on the listener's own thread.
  void Stop();

 private:
  // The sessions (session.{h,cc}) read the handler, the limits, the counters, the TLS
  // context and stopping_, on this listener's thread.
  template <typename Stream>
  friend class SessionOf;
  friend std::shared_ptr<Session> MakeSession(boost::asio::ip::tcp::socket socket,
                                              HttpListener& listener);
  void Accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Handler& handler_;
  HttpLimits limits_;
  std::atomic<uint32_t>& connections_;
  ThreadCounters& counters_;
  static constexpr std::chrono::milliseconds kAcceptBackoff{100};

  boost::asio::steady_timer backoff_;  // delays the next accept after an accept error
  bool stopping_ = false;
  std::list<std::weak_ptr<Session>> sessions_;      // this thread only
  std::shared_ptr<boost::asio::ssl::context> tls_;  // null: plain HTTP
};

// Builds a JSON error answer: {"error":"<message>"}.
Response JsonError(http::status status, std::string_view message);
// Builds a JSON answer with the given body.
Response JsonResponse(http::status status, std::string body);

}  // namespace tally::daemon
