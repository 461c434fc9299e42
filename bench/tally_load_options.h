// tally-load's command-line options: what to send, where, how fast, and how to read back.
// Parsed once in main; read-only afterwards, so safe to share between sender threads.
#pragma once

#include <cstdint>
#include <string>

namespace tally::bench {

struct Options {
  std::string transport = "udp";        // udp | unix | http
  std::string target;                   // HOST:PORT (udp, http) or a path (unix); "" = the default
  std::string http = "127.0.0.1:8126";  // tallyd's HTTP API, for the read-back
  double rate = 0;                      // offered events/s over all senders; 0 = flat out
  double duration_s = 5;
  uint64_t keys = 100000;
  std::string skew = "uniform";  // uniform | zipf
  double zipf_s = 1.0;
  double success_ratio = 0.9;
  uint32_t lines = 1;               // lines per datagram or per HTTP body
  uint32_t connections = 2;         // HTTP connections (one thread each)
  uint32_t pipeline = 1;            // HTTP requests in flight per connection
  uint32_t batch = 32;              // datagrams per sendmmsg call
  bool wait_flush = false;          // HTTP: POST /v1/ingest?wait=flush and report latency
  std::string readback = "tallyd";  // tallyd | floor | none
  std::string floor_control = "127.0.0.1:8129";
  std::string internal_token;
  std::string admin_token;
  std::string prefix = "apikey";
  std::string label;
  uint64_t seed = 42;
  double settle_s = 10;  // longest wait for the receiver to catch up after sending
};

// Parses argv into *out. Returns "" on success, else one line saying what is wrong.
// "--help" returns "help".
std::string ParseOptions(int argc, char** argv, Options* out);
const char* Usage();

}  // namespace tally::bench
