// WindowStore (issue 15): the minute/hour/day buckets written with each flush, checked against
// a model of every delta and its flush time, and the invariants: the minutes of an hour sum
// to the hour, the hours of a day to the day, a never-moved key's days to its lifetime
// totals, the groups to the whole. With an injected clock across hour and day edges, after a
// failed flush (FaultFs), after kill -9 and after retention removed buckets.
#include "persistence/window_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <tuple>

#include "persistence/db.h"
#include "tests/unit/persistence/fault_fs.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Resolution;
using core::Scope;
using core::Totals;
using core::UnixSeconds;

constexpr int64_t kNs = 1'000'000'000;
// 2026-11-30T22:58:30Z: an hour and a day edge come soon.
constexpr UnixSeconds kStart = 1'796'079'510;
constexpr uint64_t kGroups = 3;
constexpr uint64_t kKeys = 12;

uint64_t GroupOf(uint64_t key) { return key % kGroups + 1; }

using BucketId = std::tuple<Resolution, UnixSeconds, Scope, uint64_t>;

// Small rollup parts, so closed minutes are rolled up over several flushes (and a crash can
// fall between two parts).
const WindowOptions kOptions{.min_rollup_keys = 2, .max_rollup_lag = 300};

class WindowStoreTest : public StoreFixture<> {
 protected:
  void SetUp() override {
    clock_.Set(kStart * kNs);
    opts_.clock = &clock_;
    OpenAll();
    for (uint64_t g = 1; g <= kGroups; ++g) {
      ASSERT_TRUE(store_->CreateGroup(TestGroup(g)).ok());
    }
    for (uint64_t k = 1; k <= kKeys; ++k) {
      ASSERT_TRUE(store_->CreateKey(TestKey(k, GroupOf(k))).ok());
    }
  }
  void TearDown() override {
    windows_.reset();
    StoreFixture<>::TearDown();
  }
  // (Re)opens the store and a WindowStore over it, loaded and registered.
  void OpenAll() {
    windows_.reset();
    Reopen();
    windows_ = std::make_unique<WindowStore>(store_->db(), clock_, retention_, kOptions);
    ASSERT_TRUE(windows_->Load().ok());
    store_->AddParticipant(windows_.get());
  }
  UnixSeconds Now() const { return clock_.NowNs() / kNs; }

  // Flushes `deltas` at the clock's time and adds them to the model.
  void Flush(std::vector<core::KeyDelta> deltas) {
    const auto copy = deltas;
    auto r = store_->ApplyFlush(&deltas);
    ASSERT_TRUE(r.ok()) << r.status().message();
    Record(copy, Now());
  }
  void Record(const std::vector<core::KeyDelta>& deltas, UnixSeconds t) {
    for (const core::KeyDelta& d : deltas) {
      Totals v;
      v.Add(static_cast<int64_t>(d.successes), static_cast<int64_t>(d.failures));
      const uint64_t group = store_->GetKey(d.key)->group_id;
      for (Resolution r : core::kResolutions) {
        const UnixSeconds s = core::BucketStart(t, r);
        model_[{r, s, Scope::kWhole, 0}] += v;
        model_[{r, s, Scope::kGroup, group}] += v;
        model_[{r, s, Scope::kKey, d.key}] += v;
      }
    }
  }
  std::vector<core::KeyDelta> RandomDeltas() {
    std::vector<core::KeyDelta> out;
    for (uint64_t k = 1; k <= kKeys; ++k) {
      if (rng_() % 3 != 0) {
        out.push_back({k, rng_() % 50, rng_() % 5});
      }
    }
    return out;
  }

  Totals Model(Resolution r, UnixSeconds start, Scope scope, uint64_t id) {
    return model_[{r, start, scope, id}];
  }
  Totals One(Resolution r, UnixSeconds start, Scope scope, uint64_t id) {
    auto s = windows_->Series(scope, id, {start, start + core::Seconds(r), r});
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? (*s)[0] : Totals{};
  }
  std::vector<std::pair<Scope, uint64_t>> Scopes() const {
    std::vector<std::pair<Scope, uint64_t>> out = {{Scope::kWhole, 0}};
    for (uint64_t g = 1; g <= kGroups; ++g) {
      out.emplace_back(Scope::kGroup, g);
    }
    for (uint64_t k = 1; k <= kKeys; ++k) {
      out.emplace_back(Scope::kKey, k);
    }
    return out;
  }

  // Every bucket of [from, to) read back equals the model, and the invariants hold: the
  // minutes of each hour sum to it, the hours of each day to it, the groups to the whole.
  void CheckAll(UnixSeconds from, UnixSeconds to) {
    const UnixSeconds d0 = core::BucketStart(from, Resolution::kDay);
    const UnixSeconds d1 = core::BucketCeil(to, Resolution::kDay);
    for (const auto& [scope, id] : Scopes()) {
      const core::Window minutes{d0, d1, Resolution::kMinute};
      auto m = windows_->Series(scope, id, minutes);
      auto h = windows_->Series(scope, id, {d0, d1, Resolution::kHour});
      auto d = windows_->Series(scope, id, {d0, d1, Resolution::kDay});
      ASSERT_TRUE(m.ok() && h.ok() && d.ok());
      for (size_t i = 0; i < m->size(); ++i) {
        const UnixSeconds t = d0 + static_cast<int64_t>(i) * 60;
        ASSERT_EQ((*m)[i], Model(Resolution::kMinute, t, scope, id))
            << "minute " << t << " scope " << int(scope) << " id " << id;
      }
      for (size_t i = 0; i < h->size(); ++i) {
        Totals sum;
        for (size_t j = 0; j < 60; ++j) {
          sum += (*m)[i * 60 + j];
        }
        ASSERT_EQ((*h)[i], sum) << "hour " << i << " scope " << int(scope) << " id " << id;
        ASSERT_EQ((*h)[i],
                  Model(Resolution::kHour, d0 + static_cast<int64_t>(i) * 3600, scope, id));
      }
      for (size_t i = 0; i < d->size(); ++i) {
        Totals sum;
        for (size_t j = 0; j < 24; ++j) {
          sum += (*h)[i * 24 + j];
        }
        ASSERT_EQ((*d)[i], sum) << "day " << i << " scope " << int(scope) << " id " << id;
      }
    }
    for (Resolution r : core::kResolutions) {
      for (UnixSeconds t = core::BucketStart(from, r); t < to; t += core::Seconds(r)) {
        Totals groups;
        for (uint64_t g = 1; g <= kGroups; ++g) {
          groups += One(r, t, Scope::kGroup, g);
        }
        ASSERT_EQ(groups, One(r, t, Scope::kWhole, 0)) << "bucket " << t;
      }
    }
  }
  // Every key's sums over the window from `since` to now (top's read) equal each key's own
  // sum over the same buckets (the summary's read), and leave out no key with counts.
  void CheckKeyTotals(UnixSeconds since) {
    auto plan = core::PlanSummary(since, std::nullopt, retention_, Now());
    ASSERT_TRUE(plan.ok());
    auto all = windows_->KeyTotals(*plan);
    ASSERT_TRUE(all.ok());
    std::map<uint64_t, Totals> got;
    for (const KeyWindowTotals& k : *all) {
      got[k.key] = k.totals;
    }
    for (uint64_t k = 1; k <= kKeys; ++k) {
      auto sum = windows_->Sum(Scope::kKey, k, *plan);
      ASSERT_TRUE(sum.ok());
      EXPECT_EQ(got[k], *sum) << "key " << k;
    }
    EXPECT_LE(got.size(), kKeys);
  }
  // With day retention unlimited, each key's days sum to its lifetime totals.
  void CheckLifetimes() {
    const UnixSeconds d0 = core::BucketStart(kStart, Resolution::kDay);
    const UnixSeconds d1 = core::BucketCeil(Now() + 1, Resolution::kDay);
    for (uint64_t k = 1; k <= kKeys; ++k) {
      auto d = windows_->Series(Scope::kKey, k, {d0, d1, Resolution::kDay});
      ASSERT_TRUE(d.ok());
      Totals sum;
      for (const Totals& t : *d) {
        sum += t;
      }
      EXPECT_EQ(sum, store_->GetKey(k)->totals) << "key " << k;
    }
  }

  testing::FaultEnv fault_;  // the store's env only where a test sets opts_.env; outlives it
  core::Retention retention_;
  std::unique_ptr<WindowStore> windows_;
  std::map<BucketId, Totals> model_;
  std::mt19937_64 rng_{42};
};

TEST_F(WindowStoreTest, BucketsMatchEveryFlushAcrossHourAndDayEdges) {
  // 22:58:30 to 01:05: a flush every 25 s crosses 23:00, the day edge and 01:00; some
  // minutes get several flushes, none are skipped.
  while (Now() < kStart + 2 * 3600 + 400) {
    Flush(RandomDeltas());
    clock_.Advance(25 * kNs);
  }
  CheckAll(kStart, Now());
  CheckLifetimes();
  CheckKeyTotals(kStart + 1234);
  CheckKeyTotals(kStart + 3 * 3600 / 2);
  EXPECT_GT(windows_->stats().rollups, 100u);
}

TEST_F(WindowStoreTest, TheOpenMinuteIsReadFromMemoryAndSurvivesACleanRestart) {
  Flush({{1, 5, 1}, {2, 3, 0}});
  clock_.Advance(10 * kNs);
  Flush({{1, 1, 1}});
  EXPECT_GT(windows_->stats().pending_keys, 0u);
  const UnixSeconds m = core::BucketStart(Now(), Resolution::kMinute);
  EXPECT_EQ(One(Resolution::kMinute, m, Scope::kKey, 1).total, 8);
  OpenAll();  // the pending minute comes back from the journal
  EXPECT_EQ(One(Resolution::kMinute, m, Scope::kKey, 1).total, 8);
  CheckKeyTotals(kStart);
  clock_.Advance(60 * kNs);
  Flush({{1, 1, 0}});  // rolls the previous minute up
  EXPECT_EQ(One(Resolution::kMinute, m, Scope::kKey, 1).total, 8);
  CheckAll(kStart, Now());
  CheckLifetimes();
}

TEST_F(WindowStoreTest, AMovedKeyKeepsItsPastInTheOldGroupAndADeletedKeyKeepsItsPast) {
  Flush({{1, 4, 0}});
  ApiKey moved = *store_->GetKey(1);
  const uint64_t old_group = moved.group_id;
  moved.group_id = old_group % kGroups + 1;
  ASSERT_TRUE(store_->PutKey(moved).ok());
  Flush({{1, 0, 3}});
  const UnixSeconds h = core::BucketStart(Now(), Resolution::kHour);
  EXPECT_EQ(One(Resolution::kHour, h, Scope::kGroup, old_group).total, 4);
  EXPECT_EQ(One(Resolution::kHour, h, Scope::kGroup, moved.group_id).total, 3);
  EXPECT_EQ(One(Resolution::kHour, h, Scope::kKey, 1).total, 7);
  ASSERT_TRUE(store_->DeleteKey(1).ok());
  clock_.Advance(120 * kNs);
  std::vector<core::KeyDelta> dropped = {{1, 9, 9}};
  ASSERT_TRUE(store_->ApplyFlush(&dropped).ok());  // dropped: the key is deleted
  EXPECT_EQ(One(Resolution::kHour, h, Scope::kKey, 1).total, 7);
  EXPECT_EQ(One(Resolution::kHour, h, Scope::kWhole, 0).total, 7);
  CheckAll(kStart, Now());
}

TEST_F(WindowStoreTest, RetentionRemovesExpiredBucketsByRangeAndKeepsTheInvariants) {
  retention_.minute = 2 * 3600;
  retention_.hour = 2 * 86400;
  OpenAll();
  // 26 hours, a flush every 10 minutes.
  while (Now() < kStart + 26 * 3600) {
    Flush(RandomDeltas());
    clock_.Advance(600 * kNs);
  }
  Flush(RandomDeltas());
  EXPECT_GE(windows_->stats().sweeps, 20u);
  // No minute bucket before the oldest held remains in RocksDB (the sweep's DeleteRange; the
  // flush that would sweep next is at most an hour away, so allow one step).
  const UnixSeconds oldest = core::OldestHeld(Resolution::kMinute, retention_, Now());
  const Db& db = store_->db();
  std::unique_ptr<rocksdb::Iterator> it(db.rocks()->NewIterator({}, db.windows()));
  size_t minutes_left = 0;
  for (it->Seek(core::EncodeBucketPrefix(Resolution::kMinute, 0)); it->Valid() && it->key()[0] == 1;
       it->Next()) {
    auto k = core::DecodeBucketKey(std::string_view(it->key().data(), it->key().size()));
    ASSERT_TRUE(k.ok());
    ASSERT_GE(k->start, oldest - 3600) << "an expired minute bucket is still stored";
    ++minutes_left;
  }
  EXPECT_GT(minutes_left, 0u);
  // What is held still nests, and the days (kept forever) still sum to the lifetimes.
  const UnixSeconds held = core::BucketCeil(oldest, Resolution::kHour);
  for (const auto& [scope, id] : Scopes()) {
    const UnixSeconds h = core::BucketStart(Now(), Resolution::kHour) - 3600;
    if (h < held) {
      continue;
    }
    auto m = windows_->Series(scope, id, {h, h + 3600, Resolution::kMinute});
    ASSERT_TRUE(m.ok());
    Totals sum;
    for (const Totals& t : *m) {
      sum += t;
    }
    EXPECT_EQ(sum, One(Resolution::kHour, h, scope, id));
  }
  CheckLifetimes();
}

TEST_F(WindowStoreTest, AFailedFlushLeavesNoBucketAndTheRetryIsExact) {
  opts_.env = fault_.env.get();
  OpenAll();
  Flush({{1, 2, 2}, {2, 1, 0}});
  clock_.Advance(70 * kNs);  // the next flush would roll the minute up
  fault_.fs->set_mode(testing::FaultFs::Mode::kFailSync);
  std::vector<core::KeyDelta> pending = {{1, 5, 0}, {3, 0, 4}};
  for (int i = 0; i < 2; ++i) {
    auto copy = pending;
    ASSERT_FALSE(store_->ApplyFlush(&copy).ok());
  }
  CheckAll(kStart, Now());  // the model has none of the failed flushes
  fault_.fs->set_mode(testing::FaultFs::Mode::kNone);
  Flush(pending);
  CheckAll(kStart, Now());
  OpenAll();
  CheckAll(kStart, Now());
  CheckLifetimes();
}

// kill -9: a child process (this binary, running only the disabled test below) flushes,
// rolling some minutes up and leaving the last pending, and SIGKILLs itself without closing;
// the reopened store's windows hold every committed flush.
constexpr int kChildFlushes = 40;
constexpr char kChildDirEnv[] = "TALLY_WINDOWS_CRASH_DIR";

std::vector<core::KeyDelta> ChildDeltas(std::mt19937_64& rng) {
  std::vector<core::KeyDelta> out;
  for (uint64_t key = 1 + rng() % 3; key <= kKeys; key += 1 + rng() % 4) {
    const uint64_t s = rng() % 9;
    out.push_back({key, s, rng() % 3});
  }
  return out;
}

TEST(WindowStoreCrashChild, DISABLED_FlushThenKill9) {
  const char* dir = getenv(kChildDirEnv);
  ASSERT_NE(dir, nullptr);
  core::ManualClock clock(kStart * kNs);
  StoreOptions opts;
  opts.clock = &clock;
  auto store = Store::Open(dir, opts);
  ASSERT_TRUE(store.ok());
  WindowStore windows((*store)->db(), clock, core::Retention{}, kOptions);
  ASSERT_TRUE(windows.Load().ok());
  (*store)->AddParticipant(&windows);
  std::mt19937_64 rng(7);
  for (int i = 0; i < kChildFlushes; ++i) {
    std::vector<core::KeyDelta> d = ChildDeltas(rng);
    ASSERT_TRUE((*store)->ApplyFlush(&d).ok());
    clock.Advance(17 * kNs);
  }
  raise(SIGKILL);
}

TEST_F(WindowStoreTest, CommittedWindowsSurviveKill9) {
  windows_.reset();
  store_.reset();
  const pid_t pid = fork();
  if (pid == 0) {
    setenv(kChildDirEnv, db_dir().c_str(), 1);
    execl("/proc/self/exe", "window_store_child",
          "--gtest_filter=WindowStoreCrashChild.DISABLED_FlushThenKill9",
          "--gtest_also_run_disabled_tests", nullptr);
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  OpenAll();
  std::mt19937_64 rng(7);  // the child's flushes, replayed into the model
  for (int i = 0; i < kChildFlushes; ++i) {
    Record(ChildDeltas(rng), Now());
    clock_.Advance(17 * kNs);
  }
  EXPECT_GT(windows_->stats().pending_keys, 0u);
  CheckAll(kStart, Now());
  CheckLifetimes();
}

}  // namespace
}  // namespace tally::persistence
