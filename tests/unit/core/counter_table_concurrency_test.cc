// CounterTable under concurrency: writers and a flusher draining in a tight loop, same-key
// inserts racing, and the bound racing. Exact, key by key. Also run under ThreadSanitizer
// (scripts/test.sh, stage tsan).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/counter_table.h"

namespace tally::core {
namespace {

struct Totals {
  uint64_t successes = 0;
  uint64_t failures = 0;
  bool operator==(const Totals&) const = default;
};
using TotalsByKey = std::unordered_map<uint64_t, Totals>;

// Drains `table` in a tight loop until `stop`, then once more, summing every delta. Checks
// that no drain names a key twice or hands out an empty delta.
class Flusher {
 public:
  explicit Flusher(CounterTable& table) : table_(table), thread_([this] { Run(); }) {}
  // Call after every writer has joined.
  TotalsByKey Finish() {
    stop_.store(true, std::memory_order_relaxed);  // relaxed: a flag; join orders the rest
    thread_.join();
    DrainOnce();
    return std::move(totals_);
  }
  uint64_t nonempty_drains() const { return nonempty_drains_; }
  // Non-empty drains so far, readable from other threads while the flusher runs.
  uint64_t racing_drains() const { return racing_drains_.load(std::memory_order_relaxed); }
  uint64_t bad_deltas() const { return bad_deltas_; }

 private:
  void Run() {
    while (!stop_.load(std::memory_order_relaxed)) {  // relaxed: see Finish
      DrainOnce();
    }
  }
  void DrainOnce() {
    batch_.clear();
    table_.Drain(&batch_);
    keys_.clear();
    for (const KeyDelta& d : batch_) {
      if (d.successes == 0 && d.failures == 0) {
        ++bad_deltas_;
      }
      totals_[d.key].successes += d.successes;
      totals_[d.key].failures += d.failures;
      keys_.push_back(d.key);
    }
    std::sort(keys_.begin(), keys_.end());
    bad_deltas_ += static_cast<uint64_t>(keys_.end() - std::unique(keys_.begin(), keys_.end()));
    nonempty_drains_ += batch_.empty() ? 0 : 1;
    // Relaxed: a progress gauge for the writers, publishing nothing.
    racing_drains_.store(nonempty_drains_, std::memory_order_relaxed);
  }

  CounterTable& table_;
  std::atomic<bool> stop_{false};
  TotalsByKey totals_;
  std::vector<KeyDelta> batch_;
  std::vector<uint64_t> keys_;
  uint64_t nonempty_drains_ = 0;
  std::atomic<uint64_t> racing_drains_{0};
  uint64_t bad_deltas_ = 0;
  std::thread thread_;  // last: starts once the members above exist
};

void ExpectSameTotals(const TotalsByKey& want, const TotalsByKey& got) {
  EXPECT_EQ(got.size(), want.size());
  size_t wrong = 0;
  for (const auto& [key, totals] : want) {
    auto it = got.find(key);
    if (it == got.end() || !(it->second == totals)) {
      if (++wrong <= 10) {
        ADD_FAILURE() << "key " << key << " added " << totals.successes << "/" << totals.failures
                      << " drained "
                      << (it == got.end() ? "nothing"
                                          : std::to_string(it->second.successes) + "/" +
                                                std::to_string(it->second.failures));
      }
    }
  }
  EXPECT_EQ(wrong, 0u);
}

struct Op {
  uint64_t key;
  uint64_t successes;
  uint64_t failures;
};

// One writer's adds, drawn in advance so the timed loop is nothing but Add calls: half on
// two hot keys every writer shares, 40% on 20,000 cold keys, 10% on keys never seen before
// (half of those shared with every other writer, so fresh keys are also inserted by several
// threads at once).
std::vector<Op> MakeOps(int writer, size_t n) {
  std::mt19937_64 rng(1000 + writer);
  uint64_t next_fresh = uint64_t{1} << 40 | uint64_t(writer) << 32;
  uint64_t shared_fresh = uint64_t{1} << 50;
  std::vector<Op> ops(n);
  for (Op& op : ops) {
    uint64_t pick = rng() % 100;
    if (pick < 50) {
      op.key = 1 + rng() % 2;
    } else if (pick < 90) {
      op.key = 1001 + rng() % 20'000;
    } else if (pick < 95) {
      op.key = next_fresh++;
    } else {
      op.key = shared_fresh++;
    }
    uint64_t shape = rng() % 10;
    op.successes = shape < 6 ? 1 + rng() % 1000 : 0;
    op.failures = shape >= 4 ? 1 + rng() % 1000 : 0;
    if (shape == 9) {
      op.successes = (uint64_t{1} << 32) - 1;  // the per-line maximum now and then
    }
  }
  return ops;
}

TEST(CounterTableConcurrency, WritersAndATightDrainLoopLoseNothingAndCountNothingTwice) {
  constexpr int kWriters = 4;
  constexpr size_t kOpsPerWriter = 400'000;
  CounterTable table(200'000);
  std::vector<std::vector<Op>> ops;
  for (int w = 0; w < kWriters; ++w) {
    ops.push_back(MakeOps(w, kOpsPerWriter));
  }
  std::vector<std::vector<size_t>> refused_ops(kWriters);
  std::latch start(kWriters + 1);

  Flusher flusher(table);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      start.arrive_and_wait();
      for (size_t i = 0; i < ops[w].size(); ++i) {
        const Op& op = ops[w][i];
        if (!table.Add(op.key, op.successes, op.failures)) {
          refused_ops[w].push_back(i);
        }
      }
    });
  }
  start.arrive_and_wait();
  for (auto& t : writers) {
    t.join();
  }
  TotalsByKey drained = flusher.Finish();

  TotalsByKey want;
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_TRUE(refused_ops[w].empty()) << "writer " << w;
    for (const Op& op : ops[w]) {
      want[op.key].successes += op.successes;
      want[op.key].failures += op.failures;
    }
  }
  EXPECT_EQ(flusher.bad_deltas(), 0u);
  ExpectSameTotals(want, drained);
  EXPECT_EQ(table.keys(), want.size());
  // The flusher must really have raced the writers, not only drained at the end.
  EXPECT_GE(flusher.nonempty_drains(), 2u);
}

// The narrowest race, made as likely as possible: writers hammer two keys while the flusher
// does nothing but drain them. The writers go on until the flusher has taken 5,000
// non-empty drains while they ran (or 3 s passed), so the two really overlap even when the
// machine is busy.
TEST(CounterTableConcurrency, HotKeysHammeredWhileDrainingLoseNothing) {
  constexpr int kWriters = 2;
  constexpr uint64_t kMinAddsPerWriter = 200'000;
  CounterTable table(16);
  std::latch start(kWriters + 1);
  std::vector<std::thread> writers;
  std::vector<uint64_t> adds(kWriters);
  std::atomic<int> refusals{0};
  Flusher flusher(table);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      start.arrive_and_wait();
      uint64_t n = 0;
      while (n < kMinAddsPerWriter ||
             (flusher.racing_drains() < 5'000 && std::chrono::steady_clock::now() < deadline)) {
        for (int i = 0; i < 1000; ++i, ++n) {
          if (!table.Add(7, 1, 0) || !table.Add(9, 0, 1)) {
            refusals.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after join
          }
        }
      }
      adds[w] = n;
    });
  }
  start.arrive_and_wait();
  for (auto& t : writers) {
    t.join();
  }
  TotalsByKey drained = flusher.Finish();
  uint64_t total = adds[0] + adds[1];
  EXPECT_EQ(refusals.load(), 0);
  EXPECT_EQ(flusher.bad_deltas(), 0u);
  ExpectSameTotals({{7, {total, 0}}, {9, {0, total}}}, drained);
  EXPECT_GE(flusher.nonempty_drains(), 2u);
}

// The overflow rule under races: two writers add values just under the packed limit to two
// hot keys (so a half of the packed word passes 2^31 every ~32,768 adds and spills into the
// wide counters, often with both writers spilling at once), and now and then a value past
// it (straight to the wide counters), while a flusher drains every 50 ms (often enough to
// race the spills, seldom enough to let words fill up even under TSan). The writers go on
// until 20 spills and 5 drains have happened (or 10 s passed). Totals exact.
TEST(CounterTableConcurrency, SpillsRacingAddsAndDrainsLoseNothing) {
  constexpr int kWriters = 2;
  constexpr uint64_t kMinAdds = 100'000;
  const uint64_t big = CounterTable::kPackedLimit - 1;
  CounterTable table(16);
  std::latch start(kWriters + 1);
  std::atomic<bool> stop{false};
  std::atomic<int> drains{0};
  TotalsByKey drained;
  auto drain = [&] {
    std::vector<KeyDelta> out;
    table.Drain(&out);
    for (const KeyDelta& d : out) {
      drained[d.key].successes += d.successes;
      drained[d.key].failures += d.failures;
    }
  };
  std::thread flusher([&] {
    while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag; join orders the rest
      drain();
      drains.fetch_add(1, std::memory_order_relaxed);              // relaxed: a progress gauge
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // flush interval: pacing
    }
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::vector<std::thread> writers;
  std::vector<uint64_t> adds(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      start.arrive_and_wait();
      uint64_t n = 0;
      while (n < kMinAdds || ((table.spills() < 20 || drains.load(std::memory_order_relaxed) < 5) &&
                              std::chrono::steady_clock::now() < deadline)) {
        for (int i = 0; i < 1000; ++i, ++n) {
          bool ok = table.Add(7, big, 1) && table.Add(9, 1, big);
          if (i == 0) {
            ok = ok && table.Add(7, uint64_t{1} << 20, 0);
          }
          EXPECT_TRUE(ok);
        }
      }
      adds[w] = n;
    });
  }
  start.arrive_and_wait();
  for (auto& t : writers) {
    t.join();
  }
  stop.store(true, std::memory_order_relaxed);
  flusher.join();
  drain();
  const uint64_t total = adds[0] + adds[1];
  const uint64_t wide = (total / 1000) * (uint64_t{1} << 20);
  ExpectSameTotals({{7, {total * big + wide, total}}, {9, {total, total * big}}}, drained);
  EXPECT_GE(table.spills(), 20u);  // the test exercised what it is about
  EXPECT_GE(drains.load(), 5);
}

TEST(CounterTableConcurrency, SameNewKeysFromManyThreadsCountIntoOneEntry) {
  constexpr int kThreads = 4;
  constexpr uint64_t kKeys = 5'000;
  constexpr int kRounds = 3;
  CounterTable table(kKeys);  // exactly room for them: a duplicate insert would be refused
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> refusals{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int round = 0; round < kRounds; ++round) {
        for (uint64_t i = 0; i < kKeys; ++i) {
          // Same order on every thread, so threads meet on the same fresh key.
          if (!table.Add((i + 1) * 7919, 1, t % 2)) {
            refusals.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after join
          }
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(refusals.load(), 0);
  EXPECT_EQ(table.refused(), 0u);
  EXPECT_EQ(table.keys(), kKeys);
  std::vector<KeyDelta> out;
  table.Drain(&out);
  ASSERT_EQ(out.size(), kKeys);
  for (const KeyDelta& d : out) {
    EXPECT_EQ(d.successes, uint64_t{kThreads} * kRounds) << d.key;
    EXPECT_EQ(d.failures, uint64_t{kThreads / 2} * kRounds) << d.key;
  }
}

// Threads race to insert more keys than fit, some of them the same keys, while a flusher
// drains. The bound holds exactly, every refusal is counted, and a refusal is never spurious:
// a key is either in the table with every one of its adds, or refused every time.
TEST(CounterTableConcurrency, BoundHoldsAndRefusalsAreExactUnderRaces) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 40;
  constexpr size_t kMaxKeys = 64;
  constexpr uint64_t kUniverse = 160;  // keys 1..160, 2.5x the room
  for (int round = 0; round < kRounds; ++round) {
    CounterTable table(kMaxKeys);
    std::latch start(kThreads);
    std::vector<std::vector<uint64_t>> accepted(kThreads, std::vector<uint64_t>(kUniverse + 1));
    std::vector<std::vector<uint64_t>> refused(kThreads, std::vector<uint64_t>(kUniverse + 1));
    Flusher flusher(table);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Even rounds: every thread walks the keys in the same order, so same-key inserts
        // meet at the bound. Odd rounds: each thread has its own order.
        std::vector<uint64_t> order(kUniverse);
        for (uint64_t i = 0; i < kUniverse; ++i) {
          order[i] = i + 1;
        }
        std::mt19937_64 rng(round % 2 == 0 ? round : round * 100 + t);
        std::shuffle(order.begin(), order.end(), rng);
        start.arrive_and_wait();
        for (int pass = 0; pass < 3; ++pass) {
          for (uint64_t key : order) {
            (table.Add(key, 1, 0) ? accepted : refused)[t][key] += 1;
          }
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    TotalsByKey drained = flusher.Finish();
    ASSERT_EQ(flusher.bad_deltas(), 0u);
    EXPECT_EQ(table.keys(), kMaxKeys);
    EXPECT_EQ(drained.size(), kMaxKeys);
    uint64_t refusals = 0;
    for (uint64_t key = 1; key <= kUniverse; ++key) {
      uint64_t ok = 0;
      uint64_t no = 0;
      for (int t = 0; t < kThreads; ++t) {
        ok += accepted[t][key];
        no += refused[t][key];
      }
      refusals += no;
      auto it = drained.find(key);
      if (it != drained.end()) {
        EXPECT_EQ(it->second.successes, ok) << "round " << round << " key " << key;
        EXPECT_EQ(no, 0u) << "round " << round << " key " << key << " refused yet present";
      } else {
        EXPECT_EQ(ok, 0u) << "round " << round << " key " << key << " accepted yet absent";
      }
    }
    EXPECT_EQ(table.refused(), refusals);
    if (HasFailure()) {
      break;
    }
  }
}

}  // namespace
}  // namespace tally::core
