// HTTP/1.1 request framing rules (RFC 9112) and the body type the sessions read into. Pure
// functions on a parsed header or on bytes, no I/O: daemon/http/server.cc applies them.
#pragma once

#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tally::daemon {

namespace http = boost::beast::http;

// A string body whose reader never reserves from the declared Content-Length: memory follows
// the bytes that arrived, so a client cannot make tallyd allocate what it only announces.
struct IncrementalBody {
  using value_type = std::string;

  class reader {
   public:
    template <bool kIsRequest, class Fields>
    reader(http::header<kIsRequest, Fields>& /*header*/, value_type& body) : body_(body) {}

    void init(const boost::optional<uint64_t>& /*length*/, boost::beast::error_code& ec) {
      ec = {};
    }

    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      size_t n = 0;
      for (boost::asio::const_buffer b : boost::beast::buffers_range_ref(buffers)) {
        body_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      ec = {};
      return n;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// Why a request's framing is refused: the status and the message.
struct Refusal {
  http::status status;
  std::string_view message;
};

// The RFC 9112 checks on a request header, done before its body is read; nullopt when the
// framing is sound. HTTP/1.1 needs exactly one Host (400). Transfer-Encoding must be exactly
// "chunked": 400 when it does not end in chunked, names it twice or comes with
// Content-Length or HTTP/1.0; 501 for another coding before chunked.
std::optional<Refusal> CheckFraming(const http::request_header<>& h);

// The origin form ("/path?query") of an absolute-form target ("http://host:port/path?query",
// "http://host?query" becomes "/?query"); nullopt for a target not in absolute form.
std::optional<std::string> OriginForm(std::string_view target);

// Checks the bytes a chunked body's parser holds back (a chunk-size line, the CRLF after
// chunk data, or the trailer section), which start at such a boundary: a line ending in a
// bare LF is 400; past `limit` bytes, 431 for the trailer section, 400 for a chunk-size line.
// Cost: one pass over `pending`.
std::optional<Refusal> CheckPendingChunkFraming(std::string_view pending, uint32_t limit);

}  // namespace tally::daemon
