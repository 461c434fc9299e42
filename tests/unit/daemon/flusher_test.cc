// Flusher with a real store: a waiter is released by a flush that includes the increments
// added before it registered, learns what that flush wrote, and is refused after the stop.
#include "daemon/ingest/flusher.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tests/unit/persistence/fault_fs.h"

namespace tally::daemon {
namespace {

FlushOutcome WaitOutcome(Flusher& f) {
  std::promise<FlushOutcome> p;
  std::future<FlushOutcome> done = p.get_future();
  f.AfterFlushOutcome([&p](const FlushOutcome& o) { p.set_value(o); });
  f.Wake();
  EXPECT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return done.get();
}

TEST(Flusher, WaitersLearnWhatTheirFlushWrote) {
  testing::TempDir dir;
  auto store = persistence::Store::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  core::CounterTable table(1000);
  // An hour between ticks: only Wake() flushes.
  Flusher flusher(table, **store, std::chrono::hours(1));
  flusher.Start();

  ASSERT_TRUE(table.Add(7, 3, 1));
  ASSERT_TRUE(table.Add(8, 0, 2));
  FlushOutcome first = WaitOutcome(flusher);
  EXPECT_TRUE(first.committed);
  EXPECT_EQ(first.keys_updated, 2u);
  EXPECT_EQ(first.groups_updated, 0u);  // unassigned keys
  EXPECT_EQ(first.epoch, (*store)->epoch());
  EXPECT_EQ((*store)->Summary().total, 6);

  // Nothing new: committed, nothing written, the epoch stands.
  FlushOutcome second = WaitOutcome(flusher);
  EXPECT_TRUE(second.committed);
  EXPECT_EQ(second.keys_updated, 0u);
  EXPECT_EQ(second.epoch, first.epoch);

  bool committed_before_stop = false;
  std::promise<void> called;
  ASSERT_TRUE(table.Add(7, 1, 0));
  flusher.AfterFlush([&](bool committed) {
    committed_before_stop = committed;
    called.set_value();
  });
  EXPECT_TRUE(flusher.Stop());  // the final flush releases the waiter
  called.get_future().wait();
  EXPECT_TRUE(committed_before_stop);
  EXPECT_EQ((*store)->Summary().total, 7);
  EXPECT_EQ(flusher.stats().overruns, 0u);

  // After the stop there is no flush to wait for.
  bool after = true;
  flusher.AfterFlush([&](bool committed) { after = committed; });
  EXPECT_FALSE(after);
}

// Each attempt's duration reaches its observer before the attempt is counted in stats(), so
// /metrics, which reads the count first, never shows the duration histogram behind it (CI
// saw tallyd_flush_duration_seconds_count 1 beside tallyd_flushes_total{ok} 2 when the
// histogram was filled after the count).
TEST(Flusher, TheDurationIsObservedBeforeTheAttemptIsCounted) {
  testing::TempDir dir;
  auto store = persistence::Store::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  core::CounterTable table(1000);
  Flusher flusher(table, **store, std::chrono::hours(1));
  std::vector<uint64_t> counted_at_observation;  // the flusher thread's, read after Stop
  flusher.SetOnDuration([&](double seconds) {
    EXPECT_GE(seconds, 0);
    const FlushStats s = flusher.stats();
    counted_at_observation.push_back(s.ok + s.errors);
  });
  flusher.Start();
  ASSERT_TRUE(table.Add(7, 3, 1));
  EXPECT_TRUE(WaitOutcome(flusher).committed);
  EXPECT_TRUE(WaitOutcome(flusher).committed);
  EXPECT_TRUE(flusher.Stop());
  const FlushStats s = flusher.stats();
  ASSERT_EQ(counted_at_observation.size(), s.ok + s.errors);
  for (size_t i = 0; i < counted_at_observation.size(); ++i) {
    EXPECT_EQ(counted_at_observation[i], i) << "attempt " << i + 1;
  }
}

// The backoff follows the current streak of failures: after a success, the next failure is
// retried after interval x 2, however many failures came before (it was interval x 32).
TEST(Flusher, BackoffFollowsTheCurrentStreakNotLifetimeErrors) {
  using Clock = std::chrono::steady_clock;
  testing::TempDir dir;
  testing::FaultEnv fault;
  persistence::StoreOptions opts;
  opts.env = fault.env.get();
  auto store = persistence::Store::Open(dir.Sub("db"), opts);
  ASSERT_TRUE(store.ok()) << store.status().message();
  core::CounterTable table(1000);
  const auto interval = std::chrono::milliseconds(100);
  Flusher flusher(table, **store, interval);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<Clock::time_point, FlushStats>> attempts;  // guarded by mu
  flusher.SetOnAttempt([&](const FlushStats& s) {
    std::lock_guard lock(mu);
    attempts.emplace_back(Clock::now(), s);
    cv.notify_all();
  });
  // Waits until an attempt after the first `seen` satisfies `pred`; returns its index.
  auto wait_for = [&](size_t seen, auto pred) -> size_t {
    std::unique_lock lock(mu);
    size_t found = SIZE_MAX;
    cv.wait_for(lock, std::chrono::seconds(20), [&] {
      for (size_t i = seen; i < attempts.size(); ++i) {
        if (pred(attempts[i].second)) {
          found = i;
          return true;
        }
      }
      return false;
    });
    return found;
  };
  auto count = [&] {
    std::lock_guard lock(mu);
    return attempts.size();
  };
  flusher.Start();

  // Six failures in a row (woken at once, not waiting for the backoff), then a success.
  fault.fs->set_mode(testing::FaultFs::Mode::kFailWrites);
  ASSERT_TRUE(table.Add(7, 1, 0));
  for (uint64_t n = 1; n <= 6; ++n) {
    size_t seen = count();
    flusher.Wake();
    ASSERT_NE(wait_for(seen, [](const FlushStats& s) { return s.failing; }), SIZE_MAX);
  }
  EXPECT_GE(flusher.stats().errors, 6u);
  EXPECT_GE(flusher.stats().error_streak, 6u);
  fault.fs->set_mode(testing::FaultFs::Mode::kNone);
  size_t seen = count();
  flusher.Wake();
  ASSERT_NE(wait_for(seen, [](const FlushStats& s) { return !s.failing; }), SIZE_MAX);
  EXPECT_EQ(flusher.stats().error_streak, 0u);

  // One new failure: the retry comes after about 2 x 100 ms, not 32 x 100 ms.
  fault.fs->set_mode(testing::FaultFs::Mode::kFailWrites);
  ASSERT_TRUE(table.Add(7, 1, 0));
  seen = count();
  flusher.Wake();
  size_t failed = wait_for(seen, [](const FlushStats& s) { return s.failing; });
  ASSERT_NE(failed, SIZE_MAX);
  size_t retried = wait_for(failed + 1, [](const FlushStats&) { return true; });
  ASSERT_NE(retried, SIZE_MAX);
  auto gap = [&] {
    std::lock_guard lock(mu);
    return attempts[retried].first - attempts[failed].first;
  }();
  EXPECT_LT(gap, interval * 12) << "retry after " << std::chrono::duration<double>(gap).count()
                                << " s";
  EXPECT_GE(gap, interval * 2 - std::chrono::milliseconds(20));
  fault.fs->set_mode(testing::FaultFs::Mode::kNone);
  EXPECT_TRUE(flusher.Stop());
  EXPECT_EQ((*store)->Summary().total, 2);
}

// A waiter is answered by its deadline even while every flush fails (a full disk), without
// a commit; its increments stay pending and reach the store once writes work again.
TEST(Flusher, WaitersAreAnsweredByTheirDeadlineWhileFlushesFail) {
  testing::TempDir dir;
  testing::FaultEnv fault;
  persistence::StoreOptions opts;
  opts.env = fault.env.get();
  auto store = persistence::Store::Open(dir.Sub("db"), opts);
  ASSERT_TRUE(store.ok()) << store.status().message();
  core::CounterTable table(1000);
  Flusher flusher(table, **store, std::chrono::milliseconds(50), std::chrono::milliseconds(300));
  flusher.Start();
  fault.fs->set_mode(testing::FaultFs::Mode::kFailWrites);
  ASSERT_TRUE(table.Add(9, 4, 0));
  std::promise<FlushOutcome> p;
  auto started = std::chrono::steady_clock::now();
  flusher.AfterFlushOutcome([&p](const FlushOutcome& o) { p.set_value(o); });
  flusher.Wake();
  std::future<FlushOutcome> answer = p.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto waited = std::chrono::steady_clock::now() - started;
  FlushOutcome outcome = answer.get();
  EXPECT_FALSE(outcome.committed);
  EXPECT_TRUE(outcome.timed_out);
  EXPECT_GE(waited, std::chrono::milliseconds(290));
  EXPECT_TRUE(flusher.stats().failing);
  fault.fs->set_mode(testing::FaultFs::Mode::kNone);
  EXPECT_TRUE(flusher.Stop());
  EXPECT_EQ((*store)->Summary().total, 4);
}

}  // namespace
}  // namespace tally::daemon
