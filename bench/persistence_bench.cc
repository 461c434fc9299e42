// Persistence benchmarks: the atomic flush of 10k / 100k / 1M changed keys over 1,000
// groups, the start-up load of 1M key records, and bytes on disk per key record after
// compaction. Figures and targets: docs/performance.md ("Persistence").
//
//   build-store/bench/tally_persistence_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
//
// (`tally_persistence_bench --crash-child DIR` is the child BM_StartupAfterCrash runs.)
// For profiling one step alone: `--populate DIR` writes the database into DIR (new),
// `--crash-child DIR` leaves it as after a crash, `--open DIR` times one Store::Open and
// prints `open_ms=... keys=...`, e.g. `perf record -g tally_persistence_bench --open DIR`.
//
// The database (1,000 groups, 1M keys, key i in group i % 1000 + 1, each with totals) is
// written once per run with raw RocksDB batches, which is much faster than 1M synced admin
// changes, then opened through Store::Open like tallyd does. $TMPDIR picks the disk.
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/raw_db.h"
#include "persistence/record_codec.h"
#include "persistence/store.h"

namespace {

using tally::core::KeyDelta;
using tally::core::Totals;
using namespace tally::persistence;

constexpr uint64_t kGroups = 1'000;
constexpr uint64_t kKeys = 1'000'000;

uint64_t GroupOf(uint64_t key) { return key % kGroups + 1; }

// Writes kGroups groups and kKeys keys into a new database under `dir`, raw.
void Populate(const std::string& dir) {
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  std::unique_ptr<rocksdb::DB> db = OpenRawForPopulate(dir, &h);
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  std::vector<Totals> group_totals(kGroups + 1);
  rocksdb::WriteBatch batch;
  std::string value;
  for (uint64_t id = 1; id <= kKeys; ++id) {
    ApiKey k;
    k.id = id;
    k.created_at = k.updated_at = 1'767'000'000'000'000'000;
    k.group_id = GroupOf(id);
    char secret[48];
    std::snprintf(secret, sizeof secret, "sk-%040llx",
                  static_cast<unsigned long long>(id * 2654435761u));
    k.api_key = secret;
    k.account_id = std::string("acct-") + std::to_string(id % 5000);
    Totals t;
    t.Add(static_cast<int64_t>(id % 1000), static_cast<int64_t>(id % 37));
    group_totals[k.group_id] += t;
    batch.Put(h[2], IdKey(id), EncodeKey(k));
    EncodeTotals(t, &value);
    batch.Put(h[3], IdKey(id), value);
    if (batch.Count() >= 20'000) {
      (void)db->Write(wo, &batch);
      batch.Clear();
    }
  }
  for (uint64_t g = 1; g <= kGroups; ++g) {
    ProviderGroup group;
    group.id = g;
    group.name = std::string("group-") + std::to_string(g);
    group.type = "openai";
    group.base_url = "https://api.example.com/v1";
    group.models = "gpt-4o,gpt-4o-mini";
    group.totals = group_totals[g];
    batch.Put(h[1], IdKey(g), EncodeGroup(group));
  }
  (void)db->Write(wo, &batch);
  (void)db->Flush(rocksdb::FlushOptions(), h);
  for (auto* handle : h) {
    (void)db->DestroyColumnFamilyHandle(handle);
  }
}

// The shared database, created on first use and removed at exit.
class Fixture {
 public:
  static Fixture& Get() {
    static Fixture f;
    return f;
  }
  const std::string& dir() const { return dir_; }
  ~Fixture() { std::filesystem::remove_all(root_); }

 private:
  Fixture() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/tally-bench-XXXXXX";
    root_ = mkdtemp(pattern.data());
    dir_ = root_ + "/db";
    Populate(dir_);
  }
  std::string root_;
  std::string dir_;
};

// CPU time of the whole process (every thread: RocksDB's background flushes and
// compactions, the second load thread) in ms; the benchmarks report its growth per
// iteration as `process_cpu_ms`, beside Google Benchmark's CPU time (the main thread only).
double ProcessCpuMs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

std::unique_ptr<Store> OpenOrDie(const std::string& dir) {
  auto store = Store::Open(dir);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().message().c_str());
    std::exit(1);
  }
  return std::move(*store);
}

// One flush of `n` changed keys spread over the 1M keys and over all 1,000 groups.
void BM_Flush(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  std::unique_ptr<Store> store = OpenOrDie(Fixture::Get().dir());
  std::vector<KeyDelta> deltas;
  for (uint64_t i = 0; i < n; ++i) {
    // Distinct keys for i < 1M (1,000,003 is coprime with 1M), cycling through all 1,000
    // groups (key % 1000 = 3i % 1000 + 1).
    deltas.push_back({(i * 1'000'003) % kKeys + 1, 3, 1});
  }
  const double cpu_before = ProcessCpuMs();
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<KeyDelta> batch = deltas;
    state.ResumeTiming();
    auto result = store->ApplyFlush(&batch);
    if (!result.ok() || result->keys_updated != n || result->groups_updated != kGroups) {
      state.SkipWithError("flush failed");
      break;
    }
  }
  state.counters["process_cpu_ms"] =
      (ProcessCpuMs() - cpu_before) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.counters["ns_per_key"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Flush)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// Brings the database to the state every start-up is timed from, untimed: compacted (one
// sorted run per family), nothing in the WAL. Without it the state was whatever RocksDB's
// compactions had caught up with of the flush benchmark's back-to-back 1M-key flushes: up to
// ~20 overlapping key_totals files, every one read by the load (seconds), which said more
// about the order of the benchmarks than about a start-up.
void Settle(const std::string& dir) {
  if (!OpenOrDie(dir)->Compact().ok()) {
    std::fprintf(stderr, "compaction failed\n");
    std::exit(1);
  }
}

// Store::Open of 1M key records and 1,000 groups after a clean close (nothing to replay):
// RocksDB open plus the load into memory.
void BM_StartupLoad(benchmark::State& state) {
  const std::string& dir = Fixture::Get().dir();
  size_t keys = 0;
  double cpu_ms = 0;
  Settle(dir);
  for (auto _ : state) {
    const double cpu_before = ProcessCpuMs();
    std::unique_ptr<Store> store = OpenOrDie(dir);
    cpu_ms += ProcessCpuMs() - cpu_before;
    state.PauseTiming();
    keys = store->live_keys();
    store.reset();
    state.ResumeTiming();
  }
  if (keys != kKeys) {
    state.SkipWithError("wrong key count after load");
  }
  state.counters["keys"] = static_cast<double>(keys);
  state.counters["process_cpu_ms"] = cpu_ms / static_cast<double>(state.iterations());
}
BENCHMARK(BM_StartupLoad)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// Store::Open after a crash: from the settled database, a child process opens the store,
// applies two flushes of all 1M keys and exits without closing (its writes are synced in
// the WAL only), then the timed Open replays that WAL and loads 1M records.
void BM_StartupAfterCrash(benchmark::State& state) {
  const std::string& dir = Fixture::Get().dir();
  size_t keys = 0;
  double cpu_ms = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Settle(dir);
    // A fresh process (fork + exec): RocksDB's thread pools do not survive a bare fork.
    pid_t pid = fork();
    if (pid == 0) {
      execl("/proc/self/exe", "tally_persistence_bench", "--crash-child", dir.c_str(), nullptr);
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError("child flush failed");
      break;
    }
    state.ResumeTiming();
    const double cpu_before = ProcessCpuMs();
    std::unique_ptr<Store> store = OpenOrDie(dir);
    cpu_ms += ProcessCpuMs() - cpu_before;
    state.PauseTiming();
    keys = store->live_keys();
    store.reset();
    state.ResumeTiming();
  }
  state.counters["keys"] = static_cast<double>(keys);
  state.counters["process_cpu_ms"] = cpu_ms / static_cast<double>(state.iterations());
}
BENCHMARK(BM_StartupAfterCrash)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// Bytes on disk (SST + WAL) per key record after a full compaction. Reported as a counter;
// the time is the compaction's.
void BM_DiskBytesPerKey(benchmark::State& state) {
  std::unique_ptr<Store> store = OpenOrDie(Fixture::Get().dir());
  for (auto _ : state) {
    if (!store->Compact().ok()) {
      state.SkipWithError("compaction failed");
      break;
    }
  }
  state.counters["bytes_per_key"] =
      static_cast<double>(store->DiskBytes()) / static_cast<double>(kKeys);
}
BENCHMARK(BM_DiskBytesPerKey)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// One flush of `n` keys never seen before (ids above every existing one), as traffic from
// new keys makes: each gets its key record and its totals. Registered last: it adds keys to
// the shared database.
void BM_FlushNewKeys(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  std::unique_ptr<Store> store = OpenOrDie(Fixture::Get().dir());
  static uint64_t next =
      kKeys + 1'000'000;  // above every other benchmark's keys; kept by repetitions
  const double cpu_before = ProcessCpuMs();
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<KeyDelta> batch;
    for (uint64_t i = 0; i < n; ++i) {
      batch.push_back({next + (i * 7'919) % n, 1, 0});  // not in id order, as a drain is
    }
    next += n;
    state.ResumeTiming();
    auto result = store->ApplyFlush(&batch);
    if (!result.ok() || result->keys_created != n) {
      state.SkipWithError("flush failed");
      break;
    }
  }
  state.counters["process_cpu_ms"] =
      (ProcessCpuMs() - cpu_before) / static_cast<double>(state.iterations());
  state.counters["ns_per_key"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FlushNewKeys)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(10);

// The child of BM_StartupAfterCrash: two flushes of every key, then exit without closing.
int CrashChild(const std::string& dir) {
  std::unique_ptr<Store> store = OpenOrDie(dir);
  for (int i = 0; i < 2; ++i) {
    std::vector<KeyDelta> deltas;
    for (uint64_t k = 1; k <= kKeys; ++k) {
      deltas.push_back({k, 1, 0});
    }
    if (!store->ApplyFlush(&deltas).ok()) {
      _exit(1);
    }
  }
  _exit(0);  // no close, no destructors: as after a crash
}

// --open DIR: one timed Store::Open, for profiling the start-up apart from the rest.
int OpenOnce(const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Store> store = OpenOrDie(dir);
  const auto took = std::chrono::steady_clock::now() - start;
  std::printf("open_ms=%.1f keys=%zu\n", std::chrono::duration<double, std::milli>(took).count(),
              store->live_keys());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--crash-child") {
    return CrashChild(argv[2]);
  }
  if (argc == 3 && std::string(argv[1]) == "--populate") {
    Populate(argv[2]);
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "--open") {
    return OpenOnce(argv[2]);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
