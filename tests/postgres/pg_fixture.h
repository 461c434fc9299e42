// The fixture of the PostgreSQL sink's tests: one throwaway cluster per test program
// (tests/support/pg_cluster.h), a fresh database with ez-api's tables per test, helpers to
// seed groups and keys and read them back, and an in-memory outbox cursor (MemoryOutbox).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "core/delta_batch.h"
#include "daemon/metrics.h"
#include "daemon/upstream/pg_consumer.h"
#include "daemon/upstream/pg_sink.h"
#include "tests/support/pg_cluster.h"

namespace tally::testing {

// The outbox's cursor, in memory: batches in order, Ack drops those it covers.
class MemoryOutbox : public daemon::BatchSource {
 public:
  void Push(core::DeltaBatch b) {
    std::lock_guard lock(mu_);
    batches_.push_back(std::move(b));
  }
  std::optional<core::DeltaBatch> Peek() override {
    std::lock_guard lock(mu_);
    if (batches_.empty()) {
      return std::nullopt;
    }
    return batches_.front();
  }
  core::Status Ack(uint64_t last_sequence) override {
    std::lock_guard lock(mu_);
    while (!batches_.empty() && batches_.front().last_sequence <= last_sequence) {
      batches_.pop_front();
    }
    acks_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic for the test
    return core::Status::Ok();
  }
  size_t Depth() {
    std::lock_guard lock(mu_);
    return batches_.size();
  }
  uint64_t acks() const { return acks_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::deque<core::DeltaBatch> batches_;
  std::atomic<uint64_t> acks_{0};
};

class PgTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    cluster_ = PgCluster::Start(&error).release();
    ASSERT_NE(cluster_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    static int next = 0;
    db_ = "t";
    db_ += std::to_string(++next);  // not "t" + ...: GCC 12's -Wrestrict false positive
    ASSERT_TRUE(cluster_->CreateDatabase(db_)) << cluster_->Log();
    conn_ = std::make_unique<pqxx::connection>(cluster_->ConnInfo(db_));
  }

  std::string ConnInfo() const { return cluster_->ConnInfo(db_) + " application_name=tallyd"; }

  // A sink on this test's database, opened with ez-api's tables created.
  std::unique_ptr<daemon::PgSink> OpenSink(daemon::PostgresSinkMetrics* metrics) {
    auto sink = std::make_unique<daemon::PgSink>(ConnInfo(), metrics);
    core::Status s = sink->Open(/*create_schema=*/true);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return sink;
  }

  void Exec(const std::string& sql) {
    pqxx::work tx(*conn_);
    tx.exec(sql);
    tx.commit();
  }
  int64_t Int(const std::string& sql) {
    pqxx::work tx(*conn_);
    pqxx::row r = tx.exec1(sql);
    tx.commit();
    return r[0].is_null() ? 0 : r[0].as<int64_t>();
  }
  double Real(const std::string& sql) {
    pqxx::work tx(*conn_);
    pqxx::row r = tx.exec1(sql);
    tx.commit();
    return r[0].as<double>();
  }

  // Groups 1..groups, keys 1..keys with key k in group (k - 1) % groups + 1, all at zero.
  void Seed(int groups, int keys) {
    Exec(
        "INSERT INTO provider_groups (id, name, type, base_url, created_at, updated_at) "
        "SELECT g, 'g' || g, 'openai', 'https://x', now(), now() FROM generate_series(1, " +
        std::to_string(groups) + ") g");
    Exec(
        "INSERT INTO api_keys (id, group_id, api_key, created_at, updated_at) SELECT k, (k - 1) "
        "% " +
        std::to_string(groups) + " + 1, 'sk-' || k, now(), now() FROM generate_series(1, " +
        std::to_string(keys) + ") k");
  }

  // Every group's totals equal the sums over its keys (soft-deleted ones included: their
  // totals stay what they were when deleted), and each rate is its fraction. 0 when it holds.
  int64_t GroupInvariantViolations() {
    return Int(
        "SELECT count(*) FROM provider_groups g LEFT JOIN (SELECT group_id, sum(total_requests) t, "
        "sum(success_requests) s, sum(failure_requests) f FROM api_keys GROUP BY group_id) k "
        "ON k.group_id = g.id WHERE g.total_requests <> coalesce(k.t, 0) OR "
        "g.success_requests <> coalesce(k.s, 0) OR g.failure_requests <> coalesce(k.f, 0) OR "
        "g.total_requests <> g.success_requests + g.failure_requests OR (g.total_requests > 0 "
        "AND abs(g.success_rate - g.success_requests::numeric / g.total_requests) > 1e-9)");
  }

  static core::DeltaBatch Batch(const std::string& source, uint64_t seq,
                                std::vector<core::KeyDelta> deltas) {
    return core::DeltaBatch{source, seq, seq, std::move(deltas)};
  }

  static PgCluster* cluster_;
  std::string db_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace tally::testing
