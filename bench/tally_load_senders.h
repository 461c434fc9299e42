// The senders: a paced (or flat-out) sendmmsg loop for UDP and Unix datagrams, and one
// thread per HTTP keep-alive connection. Each counts exactly what it handed to the kernel
// (datagrams) or what the server acknowledged (HTTP).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/tally_load_options.h"
#include "bench/tally_load_payload.h"

namespace tally::bench {

struct SendTotals {
  uint64_t messages = 0;  // datagrams, or HTTP requests answered 2xx
  uint64_t events = 0;    // lines in them
  uint64_t successes = 0;
  uint64_t failures = 0;
  uint64_t send_errors = 0;          // sendmmsg errors (ENOBUFS...), or HTTP non-2xx / broken
  uint64_t http_accepted = 0;        // sum of "accepted" in HTTP answers
  uint64_t http_rejected = 0;        // sum of "ignored" + "malformed" + "refused"
  double seconds = 0;                // wall time spent sending
  std::vector<double> latencies_ms;  // per HTTP request (wait-flush mode)
  std::string error;                 // fatal error, if any
};

// Sends datagrams over a connected UDP or Unix datagram socket for o.duration_s.
SendTotals SendDatagrams(int fd, const Pool& pool, const Options& o);

// Runs o.connections HTTP connections for o.duration_s, each with o.pipeline requests in
// flight, and merges their totals.
SendTotals SendHttp(const Pool& pool, const Options& o);

}  // namespace tally::bench
