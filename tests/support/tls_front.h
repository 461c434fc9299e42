// TlsFront: a TLS server on a loopback port that terminates TLS and passes each HTTP
// request, in plain text, to an upstream (a tallyd), relaying the answer: how the https
// forwarding tests reach a central tallyd. Its certificate comes from a throwaway CA made
// with the openssl CLI (MakeTestCa). One thread per connection, one request per connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tally::testing {

struct TestCa {
  std::string ca_pem;    // the CA's certificate: --forward-ca-file
  std::string cert_pem;  // the server's, for CN/SAN localhost and 127.0.0.1
  std::string key_pem;
};
// Makes a CA and a server certificate signed by it under `dir` (openssl CLI); throws when
// openssl fails.
TestCa MakeTestCa(const std::string& dir);

class TlsFront {
 public:
  TlsFront(const TestCa& ca, uint16_t upstream_port);
  ~TlsFront();
  uint16_t port() const { return port_; }
  uint64_t handshakes() const { return handshakes_.load(); }  // completed TLS handshakes

 private:
  struct Impl;
  Impl* impl_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> handshakes_{0};
};

}  // namespace tally::testing
