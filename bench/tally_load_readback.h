// Reading back what the receiver counted: tallyd's /metrics and summary, or the floor's
// control port. Snapshots are taken before and after a run and subtracted, so a receiver
// that already holds counts from earlier runs still gives exact per-run figures.
#pragma once

#include <cstdint>
#include <string>

#include "bench/tally_load_options.h"

namespace tally::bench {

struct Snapshot {
  std::string error;          // non-empty: the read-back failed
  uint64_t lines[4] = {};     // this transport's lines: accepted, ignored, malformed, refused
  uint64_t kernel_drops = 0;  // datagrams (tallyd_udp_kernel_drops_total, or the floor's)
  int64_t total = -1;         // tallyd summary after a flush; -1 when not read
  int64_t success = -1;
  int64_t failure = -1;
  int64_t rcvbuf = -1;  // the floor's granted SO_RCVBUF
  // The kernel's own drop count for the target port, summed over its sockets in
  // /proc/net/udp{,6} (UDP only; -1 otherwise). Unlike SO_RXQ_OVFL, which the receiver only
  // learns with its next datagram, it includes drops after the last datagram received.
  int64_t proc_drops = -1;
  uint64_t received() const { return lines[0] + lines[1] + lines[2] + lines[3]; }
};

// The drops column of /proc/net/udp and /proc/net/udp6 summed over sockets bound to `port`.
int64_t ProcUdpDrops(uint16_t port);

// The counters only (cheap; polled while the receiver catches up).
Snapshot ReadCounters(const Options& o);

// Makes tallyd commit everything counted so far: POST /admin/flush, or if that endpoint is
// missing, an empty POST /v1/ingest?wait=flush. Returns how it flushed, or "" on failure.
std::string FlushTallyd(const Options& o);

// Reads the summary into *s (tallyd only).
void ReadSummary(const Options& o, Snapshot* s);

}  // namespace tally::bench
