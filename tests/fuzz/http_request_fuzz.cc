// libFuzzer target: the HTTP request path as a whole, without a socket.
//
// The input is the byte stream a client would send on one connection. It goes through
// Beast's request parser with the limits tallyd's sessions use (header and body limits),
// and each complete request goes to the real router (daemon::Api::Handle) backed by a real
// Store, in order, as a keep-alive session would hand them over (pipelining). Checked:
// no crash, leak or undefined behaviour; every request gets exactly one answer, with a
// documented status and a well-formed JSON body ({"error":...} on errors); no 5xx but 503.
//
// POST /admin/checkpoint is not sent to the router: its body names a directory to create
// anywhere on this machine. Its body parsing is covered by json_body_fuzz with a directory
// rewritten under the harness's temporary directory.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/http/server.h"
#include "tests/fuzz/api_harness.h"

namespace http = boost::beast::http;

namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = static_cast<char>(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// True if the target, percent-decoded (repeatedly) and lowercased, mentions "checkpoint":
// such a request could reach POST /admin/checkpoint however the router normalizes paths.
bool MayReachCheckpoint(std::string_view target) {
  std::string s(target);
  for (int round = 0; round < 4; ++round) {
    std::string decoded;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size() && Hex(s[i + 1]) >= 0 && Hex(s[i + 2]) >= 0) {
        decoded += static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2]));
        i += 2;
      } else {
        decoded += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
      }
    }
    if (decoded == s) {
      break;
    }
    s = decoded;
  }
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s.find("checkpoint") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tally::fuzz::ApiHarness;
  ApiHarness& harness = ApiHarness::Get();
  const tally::daemon::HttpLimits limits;  // tallyd's defaults, as its sessions use them
  boost::asio::const_buffer input(data, size);

  for (int request = 0; request < 16 && input.size() > 0; ++request) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(limits.header_limit);
    parser.body_limit(limits.max_body_bytes);
    parser.eager(true);
    boost::beast::error_code ec;
    // put() may stop after the header; feed it until the message is done or fails. A
    // need_more with nothing left means the peer closed mid-request.
    while (!parser.is_done()) {
      size_t used = parser.put(input, ec);
      input += used;
      if (ec == http::error::need_more) {
        ec = {};
        if (input.size() > 0 && used > 0) {
          continue;
        }
        if (!parser.got_some()) {
          return 0;  // nothing but a closed connection
        }
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) {
          ec = http::error::partial_message;
        }
      }
      if (ec) {
        // tallyd answers 400/413/431 and closes, or just closes; no handler runs.
        (void)ApiHarness::StatusForParseError(ec);
        return 0;
      }
      if (used == 0 && !parser.is_done()) {
        return 0;
      }
    }
    tally::daemon::Request req = parser.release();
    bool keep_alive = req.keep_alive();
    if (MayReachCheckpoint(req.target())) {
      return 0;
    }
    harness.Call(std::move(req));
    if (!keep_alive) {
      return 0;
    }
  }
  return 0;
}
