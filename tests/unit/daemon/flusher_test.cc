// Flusher with a real store: a waiter is released by a flush that includes the increments
// added before it registered, learns what that flush wrote, and is refused after the stop.
#include "daemon/flusher.h"

#include <gtest/gtest.h>

#include <future>

#include "tests/support/temp_dir.h"

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

}  // namespace
}  // namespace tally::daemon
