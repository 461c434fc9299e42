// The (key, outcome) sequences the core Add benchmarks replay (bench/core_bench_keys.h).
#include "bench/core_bench_keys.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace tally::bench {

namespace {

uint32_t WithOutcome(uint32_t key, std::mt19937_64& rng) {
  return rng() % 10 == 0 ? key | kFailureBit : key;
}

// Uniform over keys 1..n, split so that thread t of `threads` draws only from its own
// contiguous share of the ids: threads never share a key, nor (in the array, where
// neighbouring ids share a cache line) a line.
std::vector<uint32_t> UniformOps(uint32_t n, int thread, int threads) {
  std::mt19937_64 rng(7 + thread);
  uint32_t per_thread = n / static_cast<uint32_t>(threads);
  std::vector<uint32_t> ops(kSequence);
  for (uint32_t& op : ops) {
    uint32_t key =
        1 + static_cast<uint32_t>(thread) * per_thread + static_cast<uint32_t>(rng() % per_thread);
    op = WithOutcome(key, rng);
  }
  return ops;
}

// Zipf(s) over ranks 1..n, ranks mapped to keys 1..n by a fixed random permutation so the
// hot keys are scattered (an id's popularity has nothing to do with its value). Every
// thread draws from the same distribution, so threads share the hot keys, as I/O threads do.
std::vector<uint32_t> ZipfOps(uint32_t n, double s, int thread) {
  static const std::vector<double> cdf = [n, s] {
    std::vector<double> c(n);
    double sum = 0;
    for (uint32_t r = 1; r <= n; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r), s);
      c[r - 1] = sum;
    }
    for (double& x : c) {
      x /= sum;
    }
    return c;
  }();
  static const std::vector<uint32_t> key_of_rank = [n] {
    std::vector<uint32_t> k(n);
    for (uint32_t i = 0; i < n; ++i) {
      k[i] = i + 1;
    }
    std::shuffle(k.begin(), k.end(), std::mt19937_64(99));
    return k;
  }();
  std::mt19937_64 rng(11 + thread);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<uint32_t> ops(kSequence);
  for (uint32_t& op : ops) {
    size_t rank =
        static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    op = WithOutcome(key_of_rank[std::min<size_t>(rank, n - 1)], rng);
  }
  return ops;
}

std::vector<Increment> ToIncrements(const std::vector<uint32_t>& ops) {
  std::vector<Increment> incs(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    bool failure = (ops[i] & kFailureBit) != 0;
    incs[i] = {ops[i] & ~kFailureBit, failure ? 0u : 1u, failure ? 1u : 0u};
  }
  return incs;
}

}  // namespace

const std::vector<uint32_t>& Uniform100kOps(int thread, int threads) {
  static const std::vector<uint32_t> one = UniformOps(100'000, 0, 1);
  static const std::vector<uint32_t> two[2] = {UniformOps(100'000, 0, 2),
                                               UniformOps(100'000, 1, 2)};
  return threads == 1 ? one : two[thread % 2];
}
const std::vector<uint32_t>& Zipf1MOps(int thread) {
  static const std::vector<uint32_t> ops[2] = {ZipfOps(1'000'000, 0.99, 0),
                                               ZipfOps(1'000'000, 0.99, 1)};
  return ops[thread % 2];
}
const std::vector<Increment>& Uniform100kIncrements(int thread, int threads) {
  static const std::vector<Increment> one = ToIncrements(Uniform100kOps(0, 1));
  static const std::vector<Increment> two[2] = {ToIncrements(Uniform100kOps(0, 2)),
                                                ToIncrements(Uniform100kOps(1, 2))};
  return threads == 1 ? one : two[thread % 2];
}
const std::vector<uint64_t>& RandomIds100k() {
  static const std::vector<uint64_t> ids = [] {
    std::mt19937_64 rng(17);
    std::vector<uint64_t> v(100'000);
    for (uint64_t& id : v) {
      id = (rng() >> 1) | 1;
    }
    return v;
  }();
  return ids;
}
const std::vector<Increment>& Uniform100kRandomIdIncrements() {
  static const std::vector<Increment> incs = [] {
    std::vector<Increment> v = ToIncrements(Uniform100kOps(0, 1));
    for (Increment& inc : v) {
      inc.key = RandomIds100k()[inc.key - 1];
    }
    return v;
  }();
  return incs;
}
const std::vector<Increment>& Zipf1MIncrements(int thread) {
  static const std::vector<Increment> incs[2] = {ToIncrements(Zipf1MOps(0)),
                                                 ToIncrements(Zipf1MOps(1))};
  return incs[thread % 2];
}

}  // namespace tally::bench
