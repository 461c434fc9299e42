// Session: one HTTP connection of an HttpListener (server.h states what a session does: one
// request at a time, the limits and deadlines, framing, screening, HEAD, 100-continue,
// streamed bodies, the orderly stop). The session classes live in session.cc, one per
// stream (SessionOf<beast::tcp_stream>, SessionOf<beast::ssl_stream<...>>); the listener
// sees only this interface.
//
// Thread safety: a session lives on its listener's thread (one io_context each) and every
// member runs there; an answer the handler gives from another thread is posted back to it.
// The listener holds sessions weakly; each keeps itself alive through its pending operations.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "daemon/http/server.h"

namespace tally::daemon {

// What the listener holds of a session, whatever its stream (plain TCP or TLS).
class Session : public std::enable_shared_from_this<Session> {
 public:
  virtual ~Session() = default;
  // Reads the first request (after the TLS handshake, within the request timeout).
  virtual void Start() = 0;
  // The listener stops. A connection waiting for a new request closes now; one in the middle
  // of a request gets a short deadline to finish sending it; one whose request is being
  // handled closes after its answer (keep-alive is off once stopping).
  virtual void OnStop() = 0;
};

// A session for an accepted connection of `listener`: TLS when the listener has a TLS
// context (HttpListener::SetTls), plain HTTP otherwise. It counts itself out of the
// listener's connection count when destroyed (the caller counted it in). Call on the
// listener's thread, then Start() it there.
std::shared_ptr<Session> MakeSession(boost::asio::ip::tcp::socket socket, HttpListener& listener);

}  // namespace tally::daemon
