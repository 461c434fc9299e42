// What every endpoint group of daemon/api/ shares: the routed request (Call), the worker
// threads that run store work off the I/O threads (Workers), and the mapping of a Status to
// an HTTP answer (the one place an error becomes a status code).
#pragma once

#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "daemon/http/server.h"

namespace tally::daemon {

// One routed request: the request, its raw query string (checked by CheckQuery: read it with
// QueryParam / IdParam), the {id} path segment when the route has one, and the Responder to
// call exactly once.
struct Call {
  Request req;
  std::string query;
  uint64_t id = 0;
  Responder done;
  // Set when the session can take a streamed answer (HandleStreaming); answer through
  // exactly one of done and stream.
  StreamResponder stream;
};

// The API's worker threads. Nothing that can block runs on an I/O thread: store calls (reads
// too, since a flush holds the store's lock through its synced write) run here, writes
// serialized on one strand (so an idempotency-key lookup and the write it guards cannot
// interleave with another request's). Thread-safe.
class Workers {
 public:
  Workers();
  // Join()s.
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Runs `fn` on a worker thread (store reads, slow operations).
  void RunBlocking(std::function<void()> fn);
  // Runs `fn` on the worker strand that serializes store writes.
  void RunWrite(std::function<void()> fn);
  // Waits for the work already queued, then stops the threads.
  void Join();

 private:
  static constexpr int kThreads = 2;
  boost::asio::thread_pool pool_{kThreads};
  boost::asio::strand<boost::asio::thread_pool::executor_type> writes_;
};

// The HTTP status for a store error: 400, 404, 409, 500 or 503.
http::status StatusFor(const core::Status& status);
// {"error": status.message()} with StatusFor(status).
Response ErrorResponse(const core::Status& status);
// An answer with no body (204 No Content).
Response EmptyResponse(http::status status);

}  // namespace tally::daemon
