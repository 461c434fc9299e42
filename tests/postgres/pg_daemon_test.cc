// tallyd's PostgreSQL options against the real binary and a real server: the schema check
// at start-up (exit 1 naming the column), --postgres-create-schema, an unreachable server
// (tallyd still starts and counts), the password file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/postgres/pg_fixture.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace tally::testing {
namespace {

using PgDaemonTest = PgTest;

std::vector<std::string> Args(const TempDir& dir, const std::string& conninfo) {
  return {"--data-dir",    dir.Sub("data"), "--udp-listen",   "off",
          "--http-listen", "127.0.0.1:0",   "--postgres-url", conninfo};
}

TEST_F(PgDaemonTest, AMissingColumnStopsTheStartNamingIt) {
  daemon::PostgresSinkMetrics m;
  OpenSink(&m);
  Exec("ALTER TABLE provider_groups DROP COLUMN updated_at");
  TempDir dir;
  std::string output;
  EXPECT_EQ(RunTallyd(Args(dir, ConnInfo()), &output), 1) << output;
  EXPECT_NE(output.find("table provider_groups has no column updated_at"), std::string::npos)
      << output;
}

TEST_F(PgDaemonTest, CreateSchemaMakesEzApiTablesAndTheStartGoesOn) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"), {"--postgres-url", ConnInfo(), "--postgres-create-schema"});
  EXPECT_NE(tallyd.Log().find("PostgreSQL schema checked"), std::string::npos) << tallyd.Log();
  EXPECT_EQ(Int("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                "('api_keys', 'provider_groups', 'tallyd_sources')"),
            3);
  EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_postgres_connected"), 1.0);
  EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_postgres_lag_seconds"), 0.0);
  EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_postgres_retries_total{cause=\"deadlock\"}"),
            0.0);
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST_F(PgDaemonTest, AnUnreachableServerDoesNotStopCounting) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"),
                       {"--postgres-url", "host=" + dir.Sub("nowhere") + " dbname=x"});
  EXPECT_NE(tallyd.Log().find("batches wait in the outbox"), std::string::npos) << tallyd.Log();
  EXPECT_EQ(ScrapeMetric(tallyd.http_port(), "tallyd_postgres_connected"), 0.0);
  EXPECT_EQ(tallyd.Stop(), 0);
}

TEST_F(PgDaemonTest, PasswordFromTheFileOrPgpassfileNeverLogged) {
  Exec("CREATE ROLE tally_pw LOGIN PASSWORD 'sekret-17'");
  daemon::PostgresSinkMetrics m;
  OpenSink(&m);
  Exec("GRANT ALL ON ALL TABLES IN SCHEMA public TO tally_pw");
  Exec("GRANT CREATE ON SCHEMA public TO tally_pw");
  TempDir dir;
  std::ofstream(dir.Sub("pw")) << "sekret-17\n";
  std::string conninfo = cluster_->ConnInfo(db_, "tally_pw");
  TallydProcess tallyd(dir.Sub("data"),
                       {"--postgres-url", conninfo, "--postgres-password-file", dir.Sub("pw")});
  EXPECT_NE(tallyd.Log().find("PostgreSQL schema checked"), std::string::npos) << tallyd.Log();
  EXPECT_EQ(tallyd.Log().find("sekret-17"), std::string::npos);
  EXPECT_EQ(tallyd.Stop(), 0);
  std::ofstream(dir.Sub("pw")) << "wrong\n";  // the same start fails to connect, and goes on
  TallydProcess refused(dir.Sub("data2"),
                        {"--postgres-url", conninfo, "--postgres-password-file", dir.Sub("pw")});
  EXPECT_NE(refused.Log().find("password authentication failed"), std::string::npos)
      << refused.Log();
  EXPECT_EQ(refused.Stop(), 0);
  // No password file: libpq's own PGPASSFILE (host:port:database:user:password, mode 0600).
  std::ofstream(dir.Sub("pgpass")) << "*:*:*:tally_pw:sekret-17\n";
  ASSERT_EQ(chmod(dir.Sub("pgpass").c_str(), 0600), 0);
  TallydProcess from_env(dir.Sub("data3"), {"--postgres-url", conninfo},
                         {{"PGPASSFILE", dir.Sub("pgpass")}});
  EXPECT_NE(from_env.Log().find("PostgreSQL schema checked"), std::string::npos) << from_env.Log();
  EXPECT_EQ(from_env.Stop(), 0);
}

// The whole path: lines into tallyd, committed flushes into the outbox, the outbox into
// PostgreSQL by the sink's own cursor; exactly once across a kill -9 of tallyd (a batch
// applied but not yet acknowledged is a replay after the restart, never a second count).
TEST_F(PgDaemonTest, CountedLinesReachPostgresExactlyOnceAcrossAKill) {
  daemon::PostgresSinkMetrics m;
  OpenSink(&m);
  Seed(2, 10);
  TempDir dir;
  auto key_total = [&](int key) {
    return Int("SELECT total_requests FROM api_keys WHERE id = " + std::to_string(key));
  };
  auto all = [&] { return Int("SELECT coalesce(sum(total_requests), 0) FROM api_keys"); };
  {
    TallydProcess tallyd(dir.Sub("data"), {"--postgres-url", ConnInfo()});
    ASSERT_EQ(Http(tallyd.http_port(), "POST", "/v1/ingest?wait=flush",
                   "apikey.1.success:5|c\napikey.2.failure:3|c\napikey.3.success:1|c\n"
                   "apikey.3.failure:1|c\napikey.99.success:4|c\n")
                  .status,
              200);
    ASSERT_TRUE(WaitUntil([&] { return all() == 10; }, 20000)) << all() << "\n" << tallyd.Log();
    EXPECT_EQ(key_total(1), 5);
    EXPECT_EQ(Int("SELECT failure_requests FROM api_keys WHERE id = 2"), 3);
    EXPECT_EQ(Int("SELECT success_requests FROM api_keys WHERE id = 3"), 1);
    EXPECT_EQ(GroupInvariantViolations(), 0);
    // Key 99 is not a control-plane record: skipped and counted, never created.
    EXPECT_EQ(Int("SELECT count(*) FROM api_keys WHERE id = 99"), 0);
    EXPECT_TRUE(WaitUntil(
        [&] {
          return ScrapeMetric(tallyd.http_port(), "tallyd_postgres_keys_skipped_total")
                     .value_or(0) >= 1;
        },
        10000));
    ASSERT_EQ(
        Http(tallyd.http_port(), "POST", "/v1/ingest?wait=flush", "apikey.4.success:7|c\n").status,
        200);
    tallyd.Stop(SIGKILL);  // the batch of key 4 may be applied, acknowledged, or neither
  }
  TallydProcess again(dir.Sub("data"), {"--postgres-url", ConnInfo()});
  ASSERT_EQ(
      Http(again.http_port(), "POST", "/v1/ingest?wait=flush", "apikey.1.failure:2|c\n").status,
      200);
  ASSERT_TRUE(WaitUntil([&] { return all() == 19; }, 20000)) << all() << "\n" << again.Log();
  EXPECT_EQ(key_total(4), 7);
  EXPECT_EQ(key_total(1), 7);
  EXPECT_EQ(GroupInvariantViolations(), 0);
  EXPECT_EQ(Int("SELECT count(*) FROM tallyd_sources"), 1);
  EXPECT_EQ(again.Stop(), 0);
}

}  // namespace
}  // namespace tally::testing
