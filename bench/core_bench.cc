// Core micro benchmarks: the parser and the counter table. See docs/performance.md.
#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "core/counter_table.h"
#include "core/ingest.h"
#include "core/line_parser.h"

namespace {

using namespace tally::core;

// Realistic 20-30 byte lines over 100k keys, 50 per buffer like a gateway's datagram.
std::string MakeBuffer(size_t lines) {
  std::mt19937_64 rng(42);
  std::string out;
  for (size_t i = 0; i < lines; ++i) {
    out += "apikey." + std::to_string(1 + rng() % 100000) +
           (rng() % 10 == 0 ? ".failure:1|c\n" : ".success:1|c\n");
  }
  return out;
}

void BM_ParseBuffer(benchmark::State& state) {
  std::string buffer = MakeBuffer(50);
  uint64_t sink = 0;
  for (auto _ : state) {
    LineCounts c = ParseBuffer(buffer, "apikey", [&](const Increment& inc) {
      sink += inc.key;
      return true;
    });
    benchmark::DoNotOptimize(c);
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 50);
}
BENCHMARK(BM_ParseBuffer);

}  // namespace

BENCHMARK_MAIN();
