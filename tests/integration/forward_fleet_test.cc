// The fleet (issue 17): four edge tallyds forwarding to one central tallyd through a
// fault-injecting proxy that drops connections, delays answers past the edges' timeout,
// resets connections after the request went through, and answers 503; traffic into every
// edge over UDP, Unix datagrams and HTTP; meanwhile two edges and the central are killed
// with SIGKILL once each, and the central is stopped for 60 s while traffic goes on (the
// edges' outboxes coalesce meanwhile). At the end, with every outbox empty, the central's
// per-key totals equal the sum of the edges' committed per-key totals exactly; replays
// happened and were not applied; no outbox passed its bound.
#include "tests/support/forward_fleet.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

namespace tally::testing {
namespace {

constexpr int kEdges = 4;
constexpr uint64_t kBound = 1 << 20;

void SendUnix(const std::string& path, const std::string& payload) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  close(fd);
}

std::string Lines(uint64_t first_key, int keys, int round) {
  std::string out;
  for (int k = 0; k < keys; ++k) {
    const uint64_t key = first_key + static_cast<uint64_t>(k);
    // Value 1, so each edge's committed total is its accepted lines.
    out += "apikey." + std::to_string(key) + ((k + round) % 3 == 0 ? ".failure" : ".success") +
           ":1|c\n";
  }
  return out;
}

double SumReplays(uint16_t central_port) {
  HttpResult r = Http(central_port, "GET", "/admin/sources", {}, kAdmin);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  double sum = 0;
  if (!ec && v.is_object()) {
    for (const auto& s : v.at("sources").as_array()) {
      sum += s.at("replays").to_number<double>();
    }
  }
  return sum;
}

TEST(ForwardFleet, EveryCommittedDeltaReachesTheCentralExactlyOnceThroughFaultsAndKills) {
  TempDir dir;
  const std::string token = WriteForwardToken(dir);
  FaultProxy proxy;
  proxy.SetDelay(std::chrono::milliseconds(1000));  // past the edges' 700 ms timeout
  proxy.SetRefuseStatus(503);
  // pass, drop, delay, reset after the request went through, 503.
  proxy.SetWeights({10, 1, 1, 2, 1});
  auto central = std::make_unique<TallydProcess>(dir.Sub("central"), Tokens());
  proxy.SetUpstream(central->http_port());

  std::vector<std::unique_ptr<TallydProcess>> edges(kEdges);
  std::vector<std::string> sockets(kEdges);
  auto start_edge = [&](int e) {
    sockets[e] = dir.Sub("edge" + std::to_string(e) + ".sock");
    edges[e] = std::make_unique<TallydProcess>(
        dir.Sub("edge" + std::to_string(e)),
        EdgeArgs(token, proxy.port(),
                 {"--unix-socket", sockets[e], "--source-id", "edge-" + std::to_string(e),
                  "--outbox-max-bytes", std::to_string(kBound)}));
  };
  for (int e = 0; e < kEdges; ++e) {
    start_edge(e);
  }

  double replays = 0;
  double max_outbox_bytes = 0;
  bool killed[kEdges] = {};
  constexpr int kRounds = 60;
  constexpr auto kOutage = std::chrono::seconds(60);
  std::chrono::steady_clock::time_point stopped_at;
  double coalesced = 0;  // by the edges during the outage
  for (int round = 0; round < kRounds || !central; ++round) {
    for (int e = 0; e < kEdges; ++e) {
      const uint64_t base = 1 + static_cast<uint64_t>((round * 7 + e * 13) % 40);
      SendUdp(edges[e]->udp_port(), Lines(base, 8, round));
      SendUnix(sockets[e], Lines(base + 3, 5, round + 1));
      Http(edges[e]->http_port(), "POST", "/v1/ingest", Lines(base + 20, 6, round + 2), kInternal);
      max_outbox_bytes =
          std::max(max_outbox_bytes, Metric(edges[e]->http_port(), "tallyd_outbox_bytes"));
    }
    if (round == 10 || round == 30) {  // kill -9 an edge, restart it on its data dir
      const int e = round == 10 ? 0 : 1;
      edges[e]->Kill();
      killed[e] = true;
      start_edge(e);
    }
    if (round == 20) {  // kill -9 the central, restart it
      replays += SumReplays(central->http_port());
      central->Kill();
      central.reset();
      proxy.SetUpstream(0);
      central = std::make_unique<TallydProcess>(dir.Sub("central"), Tokens());
      proxy.SetUpstream(central->http_port());
    }
    if (round == 40) {  // stop the central; traffic goes on meanwhile
      replays += SumReplays(central->http_port());
      EXPECT_EQ(central->Stop(), 0);
      central.reset();
      proxy.SetUpstream(0);
      stopped_at = std::chrono::steady_clock::now();
    }
    if (!central && std::chrono::steady_clock::now() - stopped_at >= kOutage) {  // back
      for (auto& edge : edges) {
        coalesced += Metric(edge->http_port(), "tallyd_outbox_coalesced_total");
      }
      central = std::make_unique<TallydProcess>(dir.Sub("central"), Tokens());
      proxy.SetUpstream(central->http_port());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // paces the traffic
  }
  ASSERT_TRUE(central);

  // Everything accepted is flushed at the edges, then forwarded: every outbox empties.
  for (auto& edge : edges) {
    ASSERT_EQ(Http(edge->http_port(), "POST", "/admin/flush", {}, kAdmin).status, 200);
  }
  for (auto& edge : edges) {
    ASSERT_TRUE(WaitUntil([&] { return Metric(edge->http_port(), "tallyd_outbox_batches") == 0; },
                          120000, 50))
        << edge->Log();
  }
  std::map<uint64_t, int64_t> expected;
  for (int e = 0; e < kEdges; ++e) {
    std::map<uint64_t, int64_t> totals = KeyTotals(edges[e]->http_port());
    int64_t edge_total = 0;
    for (const auto& [key, total] : totals) {
      expected[key] += total;
      edge_total += total;
    }
    if (!killed[e]) {  // every line it accepted was committed
      double accepted = 0;
      for (const char* t : {"udp", "unix", "http"}) {
        accepted += Metric(edges[e]->http_port(), std::string("tallyd_lines_total{transport=\"") +
                                                      t + "\",result=\"accepted\"}");
      }
      EXPECT_EQ(edge_total, static_cast<int64_t>(accepted)) << "edge " << e;
    }
    EXPECT_EQ(Metric(edges[e]->http_port(), "tallyd_ingest_refused_total{reason=\"outbox_full\"}"),
              0);
  }
  EXPECT_EQ(KeyTotals(central->http_port()), expected);
  replays += SumReplays(central->http_port());
  EXPECT_GT(proxy.count(FaultProxy::kResetAfterSend) + proxy.count(FaultProxy::kDelay), 0u);
  EXPECT_GT(replays, 0) << "applied-but-unanswered batches came back and were not applied";
  EXPECT_LT(max_outbox_bytes, static_cast<double>(kBound));
  EXPECT_GT(coalesced, 0) << "the outage was long enough for the outboxes to coalesce";
  boost::system::error_code ec;
  boost::json::value sources =
      boost::json::parse(Http(central->http_port(), "GET", "/admin/sources", {}, kAdmin).body, ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(sources.at("sources").as_array().size(), static_cast<size_t>(kEdges));
}

}  // namespace
}  // namespace tally::testing
