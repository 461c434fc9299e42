// The server's free functions (server.h): JSON answers and the listening socket.
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>

#include "daemon/http/json_writer.h"
#include "daemon/http/server.h"

namespace tally::daemon {
namespace asio = boost::asio;
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

}  // namespace tally::daemon
