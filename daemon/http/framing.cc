#include "daemon/http/framing.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <vector>

namespace tally::daemon {
namespace beast = boost::beast;

namespace {

bool IsChunked(std::string_view coding) { return beast::iequals(coding, "chunked"); }

}  // namespace

// The RFC 9112 checks on a request header (Host, Transfer-Encoding, Content-Length), done
// before its body is read; nullopt when the framing is sound.
std::optional<Refusal> CheckFraming(const http::request_header<>& h) {
  auto hosts = h.count(http::field::host);
  if (hosts > 1 || (hosts == 0 && h.version() >= 11)) {
    return Refusal{http::status::bad_request, "an HTTP/1.1 request needs exactly one Host header"};
  }
  std::vector<std::string_view> codings;
  bool any_encoding = false;
  for (auto range = h.equal_range(http::field::transfer_encoding); range.first != range.second;
       ++range.first) {
    any_encoding = true;
    std::string_view value = range.first->value();
    while (!value.empty()) {
      size_t comma = value.find(',');
      std::string_view item = value.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
        item.remove_prefix(1);
      }
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
        item.remove_suffix(1);
      }
      if (!item.empty()) {
        codings.push_back(item);
      }
      value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    }
  }
  if (!any_encoding) {
    return std::nullopt;
  }
  if (h.count(http::field::content_length) > 0) {
    return Refusal{http::status::bad_request,
                   "Content-Length and Transfer-Encoding must not both be present"};
  }
  if (h.version() < 11) {
    return Refusal{http::status::bad_request, "Transfer-Encoding needs HTTP/1.1"};
  }
  if (codings.empty() || !IsChunked(codings.back())) {
    return Refusal{http::status::bad_request, "Transfer-Encoding must end in chunked"};
  }
  if (std::count_if(codings.begin(), codings.end(), IsChunked) > 1) {
    return Refusal{http::status::bad_request, "Transfer-Encoding names chunked more than once"};
  }
  if (codings.size() > 1) {
    return Refusal{http::status::not_implemented, "the only transfer coding served is chunked"};
  }
  return std::nullopt;
}

std::optional<std::string> OriginForm(std::string_view target) {
  size_t scheme = target.find("://");
  if (scheme == std::string_view::npos || target.empty() || target.front() == '/' ||
      !(beast::iequals(target.substr(0, scheme), "http") ||
        beast::iequals(target.substr(0, scheme), "https"))) {
    return std::nullopt;
  }
  std::string_view rest = target.substr(scheme + 3);
  size_t path = rest.find_first_of("/?");
  if (path == std::string_view::npos) {
    return "/";
  }
  rest.remove_prefix(path);
  std::string origin;
  if (rest.front() != '/') {
    origin.push_back('/');
  }
  origin.append(rest);
  return origin;
}

// The bytes a chunked body waits on (a chunk-size line, the CRLF after chunk data, or the
// trailer section): refused when a line ends in a bare LF or when they outgrow the header
// limit. `pending` starts where the parser stopped, which is always such a boundary: the
// parser consumes chunk data as soon as it arrives.
std::optional<Refusal> CheckPendingChunkFraming(std::string_view pending, uint32_t limit) {
  for (size_t i = 0; i < pending.size(); ++i) {
    if (pending[i] == '\n' && (i == 0 || pending[i - 1] != '\r')) {
      return Refusal{http::status::bad_request, "chunked framing lines must end in CRLF"};
    }
  }
  if (pending.size() <= limit) {
    return std::nullopt;
  }
  // A size of zero starts the last chunk, and the trailer section after it.
  std::string_view line = pending.substr(pending.rfind("\r\n", 0) == 0 ? 2 : 0);
  size_t digits = line.find_first_not_of("0123456789abcdefABCDEF");
  bool last_chunk =
      digits != 0 && line.substr(0, digits).find_first_not_of('0') == std::string_view::npos;
  if (last_chunk) {
    return Refusal{http::status::request_header_fields_too_large,
                   "chunked trailer section over the header limit"};
  }
  return Refusal{http::status::bad_request, "chunk-size line over the header limit"};
}

}  // namespace tally::daemon
