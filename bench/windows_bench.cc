// Time-window benchmarks (issue 15): the flush of 100k changed keys with and without the
// window buckets (same run, the ratio is the figure), and the window queries on a database of
// 100k keys holding 48 h of minute buckets. Figures and targets: docs/performance.md ("Time
// windows").
//
//   build/bench/tally_windows_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
//
// The query database is written once per run with RocksDB's SstFileWriter (sorted files
// ingested whole: minutes instead of hours of synced flushes), then opened with Store::Open.
// Its shape: kKeys keys in kGroups groups; every key has a bucket in every minute of the last
// kDenseMinutes minutes and every hour and day of the 48 h; in the older minutes one key in
// kSparseEvery has a bucket (the whole and the groups have every minute). $TMPDIR picks the
// disk; TALLY_WINDOWS_SPARSE_EVERY overrides kSparseEvery (1: every key in every minute).
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/raw_db.h"
#include "core/windows.h"
#include "persistence/db.h"
#include "persistence/record_codec.h"
#include "persistence/store.h"
#include "persistence/window_store.h"

namespace {

using tally::core::KeyDelta;
using tally::core::Resolution;
using tally::core::Scope;
using tally::core::Totals;
using namespace tally::persistence;
namespace core = tally::core;

constexpr uint64_t kGroups = 100;
constexpr uint64_t kKeys = 100'000;
constexpr int64_t kHours = 48;
constexpr int64_t kDenseMinutes = 60;
// 2026-11-30T12:17:30Z, "now" of the query database: not on an edge, so a last-24-hours
// window is minutes, hours and minutes, as an operator's would be.
constexpr core::UnixSeconds kNow = 1'796'041'050;

uint64_t GroupOf(uint64_t key) { return key % kGroups + 1; }

int64_t SparseEvery() {
  const char* env = getenv("TALLY_WINDOWS_SPARSE_EVERY");
  return env != nullptr && atoll(env) > 0 ? atoll(env) : 20;
}

std::string MakeTemp() {
  const char* tmp = getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/tally-wbench-XXXXXX";
  return mkdtemp(pattern.data());
}

// kKeys key records (no windows), raw, as bench/persistence_bench.cc does.
void PopulateKeys(const std::string& dir) {
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
    k.api_key = "sk-" + std::to_string(id * 2654435761u);
    Totals t;
    t.Add(1000, 10);
    group_totals[k.group_id] += t;
    batch.Put(h[2], IdKey(id), EncodeKey(k));
    EncodeTotals(t, &value);
    batch.Put(h[3], IdKey(id), value);
  }
  for (uint64_t g = 1; g <= kGroups; ++g) {
    ProviderGroup group;
    group.id = g;
    group.name = "group-" + std::to_string(g);
    group.type = "openai";
    group.base_url = "https://api.example.com/v1";
    group.totals = group_totals[g];
    batch.Put(h[1], IdKey(g), EncodeGroup(group));
  }
  (void)db->Write(wo, &batch);
  (void)db->Flush(rocksdb::FlushOptions(), h);
  for (auto* handle : h) {
    (void)db->DestroyColumnFamilyHandle(handle);
  }
}

// The bucket of key `id` in minute `m` (the same numbers whatever the resolution).
Totals KeyMinute(uint64_t id, int64_t m) {
  Totals t;
  t.Add(static_cast<int64_t>(1 + (id + m) % 7), static_cast<int64_t>((id * 31 + m) % 3 == 0));
  return t;
}

bool KeyActive(uint64_t id, int64_t minutes_ago, int64_t sparse) {
  return minutes_ago < kDenseMinutes || static_cast<int64_t>(id) % sparse == minutes_ago % sparse;
}

// Writes the 48 h of buckets into SST files and ingests them into `db`'s windows family.
void PopulateWindows(const std::string& root, Store& store) {
  const int64_t sparse = SparseEvery();
  const Db& db = store.db();
  rocksdb::Options options;
  options.merge_operator = NewWindowsMergeOperator();
  std::vector<std::string> files;
  std::string value;
  const int64_t first_minute = kNow / 60 - kHours * 60;
  const auto write_file = [&](Resolution r, int64_t from, int64_t to) {
    // Buckets [from, to) of resolution r, each the sum of its minutes (exact nesting).
    rocksdb::SstFileWriter w(rocksdb::EnvOptions(), options);
    const std::string path = root + "/w" + std::to_string(files.size()) + ".sst";
    (void)w.Open(path);
    for (int64_t b = from; b < to; b += core::Seconds(r)) {
      std::vector<Totals> keys(kKeys + 1);
      std::vector<char> active(kKeys + 1, 0);
      std::vector<Totals> groups(kGroups + 1);
      Totals whole;
      for (int64_t t = std::max(b, first_minute * 60); t < b + core::Seconds(r) && t < kNow;
           t += 60) {
        const int64_t m = t / 60;
        const int64_t ago = kNow / 60 - 1 - m;
        for (uint64_t id = 1; id <= kKeys; ++id) {
          if (!KeyActive(id, ago, sparse)) {
            continue;
          }
          const Totals v = KeyMinute(id, m);
          keys[id] += v;
          active[id] = 1;
          groups[GroupOf(id)] += v;
          whole += v;
        }
      }
      EncodeTotals(whole, &value);
      (void)w.Put(core::EncodeBucketKey({r, b, Scope::kWhole, 0}), value);
      for (uint64_t g = 1; g <= kGroups; ++g) {
        EncodeTotals(groups[g], &value);
        (void)w.Put(core::EncodeBucketKey({r, b, Scope::kGroup, g}), value);
      }
      for (uint64_t id = 1; id <= kKeys; ++id) {
        if (active[id] != 0) {
          EncodeTotals(keys[id], &value);
          (void)w.Put(core::EncodeBucketKey({r, b, Scope::kKey, id}), value);
        }
      }
    }
    (void)w.Finish();
    files.push_back(path);
  };
  const int64_t start = first_minute * 60;
  write_file(Resolution::kMinute, start, kNow);
  write_file(Resolution::kHour, core::BucketStart(start, Resolution::kHour), kNow);
  write_file(Resolution::kDay, core::BucketStart(start, Resolution::kDay),
             core::BucketCeil(kNow, Resolution::kDay));
  rocksdb::IngestExternalFileOptions io;
  io.move_files = true;
  rocksdb::Status s = db.rocks()->IngestExternalFile(db.windows(), files, io);
  if (!s.ok()) {
    std::fprintf(stderr, "ingest: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<Store> OpenOrDie(const std::string& dir, const StoreOptions& options = {}) {
  auto store = Store::Open(dir, options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().message().c_str());
    std::exit(1);
  }
  return std::move(*store);
}

// ---- Flush: 100k changed keys, windows off (arg 0) and on (arg 1: a flush a second, so one
// in 60 rolls the previous minute up; arg 2: a flush a minute, so every flush rolls up 100k
// keys: the dearest flush there is) -----------------------------------------------------------

class FlushFixture {
 public:
  static FlushFixture& Get() {
    static FlushFixture f;
    return f;
  }
  const std::string& dir() const { return dir_; }
  ~FlushFixture() { std::filesystem::remove_all(root_); }

 private:
  FlushFixture() : root_(MakeTemp()), dir_(root_ + "/db") { PopulateKeys(dir_); }
  std::string root_;
  std::string dir_;
};

void BM_Flush100k(benchmark::State& state) {
  const bool windows = state.range(0) != 0;
  const int64_t interval_ns = state.range(0) == 2 ? 60'000'000'000 : 1'000'000'000;
  core::ManualClock clock(int64_t{kNow} * 1'000'000'000);
  StoreOptions options;
  options.clock = &clock;
  std::unique_ptr<Store> store = OpenOrDie(FlushFixture::Get().dir(), options);
  WindowStore window_store(store->db(), clock, core::Retention{});
  if (windows) {
    store->AddParticipant(&window_store);
  }
  std::vector<KeyDelta> deltas;
  for (uint64_t i = 1; i <= kKeys; ++i) {
    deltas.push_back({i, 3, 1});
  }
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<KeyDelta> batch = deltas;
    clock.Advance(interval_ns);
    state.ResumeTiming();
    auto result = store->ApplyFlush(&batch);
    if (!result.ok() || result->keys_updated != kKeys) {
      state.SkipWithError("flush failed");
      break;
    }
  }
  state.counters["ns_per_key"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kKeys),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Flush100k)
    ->ArgName("windows")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

// ---- Queries on 48 h of buckets ---------------------------------------------------------------

class QueryFixture {
 public:
  static QueryFixture& Get() {
    static QueryFixture f;
    return f;
  }
  Store& store() { return *store_; }
  WindowStore& windows() { return *windows_; }
  ~QueryFixture() {
    windows_.reset();
    store_.reset();
    std::filesystem::remove_all(root_);
  }

 private:
  QueryFixture() : root_(MakeTemp()), clock_(int64_t{kNow} * 1'000'000'000) {
    PopulateKeys(root_ + "/db");
    StoreOptions options;
    options.clock = &clock_;
    store_ = OpenOrDie(root_ + "/db", options);
    PopulateWindows(root_, *store_);
    windows_ = std::make_unique<WindowStore>(store_->db(), clock_, core::Retention{});
    if (!windows_->Load().ok()) {
      std::exit(1);
    }
  }
  std::string root_;
  core::ManualClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<WindowStore> windows_;
};

void BM_Summary24h(benchmark::State& state) {
  WindowStore& w = QueryFixture::Get().windows();
  int64_t total = 0;
  for (auto _ : state) {
    auto plan = core::PlanSummary(kNow - 86400, std::nullopt, w.retention(), kNow);
    auto sum = w.Sum(Scope::kWhole, 0, *plan);
    if (!sum.ok()) {
      state.SkipWithError("sum failed");
      break;
    }
    total = sum->total;
  }
  state.counters["total"] = static_cast<double>(total);
}
BENCHMARK(BM_Summary24h)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_KeySeries1440Minutes(benchmark::State& state) {
  WindowStore& w = QueryFixture::Get().windows();
  const core::Window window{core::BucketCeil(kNow, Resolution::kMinute) - 1440 * 60,
                            core::BucketCeil(kNow, Resolution::kMinute), Resolution::kMinute};
  int64_t total = 0;
  for (auto _ : state) {
    auto points = w.Series(Scope::kKey, 4242, window);
    if (!points.ok() || points->size() != 1440) {
      state.SkipWithError("series failed");
      break;
    }
    total = 0;
    for (const Totals& t : *points) {
      total += t.total;
    }
  }
  state.counters["total"] = static_cast<double>(total);
}
BENCHMARK(BM_KeySeries1440Minutes)->Unit(benchmark::kMillisecond)->UseRealTime();

// The top 20 by failures: every key's sums over the window, then a partial sort (the API's
// ranking; it then reads the 20 keys' records).
void BM_Top20(benchmark::State& state) {
  WindowStore& w = QueryFixture::Get().windows();
  const int64_t seconds = state.range(0);
  size_t keys = 0;
  for (auto _ : state) {
    auto plan = core::PlanSummary(kNow - seconds, std::nullopt, w.retention(), kNow);
    auto all = w.KeyTotals(*plan);
    if (!all.ok()) {
      state.SkipWithError("scan failed");
      break;
    }
    keys = all->size();
    std::partial_sort(all->begin(), all->begin() + std::min<size_t>(20, all->size()), all->end(),
                      [](const KeyWindowTotals& a, const KeyWindowTotals& b) {
                        return a.totals.failure != b.totals.failure
                                   ? a.totals.failure > b.totals.failure
                                   : a.key < b.key;
                      });
    benchmark::DoNotOptimize(all->front());
  }
  state.counters["keys"] = static_cast<double>(keys);
}
BENCHMARK(BM_Top20)
    ->ArgName("seconds")
    ->Arg(300)
    ->Arg(86400)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Bytes of the windows family's table files per stored bucket entry, after a compaction, and
// what that makes per key and day for a key active in every minute of the day (1,440 minute,
// 24 hour and 1 day buckets).
void BM_WindowBytes(benchmark::State& state) {
  Store& store = QueryFixture::Get().store();
  const Db& db = store.db();
  for (auto _ : state) {
    rocksdb::CompactRangeOptions o;
    (void)db.rocks()->CompactRange(o, db.windows(), nullptr, nullptr);
  }
  uint64_t bytes = 0, entries = 0;
  db.rocks()->GetIntProperty(db.windows(), "rocksdb.total-sst-files-size", &bytes);
  db.rocks()->GetIntProperty(db.windows(), "rocksdb.estimate-num-keys", &entries);
  const double per_entry = static_cast<double>(bytes) / static_cast<double>(entries);
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["entries"] = static_cast<double>(entries);
  state.counters["bytes_per_entry"] = per_entry;
  state.counters["bytes_per_key_day"] = per_entry * (1440 + 24 + 1);
}
BENCHMARK(BM_WindowBytes)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
