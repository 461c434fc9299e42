// HttpPost: one HTTP/1.1 POST to an upstream over a new connection (plain TCP, or TLS over
// the system's OpenSSL), with one deadline for the whole exchange: resolve, connect,
// handshake, write, read. The forwarder's only way out; nothing here knows of batches.
//
// Thread safety: an HttpPost may be used by one thread at a time (the forwarder's).
// Cancel() may be called from any thread: it ends an exchange in flight (as a connection
// error) and every later one, for the stop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tally::daemon {

struct UpstreamTarget {
  bool tls = false;
  std::string host;
  std::string port;
  std::string ca_file;  // empty: the system's CA store (tls only)
  std::chrono::milliseconds timeout{10'000};
};

struct PostResult {
  enum class Kind { kAnswered, kTimeout, kConnection };
  Kind kind = Kind::kConnection;
  unsigned status = 0;  // the HTTP status, when answered
  std::string body;
  std::optional<std::chrono::seconds> retry_after;  // a Retry-After of delta-seconds
  std::string error;                                // why, when not answered
};

class HttpPost {
 public:
  // InvalidArgument when the TLS context cannot be set up (a bad --forward-ca-file).
  static core::StatusOr<std::unique_ptr<HttpPost>> Create(UpstreamTarget target);

  PostResult Post(const std::string& path,
                  const std::vector<std::pair<std::string, std::string>>& headers,
                  const std::string& body);
  void Cancel();

 private:
  explicit HttpPost(UpstreamTarget target);

  UpstreamTarget target_;
  std::unique_ptr<boost::asio::ssl::context> ssl_;  // tls only
  boost::asio::io_context io_{1};
  std::mutex mu_;
  bool cancelled_ = false;  // guarded by mu_
};

}  // namespace tally::daemon
