// The PostgreSQL sink under faults, against a real server: the server restarted
// (pg_ctl restart -m fast) and the sink's backend terminated (pg_terminate_backend) while a
// consumer applies batches; two sources writing the same keys at once (read committed and
// serializable); a deadlock forced and retried. At the end every key's totals equal what
// the batches carried, exactly, and the group invariant holds in PostgreSQL.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "tests/postgres/pg_fixture.h"
#include "tests/support/wait_until.h"

namespace tally::testing {
namespace {

using core::DeltaBatch;
using core::KeyDelta;
using daemon::PgConsumer;
using daemon::PgConsumerOptions;
using daemon::PgSink;
using daemon::PostgresSinkMetrics;

using PgFaultTest = PgTest;

constexpr PgConsumerOptions kFastRetry{std::chrono::milliseconds(20), std::chrono::milliseconds(5),
                                       std::chrono::milliseconds(200)};

// `batches` batches of `keys_per_batch` random keys out of 1..`keys`, each key once per
// batch, counts 1..3; what they add up to per key in *expected ({successes, failures}).
std::vector<DeltaBatch> MakeBatches(const std::string& source, int batches, int keys_per_batch,
                                    int keys, uint32_t seed,
                                    std::map<uint64_t, std::pair<int64_t, int64_t>>* expected) {
  std::mt19937 rng(seed);
  std::vector<DeltaBatch> out;
  for (int b = 1; b <= batches; ++b) {
    std::map<uint64_t, KeyDelta> picked;
    while (static_cast<int>(picked.size()) < keys_per_batch) {
      uint64_t key = rng() % static_cast<uint32_t>(keys) + 1;
      picked[key] = KeyDelta{key, rng() % 4, rng() % 3};
    }
    DeltaBatch batch{source, static_cast<uint64_t>(b), static_cast<uint64_t>(b), {}};
    for (auto& [key, d] : picked) {
      batch.deltas.push_back(d);
      (*expected)[key].first += static_cast<int64_t>(d.successes);
      (*expected)[key].second += static_cast<int64_t>(d.failures);
    }
    out.push_back(std::move(batch));
  }
  return out;
}

class PgFaultFixture : public PgTest {
 protected:
  // Every key's totals equal *expected; the number of keys that differ.
  int64_t KeysOff(const std::map<uint64_t, std::pair<int64_t, int64_t>>& expected) {
    pqxx::work tx(*conn_);
    pqxx::result r =
        tx.exec("SELECT id, success_requests, failure_requests, total_requests FROM api_keys");
    tx.commit();
    int64_t off = 0;
    for (const pqxx::row& row : r) {
      auto it = expected.find(row[0].as<uint64_t>());
      std::pair<int64_t, int64_t> want =
          it == expected.end() ? std::pair<int64_t, int64_t>{0, 0} : it->second;
      if (row[1].as<int64_t>() != want.first || row[2].as<int64_t>() != want.second ||
          row[3].as<int64_t>() != want.first + want.second) {
        ++off;
      }
    }
    return off;
  }
};

TEST_F(PgFaultFixture, ExactlyOnceAcrossServerRestartAndTerminatedBackends) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  Seed(10, 2000);
  std::map<uint64_t, std::pair<int64_t, int64_t>> expected;
  MemoryOutbox outbox;
  for (DeltaBatch& b : MakeBatches("edge-a", 300, 200, 2000, 7, &expected)) {
    outbox.Push(std::move(b));
  }
  PgConsumer consumer(sink.get(), &outbox, &m, kFastRetry);
  consumer.Start();
  ASSERT_TRUE(WaitUntil([&] { return m.batches_applied.Get() >= 40; }, 30'000));
  ASSERT_TRUE(cluster_->Restart()) << cluster_->Log();
  conn_ = std::make_unique<pqxx::connection>(cluster_->ConnInfo(db_));  // the test's own ended
  ASSERT_TRUE(WaitUntil([&] { return m.batches_applied.Get() >= 100; }, 30'000));
  for (int i = 0; i < 3; ++i) {
    uint64_t before = m.batches_applied.Get();
    Exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
        "'tallyd' AND pid <> pg_backend_pid()");
    ASSERT_TRUE(WaitUntil([&] { return m.batches_applied.Get() >= before + 30; }, 30'000));
  }
  ASSERT_TRUE(WaitUntil([&] { return outbox.Depth() == 0; }, 60'000));
  consumer.Stop();
  EXPECT_GE(m.retries_connection.Get(), 2u);  // the restart and at least one termination
  EXPECT_EQ(m.batches_applied.Get() + m.batches_replayed.Get(), outbox.acks());
  // A commit whose answer was lost with the connection counts as a failure here, and its
  // retry as a replay: the mark decides, so at most 300 were seen applied.
  EXPECT_LE(m.batches_applied.Get(), 300u);
  EXPECT_GE(m.batches_applied.Get() + m.batches_replayed.Get(), 300u);
  EXPECT_EQ(KeysOff(expected), 0);
  EXPECT_EQ(GroupInvariantViolations(), 0);
  EXPECT_EQ(Int("SELECT last_sequence FROM tallyd_sources WHERE source = 'edge-a'"), 300);
}

// The applier dies after PostgreSQL committed and before the outbox forgot the batch, at
// random points: a fresh sink and consumer (the restarted tallyd) find every batch again.
TEST_F(PgFaultFixture, RestartedApplierReplaysWhatItDidNotAcknowledge) {
  PostgresSinkMetrics first;
  OpenSink(&first);  // creates the tables
  Seed(4, 300);
  std::map<uint64_t, std::pair<int64_t, int64_t>> expected;
  MemoryOutbox outbox;
  for (DeltaBatch& b : MakeBatches("edge-a", 60, 50, 300, 11, &expected)) {
    outbox.Push(std::move(b));
  }
  std::mt19937 rng(3);
  uint64_t replays = 0;
  while (outbox.Depth() > 0) {
    PostgresSinkMetrics m;
    auto sink = OpenSink(&m);
    // Apply a few batches without acknowledging them (killed before the Ack)...
    std::optional<DeltaBatch> head = outbox.Peek();
    ASSERT_TRUE(head);
    ASSERT_TRUE(sink->Apply(*head).ok());
    // ...then the next life runs the consumer for a while.
    PgConsumer consumer(sink.get(), &outbox, &m);
    for (uint32_t steps = rng() % 8; steps > 0; --steps) {
      consumer.RunOnce();
    }
    replays += m.batches_replayed.Get();
  }
  EXPECT_GT(replays, 0u);
  EXPECT_EQ(KeysOff(expected), 0);
  EXPECT_EQ(GroupInvariantViolations(), 0);
}

// Two edges, two sources, the same keys in each batch, concurrently: row locks order the
// increments (no lost update), and whatever deadlocks or serialization failures occur are
// retried. Run under read committed and under serializable (a DBA's default).
TEST_F(PgFaultFixture, TwoSourcesOnTheSameKeysLoseNothing) {
  for (std::string isolation : {"read committed", "serializable"}) {
    SCOPED_TRACE(isolation);
    Exec("DROP TABLE IF EXISTS api_keys, provider_groups, tallyd_sources");
    Exec("ALTER DATABASE " + db_ + " SET default_transaction_isolation = '" + isolation + "'");
    PostgresSinkMetrics m1, m2;
    auto sink1 = OpenSink(&m1);
    auto sink2 = OpenSink(&m2);
    Seed(3, 60);
    std::map<uint64_t, std::pair<int64_t, int64_t>> expected;
    MemoryOutbox a, b;
    for (DeltaBatch& x : MakeBatches("edge-a", 80, 40, 60, 1, &expected)) {
      a.Push(std::move(x));
    }
    for (DeltaBatch& x : MakeBatches("edge-b", 80, 40, 60, 2, &expected)) {
      std::reverse(x.deltas.begin(), x.deltas.end());  // the other order, for deadlocks
      b.Push(std::move(x));
    }
    PgConsumer c1(sink1.get(), &a, &m1, kFastRetry);
    PgConsumer c2(sink2.get(), &b, &m2, kFastRetry);
    c1.Start();
    c2.Start();
    ASSERT_TRUE(WaitUntil([&] { return a.Depth() == 0 && b.Depth() == 0; }, 60'000));
    c1.Stop();
    c2.Stop();
    EXPECT_EQ(KeysOff(expected), 0);
    EXPECT_EQ(GroupInvariantViolations(), 0);
    EXPECT_EQ(m1.batches_applied.Get() + m2.batches_applied.Get(), 160u);
    uint64_t retries = m1.retries_serialization.Get() + m2.retries_serialization.Get() +
                       m1.retries_deadlock.Get() + m2.retries_deadlock.Get();
    std::printf("%s: %llu transaction retries\n", isolation.c_str(),
                static_cast<unsigned long long>(retries));
    if (isolation == "serializable") {
      EXPECT_GT(retries, 0u);  // the conflicts happened, and were retried
    }
  }
}

// A deadlock forced: another session holds the group's row, the sink locks the keys and
// waits for the group, then the session asks for one of the sink's keys. PostgreSQL ends
// the sink's transaction (it waited first); the sink retries it whole, and the totals are
// exact once the session commits.
TEST_F(PgFaultFixture, ADeadlockIsRetriedWhole) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  Seed(1, 2);
  pqxx::connection other(cluster_->ConnInfo(db_));
  pqxx::nontransaction(other).exec("SET deadlock_timeout = '60s'");  // the sink checks first
  pqxx::work holder(other);
  holder.exec("UPDATE provider_groups SET status = status WHERE id = 1");
  std::thread applier([&] {
    core::StatusOr<daemon::PgApplyResult> r = sink->Apply(PgTest::Batch("edge-a", 1, {{1, 2, 1}}));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  });
  bool waiting = false;
  bool committed = false;
  try {
    waiting = WaitUntil(
        [&] {
          return Int("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tallyd' "
                     "AND wait_event_type = 'Lock'") == 1;
        },
        10'000);
    EXPECT_TRUE(waiting);
    holder.exec("UPDATE api_keys SET weight = 5 WHERE id = 1");  // waits until the sink gives up
    holder.commit();
    committed = true;
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
  if (!committed) {
    holder.abort();  // lets the sink finish, so the thread can be joined
  }
  applier.join();
  ASSERT_TRUE(waiting);
  // At least once: when the aborted transaction's retry takes the key's row before the other
  // session wakes up to take it, the two deadlock again and the sink retries again.
  EXPECT_GE(m.retries_deadlock.Get(), 1u);
  EXPECT_EQ(m.batches_applied.Get(), 1u);
  EXPECT_EQ(Int("SELECT total_requests FROM api_keys WHERE id = 1"), 3);
  EXPECT_EQ(Int("SELECT weight FROM api_keys WHERE id = 1"), 5);
  EXPECT_EQ(GroupInvariantViolations(), 0);
}

}  // namespace
}  // namespace tally::testing
