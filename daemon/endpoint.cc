#include "daemon/endpoint.h"

#include <boost/asio/ip/address.hpp>

namespace tally::daemon {
using core::Status;
using core::StatusOr;

std::string Endpoint::ToString() const {
  if (!enabled()) {
    return "off";
  }
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

StatusOr<Endpoint> ParseEndpoint(const std::string& text) {
  if (text.empty() || text == "off") {
    return Endpoint{};
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return Status::InvalidArgument("expected HOST:PORT or off, got '" + text + "'");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument("'" + host + "' is not an IP address");
  }
  std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("bad port '" + port_text + "'");
  }
  unsigned long port = std::stoul(port_text);
  if (port > 65535) {
    return Status::InvalidArgument("port " + port_text + " is out of range");
  }
  return Endpoint{host, static_cast<uint16_t>(port)};
}

bool IsLoopback(const std::string& host) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

}  // namespace tally::daemon
