// The ban rule's cost at the flush (issue 16): a flush of 100k active keys, each with a delta,
// with the BanKeeper as a flush participant. The rule's time (its Stage and Commit, timed by
// a wrapper) is reported beside the whole flush's time of the same iterations, so the ratio
// is measured in one run on one (noisy, shared) machine. Target: under 10% of the flush.
//
//   build/bench/tally_ban_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The database (100 groups, 100k keys, key i in group i % 100 + 1) is written raw, then
// opened through Store::Open. Every key gets 3 successes and 1 failure per flush (so every key
// is judged and none is banned), and the store's clock moves one second per flush (the
// window slides). One warm-up flush first (not measured): the windows exist, as they do in
// a running daemon. $TMPDIR picks the disk.
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/raw_db.h"
#include "core/clock.h"
#include "persistence/ban_keeper.h"
#include "persistence/record_codec.h"
#include "persistence/store.h"

namespace {

using namespace tally::persistence;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kGroups = 100;
constexpr uint64_t kKeys = 100'000;

void Populate(const std::string& dir) {
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  std::unique_ptr<rocksdb::DB> db = OpenRawForPopulate(dir, &h);
  rocksdb::WriteBatch batch;
  for (uint64_t g = 1; g <= kGroups; ++g) {
    ProviderGroup group;
    group.id = g;
    char name[24];
    std::snprintf(name, sizeof name, "g%llu", static_cast<unsigned long long>(g));
    group.name = name;
    group.type = "openai";
    group.base_url = "http://upstream";
    batch.Put(h[1], IdKey(g), EncodeGroup(group));
  }
  for (uint64_t id = 1; id <= kKeys; ++id) {
    ApiKey k;
    k.id = id;
    k.group_id = id % kGroups + 1;
    char secret[32];
    std::snprintf(secret, sizeof secret, "sk-%llu", static_cast<unsigned long long>(id));
    k.api_key = secret;
    batch.Put(h[2], IdKey(id), EncodeKey(k));
  }
  (void)db->Write(rocksdb::WriteOptions(), &batch);
  for (auto* handle : h) {
    (void)db->DestroyColumnFamilyHandle(handle);
  }
}

// Forwards to the keeper and adds up the time its flush steps take.
// This thread's CPU time, ns.
int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

class Timed : public FlushParticipant {
 public:
  explicit Timed(BanKeeper& keeper) : keeper_(keeper) {}
  tally::core::Status Stage(const FlushView& f, rocksdb::WriteBatch* b) override {
    auto t = Clock::now();
    int64_t c = ThreadCpuNs();
    tally::core::Status s = keeper_.Stage(f, b);
    cpu_ns += ThreadCpuNs() - c;
    spent += Clock::now() - t;
    return s;
  }
  void Commit(const FlushView& f) override {
    auto t = Clock::now();
    int64_t c = ThreadCpuNs();
    keeper_.Commit(f);
    cpu_ns += ThreadCpuNs() - c;
    spent += Clock::now() - t;
  }
  void Abort() override { keeper_.Abort(); }
  Clock::duration spent{};
  int64_t cpu_ns = 0;

 private:
  BanKeeper& keeper_;
};

void BM_FlushWithBanRule(benchmark::State& state) {
  const bool with_rule = state.range(0) != 0;
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("tally_ban_bench_" + std::to_string(getpid())))
          .string();
  std::filesystem::remove_all(dir);
  Populate(dir);
  tally::core::ManualClock clock(1'800'000'000'000'000'000);
  StoreOptions opts;
  opts.clock = &clock;
  auto store = Store::Open(dir, opts);
  if (!store.ok()) {
    state.SkipWithError(store.status().message().c_str());
    return;
  }
  BanKeeper keeper(tally::core::BanPolicy{}, nullptr);
  Timed timed(keeper);
  if (with_rule) {
    if (!(*store)->AddKeyObserver(&keeper).ok()) {
      state.SkipWithError("load");
      return;
    }
    (*store)->AddParticipant(&timed);
  }
  auto deltas_of_every_key = [] {
    std::vector<tally::core::KeyDelta> deltas;
    deltas.reserve(kKeys);
    for (uint64_t id = 1; id <= kKeys; ++id) {
      deltas.push_back({id, 3, 1});
    }
    return deltas;
  };
  // Warm-up, not measured: the steady state, where every key's window already exists (the
  // first flush after a start allocates them: 100k rings of 480 bytes).
  {
    std::vector<tally::core::KeyDelta> deltas = deltas_of_every_key();
    clock.Advance(1'000'000'000);
    (void)(*store)->ApplyFlush(&deltas);
    timed.spent = {};
    timed.cpu_ns = 0;
  }
  Clock::duration flush_time{};
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<tally::core::KeyDelta> deltas = deltas_of_every_key();
    clock.Advance(1'000'000'000);
    state.ResumeTiming();
    auto t = Clock::now();
    auto r = (*store)->ApplyFlush(&deltas);
    flush_time += Clock::now() - t;
    if (!r.ok()) {
      state.SkipWithError(r.status().message().c_str());
      break;
    }
  }
  const double flush_ms = std::chrono::duration<double, std::milli>(flush_time).count() /
                          static_cast<double>(state.iterations());
  const double rule_ms = std::chrono::duration<double, std::milli>(timed.spent).count() /
                         static_cast<double>(state.iterations());
  state.counters["flush_ms"] = flush_ms;
  state.counters["rule_ms"] = rule_ms;
  const double rule_cpu_ms =
      static_cast<double>(timed.cpu_ns) / 1e6 / static_cast<double>(state.iterations());
  state.counters["rule_share"] = flush_ms > 0 ? rule_ms / flush_ms : 0;
  state.counters["rule_cpu_ms"] = rule_cpu_ms;
  state.counters["rule_cpu_share"] = flush_ms > 0 ? rule_cpu_ms / flush_ms : 0;
  store->reset();
  std::filesystem::remove_all(dir);
}
// 0: the flush alone (the baseline); 1: with the ban rule.
BENCHMARK(BM_FlushWithBanRule)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(10);

}  // namespace

BENCHMARK_MAIN();
