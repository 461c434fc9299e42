#include "bench/tally_load_payload.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace tally::bench {
namespace {

std::vector<uint64_t> KeySequence(const Options& o, std::mt19937_64& rng) {
  std::vector<uint64_t> seq(o.keys);
  for (uint64_t i = 0; i < o.keys; ++i) {
    seq[i] = i + 1;
  }
  if (o.skew == "zipf") {
    // Inverse-CDF sampling over ranks 1..keys with P(rank) ~ 1/rank^s.
    std::vector<double> cdf(o.keys);
    double sum = 0;
    for (uint64_t i = 0; i < o.keys; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), o.zipf_s);
      cdf[i] = sum;
    }
    std::uniform_real_distribution<double> u(0, sum);
    for (uint64_t i = 0; i < 3 * o.keys; ++i) {
      auto it = std::lower_bound(cdf.begin(), cdf.end(), u(rng));
      seq.push_back(static_cast<uint64_t>(std::min<size_t>(it - cdf.begin(), o.keys - 1)) + 1);
    }
  }
  std::shuffle(seq.begin(), seq.end(), rng);
  return seq;
}

}  // namespace

Pool BuildPool(const Options& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<uint64_t> seq = KeySequence(o, rng);
  std::bernoulli_distribution success(o.success_ratio);
  // Enough chunks that sendmmsg batches and connections rarely repeat a chunk back to back,
  // without holding more than ~256k lines when bodies are large.
  const uint64_t min_chunks = std::min<uint64_t>(4096, std::max<uint64_t>(16, 262144 / o.lines));
  uint64_t chunks = std::max<uint64_t>((seq.size() + o.lines - 1) / o.lines, min_chunks);

  Pool pool;
  pool.distinct_keys = o.keys;
  pool.chunks.reserve(chunks);
  std::string body;
  std::string head;
  uint64_t next = 0;
  for (uint64_t c = 0; c < chunks; ++c) {
    Chunk chunk;
    body.clear();
    for (uint32_t l = 0; l < o.lines; ++l) {
      uint64_t key = seq[next++ % seq.size()];
      bool ok = success(rng);
      if (l != 0) {
        body += '\n';
      }
      body += o.prefix;
      body += '.';
      body += std::to_string(key);
      body += ok ? ".success:1|c" : ".failure:1|c";
      (ok ? chunk.successes : chunk.failures) += 1;
    }
    chunk.offset = pool.bytes.size();
    if (o.transport == "http") {
      head = "POST /v1/ingest";
      head += o.wait_flush ? "?wait=flush" : "";
      head += " HTTP/1.1\r\nHost: " + o.target + "\r\nContent-Type: text/plain\r\n";
      if (!o.internal_token.empty()) {
        head += "X-Internal-Token: " + o.internal_token + "\r\n";
      }
      head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
      pool.bytes += head;
    }
    pool.bytes += body;
    chunk.size = static_cast<uint32_t>(pool.bytes.size() - chunk.offset);
    pool.total_lines += chunk.lines();
    pool.chunks.push_back(chunk);
  }
  return pool;
}

}  // namespace tally::bench
