// Forwarding benchmarks (issue 17). Figures and targets: docs/performance.md ("Forwarding").
//
//   build/bench/tally_forward_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
//
//   BM_CentralApply/N      a central applying forwarded batches of N key deltas: ez-api's body
//                          parsed (ParseFlushBody) and applied with its source's mark
//                          (SourcesStore), one synced write per batch. Target: >= 1M deltas/s.
//   BM_CentralApplyPlain/N the same body through the plain internal flush, no mark: the baseline.
//   BM_EdgeFlush/N/O       an edge's flush of N changed keys without (O=0) and with (O=1) the
//                          outbox staging its batch: the forwarding cost inside the flush.
//   BM_RenderBody/N        the forwarder rendering a batch of N deltas as ez-api's body.
//   BM_OutboxBytesPerKey/N bytes the outbox holds per never-sent key (a batch of N keys).
// $TMPDIR picks the disk.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "daemon/api/record_json.h"
#include "daemon/upstream/forwarder.h"
#include "persistence/outbox_store.h"
#include "persistence/sources_store.h"
#include "persistence/store.h"

namespace {

using tally::core::KeyDelta;
using namespace tally::persistence;

class TempDb {
 public:
  TempDb() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/tally-fwd-XXXXXX";
    root_ = mkdtemp(pattern.data());
    auto s = Store::Open(root_ + "/db");
    if (!s.ok()) {
      std::fprintf(stderr, "open: %s\n", s.status().message().c_str());
      std::exit(1);
    }
    store = std::move(*s);
  }
  ~TempDb() {
    store.reset();
    std::filesystem::remove_all(root_);
  }
  std::unique_ptr<Store> store;

 private:
  std::string root_;
};

std::vector<KeyDelta> Deltas(uint64_t n) {
  std::vector<KeyDelta> d;
  for (uint64_t i = 1; i <= n; ++i) {
    d.push_back({i, 3 + i % 7, i % 3});
  }
  return d;
}

void CentralApply(benchmark::State& state, bool sourced) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  TempDb db;
  auto sources = SourcesStore::Open(*db.store);
  const std::string body = tally::daemon::RenderBatchBody({"edge", 1, 1, Deltas(n)});
  uint64_t sequence = 0;
  for (auto _ : state) {
    auto deltas = tally::daemon::ParseFlushBody(body);
    FlushRules rules{.all_or_nothing = true, .max_keys = 10'000'000};
    if (sourced) {
      ++sequence;
      if ((*sources)->Mark("edge") >= sequence) {
        state.SkipWithError("mark");
      }
      rules.source = FlushSource{"edge", sequence, sequence};
    }
    auto r = db.store->ApplyFlush(&*deltas, rules);
    if (!r.ok()) {
      state.SkipWithError("apply failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
void BM_CentralApply(benchmark::State& state) { CentralApply(state, true); }
void BM_CentralApplyPlain(benchmark::State& state) { CentralApply(state, false); }
BENCHMARK(BM_CentralApply)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CentralApplyPlain)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_EdgeFlush(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  TempDb db;
  std::unique_ptr<OutboxStore> outbox;
  if (state.range(1) != 0) {
    auto o = OutboxStore::Open(*db.store, {"edge", {"forward"}});
    outbox = std::move(*o);
  }
  const std::vector<KeyDelta> deltas = Deltas(n);
  for (auto _ : state) {
    std::vector<KeyDelta> batch = deltas;
    if (!db.store->ApplyFlush(&batch).ok()) {
      state.SkipWithError("flush failed");
      break;
    }
    if (outbox) {  // acknowledged at once, as a forwarder keeping up would
      state.PauseTiming();
      (void)outbox->Ack("forward", outbox->stats().last_sequence);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_EdgeFlush)
    ->Args({10'000, 0})
    ->Args({10'000, 1})
    ->Args({100'000, 0})
    ->Args({100'000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_RenderBody(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const tally::core::DeltaBatch batch{"edge", 1, 1, Deltas(n)};
  for (auto _ : state) {
    benchmark::DoNotOptimize(tally::daemon::RenderBatchBody(batch));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_RenderBody)->Arg(100'000)->Unit(benchmark::kMillisecond);

void BM_OutboxBytesPerKey(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  for (auto _ : state) {
    TempDb db;
    auto o = OutboxStore::Open(*db.store, {"edge", {"forward"}});
    // Keys spread like real ids (every 37th), counts of a few thousand.
    std::vector<KeyDelta> deltas;
    for (uint64_t i = 1; i <= n; ++i) {
      deltas.push_back({i * 37, 1000 + i % 5000, i % 300});
    }
    (void)db.store->ApplyFlush(&deltas);
    state.counters["bytes_per_key"] = static_cast<double>((*o)->bytes()) / static_cast<double>(n);
  }
}
BENCHMARK(BM_OutboxBytesPerKey)->Arg(100'000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
