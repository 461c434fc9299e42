// The PostgreSQL sink against a real server: schema creation and check, one batch's
// effect on keys and groups, exactly once by the source's mark, skipped keys, passwords.
#include <gtest/gtest.h>

#include "daemon/upstream/pg_conninfo.h"
#include "tests/postgres/pg_fixture.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace tally::testing {

PgCluster* PgTest::cluster_ = nullptr;

namespace {

using core::KeyDelta;
using daemon::PgApplyResult;
using daemon::PgSink;
using daemon::PostgresSinkMetrics;

using PgSinkTest = PgTest;

TEST_F(PgSinkTest, CreatesEzApiTablesAsGormDoes) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  auto type = [this](const std::string& table, const std::string& column) {
    pqxx::work tx(*conn_);
    pqxx::result r = tx.exec_params(
        "SELECT data_type, coalesce(column_default, '') FROM information_schema.columns "
        "WHERE table_name = $1 AND column_name = $2",
        table, column);
    tx.commit();
    return r.empty() ? std::string("(missing)")
                     : r[0][0].as<std::string>() + " " + r[0][1].as<std::string>();
  };
  EXPECT_EQ(type("api_keys", "id"), "bigint nextval('api_keys_id_seq'::regclass)");
  EXPECT_EQ(type("api_keys", "group_id"), "bigint ");
  EXPECT_EQ(type("api_keys", "total_requests"), "bigint 0");
  EXPECT_EQ(type("api_keys", "success_rate"), "numeric 0");
  EXPECT_EQ(type("api_keys", "deleted_at"), "timestamp with time zone ");
  EXPECT_EQ(type("api_keys", "status"), "character varying 'active'::character varying");
  EXPECT_EQ(type("provider_groups", "failure_rate"), "numeric 0");
  EXPECT_EQ(type("tallyd_sources", "last_sequence"), "bigint ");
  EXPECT_EQ(Int("SELECT count(*) FROM pg_indexes WHERE indexname IN ('idx_api_keys_deleted_at', "
                "'idx_api_keys_group_id', 'idx_provider_groups_name', "
                "'idx_provider_groups_deleted_at')"),
            4);
}

TEST_F(PgSinkTest, SchemaCheckNamesTheMissingColumnOrTable) {
  PostgresSinkMetrics m;
  {
    PgSink sink(ConnInfo(), &m);
    core::Status s = sink.Open(/*create_schema=*/false);
    EXPECT_EQ(s.code(), core::Status::Code::kRefused) << s.ToString();
    EXPECT_NE(s.message().find("no table api_keys"), std::string::npos) << s.message();
  }
  OpenSink(&m);
  Exec("ALTER TABLE api_keys DROP COLUMN failure_rate");
  {
    PgSink sink(ConnInfo(), &m);
    core::Status s = sink.Open(/*create_schema=*/false);
    EXPECT_EQ(s.code(), core::Status::Code::kRefused);
    EXPECT_NE(s.message().find("table api_keys has no column failure_rate"), std::string::npos)
        << s.message();
  }
  Exec("ALTER TABLE api_keys ADD COLUMN failure_rate double precision DEFAULT 0");
  Exec("ALTER TABLE provider_groups ALTER COLUMN total_requests TYPE text");
  {
    PgSink sink(ConnInfo(), &m);
    core::Status s = sink.Open(/*create_schema=*/false);
    EXPECT_NE(s.message().find("provider_groups.total_requests is text; tallyd needs bigint or "
                               "numeric"),
              std::string::npos)
        << s.message();
  }
  Exec("ALTER TABLE provider_groups ALTER COLUMN total_requests TYPE bigint USING 0");
  PgSink sink(ConnInfo(), &m);
  EXPECT_TRUE(sink.Open(/*create_schema=*/false).ok());  // double precision rates are fine
}

TEST_F(PgSinkTest, AppliesKeysAndTheirGroupsInOneTransaction) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  Seed(1, 2);  // ez-api's own case: keys (5 requests, 3 successes) and (4, 4) in one group
  core::StatusOr<PgApplyResult> r = sink->Apply(Batch("edge-a", 1, {{1, 3, 2}, {2, 4, 0}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->replayed);
  EXPECT_EQ(r->deltas_applied, 2u);
  EXPECT_EQ(Int("SELECT total_requests FROM api_keys WHERE id = 1"), 5);
  EXPECT_EQ(Int("SELECT failure_requests FROM api_keys WHERE id = 1"), 2);
  EXPECT_DOUBLE_EQ(Real("SELECT success_rate FROM api_keys WHERE id = 1"), 0.6);
  EXPECT_DOUBLE_EQ(Real("SELECT success_rate FROM api_keys WHERE id = 2"), 1.0);
  EXPECT_EQ(Int("SELECT total_requests FROM provider_groups WHERE id = 1"), 9);
  EXPECT_EQ(Int("SELECT success_requests FROM provider_groups WHERE id = 1"), 7);
  EXPECT_NEAR(Real("SELECT success_rate FROM provider_groups WHERE id = 1"), 7.0 / 9, 1e-12);
  EXPECT_NEAR(Real("SELECT failure_rate FROM provider_groups WHERE id = 1"), 2.0 / 9, 1e-12);
  EXPECT_EQ(Int("SELECT last_sequence FROM tallyd_sources WHERE source = 'edge-a'"), 1);
  EXPECT_EQ(Int("SELECT count(*) FROM api_keys WHERE updated_at > now() - interval '1 minute'"), 2);
  EXPECT_EQ(GroupInvariantViolations(), 0);
  EXPECT_EQ(m.batches_applied.Get(), 1u);
  EXPECT_EQ(m.deltas_applied.Get(), 2u);
}

// The applier killed between PostgreSQL's commit and the outbox's removal: nothing was
// acknowledged, so the same batch comes again, and the mark turns it into a replay.
TEST_F(PgSinkTest, ABatchAtOrBelowTheMarkIsSkippedWhole) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  Seed(2, 4);
  ASSERT_TRUE(sink->Apply(Batch("edge-a", 1, {{1, 1, 0}, {2, 0, 1}})).ok());
  ASSERT_TRUE(sink->Apply(Batch("edge-a", 2, {{1, 1, 0}})).ok());
  for (uint64_t seq : {1, 2}) {  // both again, as after a crash before either Ack
    core::StatusOr<PgApplyResult> again = sink->Apply(Batch("edge-a", seq, {{1, 1, 0}, {2, 0, 1}}));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->replayed);
    EXPECT_EQ(again->mark, 2u);
  }
  // A fresh sink (a restarted tallyd) sees the same mark: state per source, in PostgreSQL.
  PostgresSinkMetrics m2;
  auto restarted = OpenSink(&m2);
  EXPECT_TRUE(restarted->Apply(Batch("edge-a", 2, {{1, 1, 0}}))->replayed);
  // Another source has its own mark.
  EXPECT_FALSE(restarted->Apply(Batch("edge-b", 1, {{1, 5, 0}}))->replayed);
  EXPECT_EQ(Int("SELECT total_requests FROM api_keys WHERE id = 1"), 7);
  EXPECT_EQ(Int("SELECT total_requests FROM api_keys WHERE id = 2"), 1);
  EXPECT_EQ(m.batches_replayed.Get(), 2u);
  EXPECT_EQ(m2.batches_replayed.Get(), 1u);
  EXPECT_EQ(GroupInvariantViolations(), 0);
}

TEST_F(PgSinkTest, UnknownAndSoftDeletedKeysAreSkippedAndCounted) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  Seed(1, 3);
  Exec(
      "UPDATE api_keys SET deleted_at = now(), total_requests = 10, success_requests = 10 "
      "WHERE id = 3");
  Exec("UPDATE provider_groups SET total_requests = 10, success_requests = 10");
  core::StatusOr<PgApplyResult> r =
      sink->Apply(Batch("edge-a", 1, {{1, 2, 0}, {3, 5, 5}, {99, 1, 1}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->deltas_applied, 1u);
  EXPECT_EQ(r->keys_skipped, 2u);
  EXPECT_EQ(m.keys_skipped.Get(), 2u);
  EXPECT_EQ(Int("SELECT total_requests FROM api_keys WHERE id = 3"), 10);  // untouched
  EXPECT_EQ(Int("SELECT count(*) FROM api_keys WHERE id = 99"), 0);        // never created
  EXPECT_EQ(Int("SELECT total_requests FROM provider_groups WHERE id = 1"), 12);
  EXPECT_EQ(GroupInvariantViolations(), 0);
  // Counted again on the next batch (logged only once per key).
  ASSERT_TRUE(sink->Apply(Batch("edge-a", 2, {{99, 1, 0}})).ok());
  EXPECT_EQ(m.keys_skipped.Get(), 3u);
}

TEST_F(PgSinkTest, ConsumerAcksOnlyAfterTheCommit) {
  PostgresSinkMetrics m;
  auto sink = OpenSink(&m);
  Seed(1, 2);
  MemoryOutbox outbox;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    outbox.Push(Batch("edge-a", seq, {{1, 1, 0}, {2, 0, 1}}));
  }
  daemon::PgConsumer consumer(sink.get(), &outbox, &m);
  EXPECT_EQ(consumer.RunOnce(), daemon::PgConsumer::Step::kApplied);
  EXPECT_EQ(outbox.Depth(), 4u);
  // PostgreSQL gone: the batch stays in the outbox, unacknowledged.
  Exec("ALTER TABLE api_keys RENAME COLUMN success_requests TO s");
  core::Status failure;
  EXPECT_EQ(consumer.RunOnce(&failure), daemon::PgConsumer::Step::kFailed);
  EXPECT_EQ(failure.code(), core::Status::Code::kIoError) << failure.ToString();
  EXPECT_EQ(outbox.Depth(), 4u);
  EXPECT_GT(m.oldest_pending_since_ns.Get(), 0u);  // the lag is measured
  Exec("ALTER TABLE api_keys RENAME COLUMN s TO success_requests");
  while (consumer.RunOnce() == daemon::PgConsumer::Step::kApplied) {
  }
  EXPECT_EQ(outbox.Depth(), 0u);
  EXPECT_EQ(m.oldest_pending_since_ns.Get(), 0u);
  EXPECT_EQ(Int("SELECT total_requests FROM api_keys WHERE id = 1"), 5);
  EXPECT_EQ(Int("SELECT failure_requests FROM api_keys WHERE id = 2"), 5);
}

TEST_F(PgSinkTest, PasswordFromTheOptionsNotTheUrl) {
  Exec("CREATE ROLE tally_pw LOGIN PASSWORD 'sekret-42'");
  Exec("GRANT ALL ON SCHEMA public TO tally_pw");
  PostgresSinkMetrics m;
  OpenSink(&m);  // tables exist, owned by tally
  Exec("GRANT ALL ON ALL TABLES IN SCHEMA public TO tally_pw");
  for (auto [password, ok] : {std::pair{"sekret-42", true}, std::pair{"wrong", false}}) {
    daemon::PgSinkOptions options{cluster_->ConnInfo(db_, "tally_pw"), password, false};
    core::StatusOr<std::string> conninfo = daemon::BuildConninfo(options);
    ASSERT_TRUE(conninfo.ok());
    PgSink sink(*conninfo, &m);
    core::Status s = sink.Open(false);
    EXPECT_EQ(s.ok(), ok) << s.ToString();
    if (!ok) {
      EXPECT_EQ(s.code(), core::Status::Code::kUnavailable);
    }
  }
}

// PostgreSQL unreachable: the consumer's thread keeps the batch, backs off (a Wake does not
// cut a backoff short), and Stop() ends it without waiting for the backoff to run out.
TEST(PgConsumerTest, UnreachableServerKeepsTheBatchAndStopIsPrompt) {
  TempDir dir;
  PostgresSinkMetrics m;
  PgSink sink("host=" + dir.Sub("nowhere") + " dbname=x connect_timeout=2", &m);
  MemoryOutbox outbox;
  outbox.Push(core::DeltaBatch{"edge-a", 1, 1, {{1, 1, 0}}});
  daemon::PgConsumer consumer(&sink, &outbox, &m,
                              {std::chrono::milliseconds(10), std::chrono::milliseconds(20),
                               std::chrono::milliseconds(60'000)});
  consumer.Start();
  ASSERT_TRUE(WaitUntil([&] { return m.retries_connection.Get() >= 3; }, 10'000));
  // Backoff doubles from 20 ms: 4 attempts take 20 + 40 + 80 ms of waits, the next ones 160,
  // 320, 640 ms. Wakes every 5 ms for 400 ms would start ~80 attempts if they cut backoffs.
  uint64_t before = m.retries_connection.Get();
  WaitUntil(
      [&] {
        consumer.Wake();
        return false;
      },
      400, 5);
  uint64_t seen = m.retries_connection.Get();
  EXPECT_LE(seen, before + 4);
  auto t0 = std::chrono::steady_clock::now();
  consumer.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(outbox.Depth(), 1u);
  EXPECT_EQ(outbox.acks(), 0u);
  EXPECT_GT(m.oldest_pending_since_ns.Get(), 0u);
  EXPECT_EQ(m.connected.Get(), 0u);
}

TEST(PgConninfoTest, UrlsAndKeywordStringsParseBadOnesAreNamed) {
  core::StatusOr<std::string> uri =
      daemon::BuildConninfo({"postgresql://u@db.example:6432/ez?sslmode=require", "p'w", false});
  ASSERT_TRUE(uri.ok());
  EXPECT_NE(uri->find("host='db.example'"), std::string::npos) << *uri;
  EXPECT_NE(uri->find("port='6432'"), std::string::npos);
  EXPECT_NE(uri->find("password='p\\'w'"), std::string::npos);
  EXPECT_NE(uri->find("application_name='tallyd'"), std::string::npos);
  core::StatusOr<std::string> kv = daemon::BuildConninfo({"host=/run/x dbname=ez", "", false});
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->find("password"), std::string::npos);
  core::StatusOr<std::string> bad =
      daemon::BuildConninfo({"postgresql://u:hunter2@h/db?bogus=1", "", false});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("hunter2"), std::string::npos);
  EXPECT_EQ(bad.status().message().rfind("--postgres-url:", 0), 0u);
}

}  // namespace
}  // namespace tally::testing
