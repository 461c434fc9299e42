// The operational endpoints' rules, where their conditions can be produced: readiness
// (flush failing, no flush for 3 intervals, stopping), liveness (a stalled event loop), and
// the checkpoint's argument checks. Uses a real Store in a temporary directory.
#include <gtest/gtest.h>

#include "daemon/ops/endpoints.h"
#include "tests/unit/daemon/ops_fixture.h"

namespace tally::daemon {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

ReadinessInput Healthy() {
  ReadinessInput in;
  in.listening = true;
  in.started_unix_ns = 100 * kSecond;
  in.last_ok_unix_ns = 109 * kSecond;
  in.now_unix_ns = 110 * kSecond;
  in.interval_ns = kSecond;
  return in;
}

TEST(Readiness, ReadyWhenEverythingHolds) { EXPECT_FALSE(NotReadyReason(Healthy()).has_value()); }

TEST(Readiness, EachConditionHasItsReason) {
  ReadinessInput in = Healthy();
  in.stopping = true;
  EXPECT_EQ(NotReadyReason(in), "stopping");
  in = Healthy();
  in.db_open = false;
  EXPECT_EQ(NotReadyReason(in), "the database is not open");
  in = Healthy();
  in.listening = false;
  EXPECT_EQ(NotReadyReason(in), "the listeners are not bound yet");
  in = Healthy();
  in.flush_failing = true;
  EXPECT_EQ(NotReadyReason(in), "the last flush failed");
}

TEST(Readiness, LastFlushMustBeWithinThreeIntervals) {
  ReadinessInput in = Healthy();
  in.last_ok_unix_ns = in.now_unix_ns - 3 * kSecond;
  EXPECT_FALSE(NotReadyReason(in).has_value());
  in.last_ok_unix_ns = in.now_unix_ns - 3 * kSecond - 1;
  ASSERT_TRUE(NotReadyReason(in).has_value());
  EXPECT_NE(NotReadyReason(in)->find("no successful flush for 3.0 s"), std::string::npos)
      << *NotReadyReason(in);
}

TEST(Readiness, BeforeTheFirstFlushTheStartCounts) {
  ReadinessInput in = Healthy();
  in.last_ok_unix_ns = 0;
  in.now_unix_ns = in.started_unix_ns + 2 * kSecond;
  EXPECT_FALSE(NotReadyReason(in).has_value());
  in.now_unix_ns = in.started_unix_ns + 4 * kSecond;
  EXPECT_TRUE(NotReadyReason(in).has_value());
}

class OpsEndpoints : public OpsFixture {};

TEST_F(OpsEndpoints, HealthFailsWhenAnEventLoopStalls) {
  ThreadCounters* a = counters_.NewBlock();
  ThreadCounters* b = counters_.NewBlock();
  a->loop_heartbeat_ns.Set(SteadyNowNs());
  b->loop_heartbeat_ns.Set(SteadyNowNs());
  OpsContext ctx = Context();
  EXPECT_EQ(HealthResponse(ctx).result(), http::status::ok);
  b->loop_heartbeat_ns.Set(SteadyNowNs() - 6 * kSecond);
  Response res = HealthResponse(ctx);
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_NE(res.body().find("I/O thread 1 has not run its event loop"), std::string::npos)
      << res.body();
  // While stopping, the heartbeats are cancelled on purpose: still alive.
  stopping_ = true;
  EXPECT_EQ(HealthResponse(ctx).result(), http::status::ok);
}

TEST_F(OpsEndpoints, ReadyFollowsTheFlusher) {
  OpsContext ctx = Context();
  counters_.process.started_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();
  EXPECT_EQ(ReadyResponse(ctx).result(), http::status::ok);
  // Started long ago and never flushed: more than 3 intervals without a flush.
  counters_.process.started_unix_ns -= 10 * kSecond;
  Response res = ReadyResponse(ctx);
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_NE(res.body().find("no successful flush"), std::string::npos) << res.body();
  // A flush (the final one, Stop on a never-started flusher) makes it ready again.
  EXPECT_TRUE(flusher_->Stop());
  EXPECT_EQ(ReadyResponse(ctx).result(), http::status::ok) << ReadyResponse(ctx).body();
  listening_ = false;
  EXPECT_EQ(ReadyResponse(ctx).result(), http::status::service_unavailable);
}

TEST_F(OpsEndpoints, CheckpointChecksItsTarget) {
  OpsContext ctx = Context();
  auto post = [&](std::string body) {
    Request req{http::verb::post, "/admin/checkpoint", 11};
    req.body() = std::move(body);
    return CheckpointResponse(ctx, req);
  };
  EXPECT_EQ(post("{").result(), http::status::bad_request);
  EXPECT_EQ(post("[]").result(), http::status::bad_request);
  EXPECT_EQ(post(R"({"dir":""})").result(), http::status::bad_request);
  EXPECT_EQ(post(R"({"dir":"relative"})").result(), http::status::bad_request);
  EXPECT_EQ(post(R"({"dir":")" + dir_.Sub("missing/x") + R"("})").result(),
            http::status::bad_request);
  EXPECT_EQ(post(R"({"dir":")" + dir_.path() + R"("})").result(), http::status::conflict);
  Response ok = post(R"({"dir":")" + dir_.Sub("cp") + R"(/"})");
  EXPECT_EQ(ok.result(), http::status::created) << ok.body();
  EXPECT_NE(ok.body().find(R"("dir":")" + dir_.Sub("cp") + R"(")"), std::string::npos) << ok.body();
  EXPECT_EQ(post(R"({"dir":")" + dir_.Sub("cp") + R"("})").result(), http::status::conflict);
  auto reopened = persistence::Store::Open(dir_.Sub("cp"));
  EXPECT_TRUE(reopened.ok()) << reopened.status().message();
}

TEST_F(OpsEndpoints, HistogramBucketsAreCumulative) {
  DurationHistogram h;
  h.Observe(0.0001);
  h.Observe(0.003);
  h.Observe(0.003);
  h.Observe(42);
  DurationHistogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative[0], 1u);                                      // le 0.0005
  EXPECT_EQ(s.cumulative[2], 1u);                                      // le 0.0025
  EXPECT_EQ(s.cumulative[3], 3u);                                      // le 0.005
  EXPECT_EQ(s.cumulative[DurationHistogram::kBounds.size() - 1], 3u);  // le 10
  EXPECT_EQ(s.cumulative.back(), 4u);                                  // +Inf
  EXPECT_EQ(s.count, 4u);
  EXPECT_NEAR(s.sum_seconds, 42.0061, 1e-6);
  std::string text = RenderMetrics(Context());
  EXPECT_NE(text.find("# TYPE tallyd_flush_duration_seconds histogram"), std::string::npos);
}

}  // namespace
}  // namespace tally::daemon
