// Core micro benchmarks: the counter table against a plain array of atomics, the drain, the
// parser, and resident bytes per key. Figures and targets: docs/performance.md ("Core").
//
//   build-core/bench/tally_core_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
//
// Add benchmarks replay a pre-drawn sequence of (key, outcome) pairs, 90% success, so the
// timed loop holds nothing but the adds. The table is pre-filled: every key is present.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/counter_table.h"
#include "core/ingest.h"
#include "core/line_parser.h"
#include "bench/core_bench_keys.h"

namespace {

using namespace tally::core;

using namespace tally::bench;

constexpr size_t kBatch = 1024;  // ops per benchmark iteration

// ---- the two structures under test ----------------------------------------------------------

struct alignas(16) ArraySlot {
  std::atomic<uint64_t> successes{0};  // relaxed adds: a baseline that publishes nothing
  std::atomic<uint64_t> failures{0};
};

// The physical limit of this design: one array slot per possible key id, no lookup.
class AtomicArray {
 public:
  explicit AtomicArray(uint32_t max_key) : slots_(new ArraySlot[max_key + 1]) {}
  void Prefetch(uint32_t op) const { __builtin_prefetch(&slots_[op & ~kFailureBit], 1, 3); }
  void Add(uint32_t op) {
    ArraySlot& slot = slots_[op & ~kFailureBit];
    if ((op & kFailureBit) != 0) {
      slot.failures.fetch_add(1, std::memory_order_relaxed);
    } else {
      slot.successes.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  std::unique_ptr<ArraySlot[]> slots_;
};

// A table holding keys id_of(1)..id_of(keys), ids 1..keys unless told otherwise.
CounterTable* FilledTable(size_t max_keys, uint32_t keys,
                          uint64_t (*id_of)(uint32_t) = [](uint32_t k) { return uint64_t{k}; }) {
  auto* table = new CounterTable(max_keys, /*hash_seed=*/12345);
  for (uint32_t k = 1; k <= keys; ++k) {
    if (!table->Add(id_of(k), 1, 0)) {
      std::abort();
    }
  }
  return table;
}

// Tables and arrays live for the whole run (leaked on purpose), one per shape.
CounterTable& Table100kSized() {
  static CounterTable* t = FilledTable(100'000, 100'000);
  return *t;
}
CounterTable& Table100kRandomIds() {
  static CounterTable* t =
      FilledTable(100'000, 100'000, [](uint32_t k) { return RandomIds100k()[k - 1]; });
  return *t;
}
CounterTable& Table100kInDefault() {
  static CounterTable* t = FilledTable(CounterTable::kDefaultMaxKeys, 100'000);
  return *t;
}
CounterTable& Table1M() {
  static CounterTable* t = FilledTable(CounterTable::kDefaultMaxKeys, 1'000'000);
  return *t;
}
AtomicArray& Array100k() {
  static AtomicArray* a = new AtomicArray(100'000);
  return *a;
}
AtomicArray& Array1M() {
  static AtomicArray* a = new AtomicArray(1'000'000);
  return *a;
}

void TableAdd(CounterTable& table, uint32_t op) {
  bool ok = (op & kFailureBit) != 0 ? table.Add(op & ~kFailureBit, 0, 1) : table.Add(op, 1, 0);
  benchmark::DoNotOptimize(ok);
}

template <typename Target, typename AddFn>
void RunAdds(benchmark::State& state, Target& target, const std::vector<uint32_t>& ops, AddFn add) {
  size_t pos = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      add(target, ops[pos + i]);
    }
    pos = (pos + kBatch) & (kSequence - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}

// Batched, the way IngestBuffer (core/ingest.h) feeds the table: the parser fills a batch of
// Increments, then CounterTable::AddBatch adds them (all the home buckets prefetched first).
// Both structures read the same pre-built Increments; the array gets a prefetch of
// the batch's slots before its adds, so the ratio compares like with like.

void ArrayAddBatch(AtomicArray& array, const Increment* batch) {
  for (size_t i = 0; i < kIngestBatch; ++i) {
    array.Prefetch(static_cast<uint32_t>(batch[i].key));
  }
  for (size_t i = 0; i < kIngestBatch; ++i) {
    array.Add(static_cast<uint32_t>(batch[i].key) | (batch[i].failures != 0 ? kFailureBit : 0));
  }
}

void TableAddBatch(CounterTable& table, const Increment* batch) {
  benchmark::DoNotOptimize(table.AddBatch(batch, kIngestBatch));
}

template <typename Target, typename AddBatchFn>
void RunAddsBatched(benchmark::State& state, Target& target, const std::vector<Increment>& incs,
                    AddBatchFn add_batch) {
  size_t pos = 0;
  for (auto _ : state) {
    for (size_t b = 0; b < kBatch; b += kIngestBatch) {
      add_batch(target, &incs[pos + b]);
    }
    pos = (pos + kBatch) & (kSequence - 1);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}
static_assert(kBatch % kIngestBatch == 0);

// ---- Add: uniform over 100k keys, distinct keys per thread ----------------------------------

void BM_AddUniform100k_Array(benchmark::State& state) {
  const auto& ops = Uniform100kOps(state.thread_index(), state.threads());
  RunAdds(state, Array100k(), ops, [](AtomicArray& a, uint32_t op) { a.Add(op); });
}
void BM_AddUniform100k_TableSized100k(benchmark::State& state) {
  const auto& ops = Uniform100kOps(state.thread_index(), state.threads());
  RunAdds(state, Table100kSized(), ops, TableAdd);
}
void BM_AddUniform100k_TableDefault1M(benchmark::State& state) {
  const auto& ops = Uniform100kOps(state.thread_index(), state.threads());
  RunAdds(state, Table100kInDefault(), ops, TableAdd);
}
BENCHMARK(BM_AddUniform100k_Array)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AddUniform100k_TableSized100k)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AddUniform100k_TableDefault1M)->Threads(1)->Threads(2)->UseRealTime();

void BM_AddUniform100kBatched_Array(benchmark::State& state) {
  const auto& incs = Uniform100kIncrements(state.thread_index(), state.threads());
  RunAddsBatched(state, Array100k(), incs, ArrayAddBatch);
}
void BM_AddUniform100kBatched_TableSized100k(benchmark::State& state) {
  const auto& incs = Uniform100kIncrements(state.thread_index(), state.threads());
  RunAddsBatched(state, Table100kSized(), incs, TableAddBatch);
}
void BM_AddUniform100kBatched_TableDefault1M(benchmark::State& state) {
  const auto& incs = Uniform100kIncrements(state.thread_index(), state.threads());
  RunAddsBatched(state, Table100kInDefault(), incs, TableAddBatch);
}
BENCHMARK(BM_AddUniform100kBatched_Array)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AddUniform100kBatched_TableSized100k)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AddUniform100kBatched_TableDefault1M)->Threads(1)->Threads(2)->UseRealTime();

// The same load on random ids (no target; see RandomIds100k).
void BM_AddUniform100kBatched_TableRandomIds(benchmark::State& state) {
  RunAddsBatched(state, Table100kRandomIds(), Uniform100kRandomIdIncrements(), TableAddBatch);
}
BENCHMARK(BM_AddUniform100kBatched_TableRandomIds)->UseRealTime();

// ---- Add: Zipf(0.99) over 1M keys, shared by the threads ------------------------------------

void BM_AddZipf1M_Array(benchmark::State& state) {
  const auto& ops = Zipf1MOps(state.thread_index());
  RunAdds(state, Array1M(), ops, [](AtomicArray& a, uint32_t op) { a.Add(op); });
}
void BM_AddZipf1M_Table(benchmark::State& state) {
  const auto& ops = Zipf1MOps(state.thread_index());
  RunAdds(state, Table1M(), ops, TableAdd);
}
BENCHMARK(BM_AddZipf1M_Array)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AddZipf1M_Table)->Threads(1)->Threads(2)->UseRealTime();

void BM_AddZipf1MBatched_Array(benchmark::State& state) {
  RunAddsBatched(state, Array1M(), Zipf1MIncrements(state.thread_index()), ArrayAddBatch);
}
void BM_AddZipf1MBatched_Table(benchmark::State& state) {
  RunAddsBatched(state, Table1M(), Zipf1MIncrements(state.thread_index()), TableAddBatch);
}
BENCHMARK(BM_AddZipf1MBatched_Array)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_AddZipf1MBatched_Table)->Threads(1)->Threads(2)->UseRealTime();

// ---- Drain ----------------------------------------------------------------------------------

// 1M keys, every one changed since the last drain. Refilling is not timed.
void BM_Drain1MChanged(benchmark::State& state) {
  CounterTable& table = Table1M();
  std::vector<KeyDelta> out;
  out.reserve(1'000'000);
  table.Drain(&out);
  for (auto _ : state) {
    state.PauseTiming();
    out.clear();
    for (uint32_t k = 1; k <= 1'000'000; ++k) {
      benchmark::DoNotOptimize(table.Add(k, 1, k % 10 == 0 ? 1 : 0));
    }
    state.ResumeTiming();
    size_t n = table.Drain(&out);
    if (n != 1'000'000) {
      state.SkipWithError("drain did not return every key");
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 1'000'000);
}
BENCHMARK(BM_Drain1MChanged)->Unit(benchmark::kMillisecond)->Iterations(10);

// 1M keys held, none changed: the cost of a drain in a quiet interval (the bitmap pass).
void BM_DrainIdle1M(benchmark::State& state) {
  CounterTable& table = Table1M();
  std::vector<KeyDelta> out;
  out.reserve(1'000'000);
  table.Drain(&out);
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(table.Drain(&out));
  }
}
BENCHMARK(BM_DrainIdle1M)->Unit(benchmark::kMicrosecond);

// ---- Parser ---------------------------------------------------------------------------------

// Realistic 20-30 byte lines ("apikey.<1..100000>.success:1|c"), 50 per buffer like a
// gateway's datagram.
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
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buffer.size()));
  state.counters["bytes_per_line"] = static_cast<double>(buffer.size()) / 50.0;
}
BENCHMARK(BM_ParseBuffer);

// The DogStatsD tag form, for comparison (longer lines; no target).
void BM_ParseBufferTagForm(benchmark::State& state) {
  std::mt19937_64 rng(43);
  std::string buffer;
  for (int i = 0; i < 50; ++i) {
    buffer +=
        "apikey.requests:1|c|#key:" + std::to_string(1 + rng() % 100000) + ",outcome:success\n";
  }
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
  state.counters["bytes_per_line"] = static_cast<double>(buffer.size()) / 50.0;
}
BENCHMARK(BM_ParseBufferTagForm);

// Parse and count: what a receiving thread does per datagram, into a table at the default
// bound already holding the keys.
void BM_IngestBuffer(benchmark::State& state) {
  std::string buffer = MakeBuffer(50);
  CounterTable& table = Table100kInDefault();
  for (auto _ : state) {
    benchmark::DoNotOptimize(IngestBuffer(buffer, "apikey", table));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 50);
}
BENCHMARK(BM_IngestBuffer);

// ---- Memory ---------------------------------------------------------------------------------

size_t ResidentBytes() {
  long pages = 0;
  long resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) {
      resident = 0;
    }
    std::fclose(f);
  }
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Resident memory per tracked key: RSS growth from constructing a table at the default bound
// and inserting `keys` keys (range(0)), divided by the keys.
void BM_MemoryPerKey(benchmark::State& state) {
  const auto keys = static_cast<uint32_t>(state.range(0));
  double per_key = 0;
  double reserved_per_key = 0;
  for (auto _ : state) {
    size_t before = ResidentBytes();
    CounterTable table(CounterTable::kDefaultMaxKeys, /*hash_seed=*/777);
    for (uint32_t k = 1; k <= keys; ++k) {
      benchmark::DoNotOptimize(table.Add(k, 1, 0));
    }
    size_t after = ResidentBytes();
    per_key = static_cast<double>(after - before) / keys;
    reserved_per_key = static_cast<double>(table.reserved_bytes()) / keys;
  }
  state.counters["resident_bytes_per_key"] = per_key;
  state.counters["reserved_bytes_per_key"] = reserved_per_key;
}
BENCHMARK(BM_MemoryPerKey)
    ->Arg(1'000'000)
    ->Arg(100'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// For valgrind (callgrind counts instructions, simulated cache misses and mispredicted
// branches): --drive=<array|table-sized|table-default> replays 2^22 uniform adds over 100k
// keys and exits, so per-add figures are the totals divided by 2^22. Setup is outside the
// function Drive*, so `callgrind --toggle-collect=*Drive*` counts only the adds.
__attribute__((noinline)) void DriveArray(AtomicArray& a, const std::vector<uint32_t>& ops) {
  for (int round = 0; round < 4; ++round) {
    for (uint32_t op : ops) {
      a.Add(op);
    }
  }
}
__attribute__((noinline)) void DriveTable(CounterTable& t, const std::vector<uint32_t>& ops) {
  for (int round = 0; round < 4; ++round) {
    for (uint32_t op : ops) {
      TableAdd(t, op);
    }
  }
}

int Drive(std::string_view what) {
  const auto& ops = Uniform100kOps(0, 1);
  if (what == "array") {
    DriveArray(Array100k(), ops);
  } else if (what == "table-sized") {
    DriveTable(Table100kSized(), ops);
  } else if (what == "table-default") {
    DriveTable(Table100kInDefault(), ops);
  } else {
    std::fprintf(stderr, "--drive=array|table-sized|table-default\n");
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]).starts_with("--drive=")) {
    return Drive(std::string_view(argv[1]).substr(8));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
