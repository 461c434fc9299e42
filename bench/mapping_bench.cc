// Mapping benchmarks (issue 20): the Kong preset on a mixed Kong/Envoy stream, and lines of
// tallyd's own protocol with and without a mapping loaded, in the same run so that their
// ratio is what counts on a shared machine. Figures and targets: docs/performance.md
// ("Mapping rules").
//
//   build/bench/tally_mapping_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>

#include "core/counter_table.h"
#include "core/ingest.h"
#include "core/mapping.h"
#include "core/mapping_presets.h"
#include "core/mapping_yaml.h"

namespace {

using namespace tally::core;

constexpr int kLines = 50;  // lines per buffer, as in core_bench's parser benchmarks

const Mapping& Preset(const char* name) {
  static auto* mappings = new std::map<std::string, std::shared_ptr<const Mapping>>();
  auto& m = (*mappings)[name];
  if (m == nullptr) {
    StatusOr<std::shared_ptr<const Mapping>> loaded = LoadMapping(*MappingPreset(name), name);
    if (!loaded.ok()) {
      std::abort();
    }
    m = *loaded;
  }
  return *m;
}

// What a Kong node sends per request with the default metrics (status_count, request_count,
// latencies...) beside an Envoy sidecar's cluster counters: half the lines Kong counters the
// preset counts or drops, a quarter Kong timers, a quarter Envoy counters it ignores.
std::string MixedKongEnvoy() {
  std::mt19937_64 rng(44);
  const char* statuses[] = {"200", "200", "200", "201", "204", "404", "429", "503"};
  std::string out;
  for (int i = 0; i < kLines; ++i) {
    std::string svc = "key-" + std::to_string(1 + rng() % 100000);
    switch (i % 4) {
      case 0:
        out += "kong.service." + svc + ".status." + statuses[rng() % 8] + ":1|c\n";
        break;
      case 1:
        out += "kong.service." + svc + ".request.count:1|c\n";
        break;
      case 2:
        out += "kong.service." + svc + ".latency:" + std::to_string(rng() % 500) + "|ms\n";
        break;
      default:
        out += "envoy.cluster." + svc + ".upstream_rq_" + (rng() % 2 ? "2xx" : "200") + ":" +
               std::to_string(1 + rng() % 9) + "|c\n";
    }
  }
  return out;
}

// tallyd's own lines, as core_bench's BM_ParseBuffer: keys 1..100k, 10% failures.
std::string OwnLines() {
  std::mt19937_64 rng(42);
  std::string out;
  for (int i = 0; i < kLines; ++i) {
    out += "apikey." + std::to_string(1 + rng() % 100000) +
           (rng() % 10 == 0 ? ".failure:1|c\n" : ".success:1|c\n");
  }
  return out;
}

template <typename Ignored>
void Parse(benchmark::State& state, const std::string& buffer, Ignored&& ignored) {
  uint64_t sink = 0;
  for (auto _ : state) {
    LineCounts c = ParseBuffer(
        buffer, "apikey",
        [&](const Increment& inc) {
          sink += inc.key;
          return true;
        },
        ignored);
    benchmark::DoNotOptimize(c);
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kLines);
}

// Target: at least 10M lines/s on one core.
void BM_KongPresetMixedKongEnvoy(benchmark::State& state) {
  const Mapping& kong = Preset("kong");
  MappedCounts mapped;
  Parse(state, MixedKongEnvoy(),
        [&](std::string_view line, Increment* inc) { return kong.Map(line, inc, &mapped); });
}
BENCHMARK(BM_KongPresetMixedKongEnvoy);

// Only the Kong lines the preset counts: status_count with a key id.
void BM_KongPresetStatusLines(benchmark::State& state) {
  const Mapping& kong = Preset("kong");
  std::mt19937_64 rng(45);
  std::string buffer;
  for (int i = 0; i < kLines; ++i) {
    buffer += "kong.service.key-" + std::to_string(1 + rng() % 100000) + ".status." +
              (rng() % 10 == 0 ? "503" : "200") + ":1|c\n";
  }
  MappedCounts mapped;
  Parse(state, buffer,
        [&](std::string_view line, Increment* inc) { return kong.Map(line, inc, &mapped); });
}
BENCHMARK(BM_KongPresetStatusLines);

// Own-protocol lines: the baseline, and the same with the Kong preset loaded (target: at
// most 5% slower).
void BM_OwnLinesNoMapping(benchmark::State& state) { Parse(state, OwnLines(), KeepIgnored{}); }
BENCHMARK(BM_OwnLinesNoMapping);

void BM_OwnLinesKongPresetLoaded(benchmark::State& state) {
  const Mapping& kong = Preset("kong");
  MappedCounts mapped;
  Parse(state, OwnLines(),
        [&](std::string_view line, Increment* inc) { return kong.Map(line, inc, &mapped); });
}
BENCHMARK(BM_OwnLinesKongPresetLoaded);

// The same pair through IngestBuffer into a table holding the keys: what a receiving thread
// does per datagram.
CounterTable& Table() {
  static CounterTable* t = [] {
    auto* table = new CounterTable(CounterTable::kDefaultMaxKeys, /*hash_seed=*/12345);
    for (uint64_t k = 1; k <= 100000; ++k) {
      benchmark::DoNotOptimize(table->Add(k, 1, 0));
    }
    return table;
  }();
  return *t;
}

void BM_IngestOwnLinesNoMapping(benchmark::State& state) {
  std::string buffer = OwnLines();
  CounterTable& table = Table();
  for (auto _ : state) {
    benchmark::DoNotOptimize(IngestBuffer(buffer, "apikey", table, nullptr, nullptr));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kLines);
}
BENCHMARK(BM_IngestOwnLinesNoMapping);

void BM_IngestOwnLinesKongPresetLoaded(benchmark::State& state) {
  std::string buffer = OwnLines();
  CounterTable& table = Table();
  const Mapping& kong = Preset("kong");
  MappedCounts mapped;
  for (auto _ : state) {
    benchmark::DoNotOptimize(IngestBuffer(buffer, "apikey", table, &kong, &mapped));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kLines);
}
BENCHMARK(BM_IngestOwnLinesKongPresetLoaded);

}  // namespace

BENCHMARK_MAIN();
