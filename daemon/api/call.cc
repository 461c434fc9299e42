#include "daemon/api/call.h"

#include <boost/asio/post.hpp>
#include <latch>
#include <memory>

#include "daemon/threads.h"

namespace tally::daemon {
namespace asio = boost::asio;

Workers::Workers() : writes_(asio::make_strand(pool_)) {
  // Each of the pool's threads becomes a background thread (threads.h): every one of these
  // tasks waits until all have arrived, so each runs on a thread of its own. The latch is
  // shared: a waiter may still read it after the last arrival, so none owns it alone.
  auto arrived = std::make_shared<std::latch>(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    asio::post(pool_, [arrived] {
      BecomeBackgroundThread("tally-api");
      arrived->arrive_and_wait();
    });
  }
}

Workers::~Workers() { Join(); }

void Workers::Join() { pool_.join(); }

void Workers::RunBlocking(std::function<void()> fn) { asio::post(pool_, std::move(fn)); }

void Workers::RunWrite(std::function<void()> fn) { asio::post(writes_, std::move(fn)); }

http::status StatusFor(const core::Status& status) {
  switch (status.code()) {
    case core::Status::Code::kOk:
      return http::status::ok;
    case core::Status::Code::kInvalidArgument:
      return http::status::bad_request;
    case core::Status::Code::kNotFound:
      return http::status::not_found;
    case core::Status::Code::kConflict:
    case core::Status::Code::kRefused:
      return http::status::conflict;
    case core::Status::Code::kIoError:
    case core::Status::Code::kUnavailable:
      return http::status::service_unavailable;
    case core::Status::Code::kCorruption:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

Response ErrorResponse(const core::Status& status) {
  return JsonError(StatusFor(status), status.message());
}

Response EmptyResponse(http::status status) {
  Response res{status, 11};
  res.prepare_payload();
  return res;
}

}  // namespace tally::daemon
