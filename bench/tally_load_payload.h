// The pre-rendered payload pool: every datagram or HTTP request tally-load sends is built
// before the clock starts, so the sender measures the receiver, not its own formatting.
// Immutable once built; sender threads share it read-only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/tally_load_options.h"

namespace tally::bench {

// One datagram, or one whole HTTP request (headers and body).
struct Chunk {
  uint64_t offset = 0;  // into Pool::bytes
  uint32_t size = 0;
  uint32_t successes = 0;  // lines in it, by outcome; each line counts 1
  uint32_t failures = 0;
  uint32_t lines() const { return successes + failures; }
};

struct Pool {
  std::string bytes;
  std::vector<Chunk> chunks;
  uint64_t distinct_keys = 0;  // keys that appear at least once (== Options::keys)
  uint64_t total_lines = 0;
};

// Lines: every key 1..keys once (shuffled); with --skew zipf, 3x keys more lines drawn from a
// Zipf(s) distribution over the keys. Padded by repetition to at least
// min(4096, 262144 / lines) chunks. Each
// line is a success with probability success_ratio (seeded, so runs repeat).
// For --transport http the chunks are whole POST /v1/ingest requests.
Pool BuildPool(const Options& o);

}  // namespace tally::bench
