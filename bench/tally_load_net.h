// Blocking socket helpers for tally-load and its read-back: address parsing, connects, and
// a minimal HTTP/1.1 client (Content-Length bodies only, which is all tallyd sends).
// Not thread-safe per object; each sender thread owns its own sockets.
#pragma once

#include <cstdint>
#include <string>

namespace tally::bench {

// "HOST:PORT" with an IPv4 or IPv6 ([::1]:P) literal. Returns -1 and sets *error on failure.
int ConnectUdp(const std::string& hostport, std::string* error);
int ConnectTcp(const std::string& hostport, std::string* error);
int ConnectUnixDatagram(const std::string& path, std::string* error);

struct HttpResponse {
  int status = 0;  // 0: no answer (connection error or timeout)
  std::string body;
};

// Reads one response from fd into *res. `buffer` keeps bytes already read past the previous
// response (pipelining). Returns false on a connection error or malformed response.
bool ReadHttpResponse(int fd, std::string* buffer, HttpResponse* res);

// One request on a new connection, closed afterwards; 5 s timeouts.
HttpResponse HttpCall(const std::string& hostport, const std::string& method,
                      const std::string& target, const std::string& headers,
                      const std::string& body = "");

// Sends all of data; false on error.
bool SendAll(int fd, const char* data, size_t size);

// The number after `"name":` in a flat JSON object; -1 when absent.
int64_t JsonNumber(const std::string& json, const std::string& name);

}  // namespace tally::bench
