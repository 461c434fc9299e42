// Forwarding (issue 17) against real processes on loopback: an edge tallyd forwarding its
// committed flushes to a central tallyd through a fault-injecting proxy (tests/support/).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "tests/support/forward_fleet.h"

namespace tally::testing {
namespace {

std::string Lines(uint64_t key, int n, const char* outcome = "success") {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += "apikey." + std::to_string(key) + "." + outcome + ":1|c\n";
  }
  return out;
}

// Ingests over HTTP and waits for the flush that commits the lines.
void IngestFlushed(uint16_t port, const std::string& lines) {
  ASSERT_EQ(Http(port, "POST", "/v1/ingest?wait=flush", lines, kInternal).status, 200);
}

boost::json::value Json(const HttpResult& r) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  return ec ? boost::json::value() : v;
}

class ForwardTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string token_ = WriteForwardToken(dir_);
  FaultProxy proxy_;
};

TEST_F(ForwardTest, EveryFlushArrivesOnceAndAReplayIsAnsweredWithoutApplying) {
  TallydProcess central(dir_.Sub("central"), Tokens());
  proxy_.SetUpstream(central.http_port());
  TallydProcess edge(dir_.Sub("edge"), EdgeArgs(token_, proxy_.port()));
  for (uint64_t key = 1; key <= 10; ++key) {
    SendUdp(edge.udp_port(), Lines(key, static_cast<int>(key)));
  }
  IngestFlushed(edge.http_port(), Lines(3, 5, "failure"));
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 60; }, 20000));
  ASSERT_TRUE(
      WaitUntil([&] { return Metric(edge.http_port(), "tallyd_outbox_batches") == 0; }, 20000));
  EXPECT_EQ(KeyTotals(central.http_port()), KeyTotals(edge.http_port()));

  boost::json::value outbox = Json(Http(edge.http_port(), "GET", "/admin/outbox", {}, kAdmin));
  const std::string source(outbox.at("source").as_string());
  const uint64_t last = outbox.at("last_sequence").to_number<uint64_t>();
  EXPECT_GE(last, 1u);
  boost::json::value sources = Json(Http(central.http_port(), "GET", "/admin/sources", {}, kAdmin));
  ASSERT_EQ(sources.at("sources").as_array().size(), 1u);
  EXPECT_EQ(sources.at("sources").at(0).at("source").as_string(), source);
  EXPECT_EQ(sources.at("sources").at(0).at("last_sequence").to_number<uint64_t>(), last);

  // A replay of an applied sequence: 200, Idempotent-Replayed, nothing applied.
  const std::string body = R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":5}]})";
  std::map<std::string, std::string> h = kInternal;
  h["Tally-Source"] = source;
  h["Tally-Sequence"] = std::to_string(last);
  HttpResult r = Http(central.http_port(), "POST", "/internal/apikey-stats/flush", body, h);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Idempotent-Replayed"], "true");
  EXPECT_EQ(TotalRequests(central.http_port()), 60);
  EXPECT_EQ(Metric(central.http_port(), "tallyd_source_replays_total{source=\"" + source + "\"}"),
            1);
  // A gap is applied and counted, never waited for.
  h["Tally-Sequence"] = std::to_string(last + 5) + "-" + std::to_string(last + 6);
  r = Http(central.http_port(), "POST", "/internal/apikey-stats/flush", body, h);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.count("Idempotent-Replayed"), 0u);
  EXPECT_EQ(TotalRequests(central.http_port()), 65);
  EXPECT_EQ(Metric(central.http_port(), "tallyd_source_gaps_total{source=\"" + source + "\"}"), 1);
  // Bad headers apply nothing.
  for (const char* bad : {"0", "7-3", "x", "1-", "99999999999999999999"}) {
    h["Tally-Sequence"] = bad;
    EXPECT_EQ(Http(central.http_port(), "POST", "/internal/apikey-stats/flush", body, h).status,
              400)
        << bad;
  }
  std::map<std::string, std::string> only_source = kInternal;
  only_source["Tally-Source"] = "x";
  EXPECT_EQ(
      Http(central.http_port(), "POST", "/internal/apikey-stats/flush", body, only_source).status,
      400);
  EXPECT_EQ(TotalRequests(central.http_port()), 65);
}

TEST_F(ForwardTest, ARefusedBatchIsDeadLetteredTheNextGoesOnAndARetryDelivers) {
  TallydProcess central(dir_.Sub("central"), Tokens());
  proxy_.SetUpstream(central.http_port());
  proxy_.SetRefuseStatus(400);
  proxy_.ForceNext(FaultProxy::kRefuse, 1);
  TallydProcess edge(dir_.Sub("edge"), EdgeArgs(token_, proxy_.port()));
  IngestFlushed(edge.http_port(), Lines(1, 10));
  ASSERT_TRUE(WaitUntil(
      [&] { return Metric(edge.http_port(), "tallyd_forward_dead_letters_total") == 1; }, 20000));
  IngestFlushed(edge.http_port(), Lines(2, 20));
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 20; }, 20000));
  boost::json::value outbox = Json(Http(edge.http_port(), "GET", "/admin/outbox", {}, kAdmin));
  ASSERT_EQ(outbox.at("dead_letters").as_array().size(), 1u) << outbox;
  const auto& dead = outbox.at("dead_letters").at(0);
  EXPECT_EQ(dead.at("http_status").to_number<int>(), 400);
  EXPECT_EQ(dead.at("keys").to_number<int>(), 1);
  const uint64_t id = dead.at("id").to_number<uint64_t>();
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_dead_letters"), 1);
  EXPECT_EQ(Http(edge.http_port(), "POST", "/admin/outbox/dead/999/retry", {}, kAdmin).status, 404);
  EXPECT_EQ(Http(edge.http_port(), "POST", "/admin/outbox/dead/1/retry").status, 401);
  // Retry: it comes back under a new sequence and is applied once.
  ASSERT_EQ(Http(edge.http_port(), "POST", "/admin/outbox/dead/" + std::to_string(id) + "/retry",
                 {}, kAdmin)
                .status,
            200);
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 30; }, 20000));
  EXPECT_EQ(KeyTotals(central.http_port()), KeyTotals(edge.http_port()));
  outbox = Json(Http(edge.http_port(), "GET", "/admin/outbox", {}, kAdmin));
  EXPECT_TRUE(outbox.at("dead_letters").as_array().empty());
  // 5xx is retried, not dead-lettered; DELETE drops a dead letter.
  proxy_.SetRefuseStatus(503);
  proxy_.ForceNext(FaultProxy::kRefuse, 2);
  IngestFlushed(edge.http_port(), Lines(3, 4));
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 34; }, 20000));
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_forward_retries_total{reason=\"5xx\"}"), 2);
  proxy_.SetRefuseStatus(422);
  proxy_.ForceNext(FaultProxy::kRefuse, 1);
  IngestFlushed(edge.http_port(), Lines(4, 1));
  ASSERT_TRUE(WaitUntil(
      [&] { return Metric(edge.http_port(), "tallyd_forward_dead_letters_total") == 2; }, 20000));
  outbox = Json(Http(edge.http_port(), "GET", "/admin/outbox", {}, kAdmin));
  const uint64_t id2 = outbox.at("dead_letters").at(0).at("id").to_number<uint64_t>();
  EXPECT_EQ(
      Http(edge.http_port(), "DELETE", "/admin/outbox/dead/" + std::to_string(id2), {}, kAdmin)
          .status,
      204);
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_dead_letters"), 0);
}

TEST_F(ForwardTest, AnEdgeKilledWithANonEmptyOutboxResumesWhereItStopped) {
  TallydProcess central(dir_.Sub("central"), Tokens());
  std::string source;
  {
    TallydProcess edge(dir_.Sub("edge"), EdgeArgs(token_, proxy_.port()));  // upstream down
    for (int i = 0; i < 3; ++i) {
      IngestFlushed(edge.http_port(), Lines(static_cast<uint64_t>(i + 1), 10));
    }
    ASSERT_TRUE(WaitUntil(
        [&] {
          return Metric(edge.http_port(), "tallyd_forward_retries_total{reason=\"connection\"}") >
                 0;
        },
        20000));
    EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_batches"), 3);
    source =
        Json(Http(edge.http_port(), "GET", "/admin/outbox", {}, kAdmin)).at("source").as_string();
    edge.Kill();
  }
  TallydProcess edge(dir_.Sub("edge"), EdgeArgs(token_, proxy_.port()));
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_batches"), 3);
  boost::json::value outbox = Json(Http(edge.http_port(), "GET", "/admin/outbox", {}, kAdmin));
  EXPECT_EQ(outbox.at("source").as_string(), source);
  EXPECT_EQ(outbox.at("last_sequence").to_number<int>(), 3);
  proxy_.SetUpstream(central.http_port());
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 30; }, 20000));
  ASSERT_TRUE(
      WaitUntil([&] { return Metric(edge.http_port(), "tallyd_outbox_batches") == 0; }, 20000));
  IngestFlushed(edge.http_port(), Lines(9, 1));
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 31; }, 20000));
  boost::json::value sources = Json(Http(central.http_port(), "GET", "/admin/sources", {}, kAdmin));
  EXPECT_EQ(sources.at("sources").at(0).at("last_sequence").to_number<int>(), 4);
  EXPECT_EQ(sources.at("sources").at(0).at("gaps").to_number<int>(), 0);
}

TEST_F(ForwardTest, AFlushOfManyKeysGoesAsSeveralBatchesUnderTheCentralsBodyLimit) {
  // 100,000 keys in one flush: as one request, ez-api's body would be ~6 MB, past the
  // central's default --max-body-bytes (4 MiB), and every such flush would be dead-lettered
  // with a 413. The outbox cuts it into batches of at most 20,000 keys.
  TallydProcess central(dir_.Sub("central"), Tokens());
  proxy_.SetUpstream(central.http_port());
  TallydProcess edge(dir_.Sub("edge"), EdgeArgs(token_, proxy_.port()));
  constexpr int kKeys = 100000;
  std::string lines;
  for (int key = 1; key <= kKeys; ++key) {
    lines += "apikey." + std::to_string(key) + ".success:1|c\n";
  }
  IngestFlushed(edge.http_port(), lines);
  ASSERT_TRUE(
      WaitUntil([&] { return Metric(edge.http_port(), "tallyd_outbox_batches") == 0; }, 60000))
      << edge.Log();
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_dead_letters"), 0);
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_forward_deltas_total"), kKeys);
  EXPECT_GE(Metric(edge.http_port(), "tallyd_forward_batches_total"), 5);
  EXPECT_EQ(TotalRequests(central.http_port()), kKeys);
}

TEST_F(ForwardTest, PastTheBoundReadyzFailsAndLinesAreRefusedUntilTheOutboxDrains) {
  TallydProcess central(dir_.Sub("central"), Tokens());
  TallydProcess edge(dir_.Sub("edge"),
                     EdgeArgs(token_, proxy_.port(), {"--outbox-max-bytes", "65536"}));
  // Upstream down: distinct keys until the outbox is full.
  uint64_t key = 1;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::string lines;
        for (int i = 0; i < 1000; ++i, ++key) {
          lines += "apikey." + std::to_string(key) + ".success:1|c\n";
        }
        Http(edge.http_port(), "POST", "/v1/ingest?wait=flush", lines, kInternal);
        return Metric(edge.http_port(), "tallyd_outbox_full") == 1;
      },
      60000, 0));
  EXPECT_EQ(Http(edge.http_port(), "GET", "/readyz").status, 503);
  HttpResult refused = Http(edge.http_port(), "POST", "/v1/ingest", Lines(1, 3), kInternal);
  EXPECT_EQ(refused.status, 202);
  EXPECT_NE(refused.body.find("\"refused\":3"), std::string::npos) << refused.body;
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_ingest_refused_total{reason=\"outbox_full\"}"), 3);
  EXPECT_LE(Metric(edge.http_port(), "tallyd_outbox_batches"), 17);  // coalesced
  proxy_.SetUpstream(central.http_port());
  ASSERT_TRUE(
      WaitUntil([&] { return Metric(edge.http_port(), "tallyd_outbox_batches") == 0; }, 30000));
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_full"), 0);
  EXPECT_EQ(Http(edge.http_port(), "GET", "/readyz").status, 200);
  const double accepted =
      Metric(edge.http_port(), "tallyd_lines_total{transport=\"http\",result=\"accepted\"}");
  EXPECT_EQ(TotalRequests(central.http_port()), static_cast<int64_t>(accepted));
  EXPECT_EQ(KeyTotals(central.http_port()), KeyTotals(edge.http_port()));
}

}  // namespace
}  // namespace tally::testing
