// Fault test: SIGKILL under sustained UDP and HTTP load, then restart.
//
// Each sender counts into its own provider group, so every check is per group:
//   group 1  UDP datagrams                           (may be dropped by the kernel)
//   group 2  POST /v1/ingest, 202                    (counted, not yet durable)
//   group 3  POST /v1/ingest?wait=flush, 200         (durable when answered)
//   group 4  POST /internal/apikey-stats/flush, 200  (durable when answered; Idempotency-Key)
// Guarantees checked after every kill and restart:
//   - the persistence invariant: for every group, its totals equal the sum over its live
//     keys; for every key and group, success + failure = total;
//   - what tallyd reported committed survives: the summary is at least the summary read
//     just before the kill; groups 3 and 4 hold at least everything answered 200 (up to
//     the kill, answers read after it included); groups 1 and 2 hold at least every line
//     that a POST /admin/flush answered 200 committed: for group 2 the lines answered 202
//     before that flush was sent, for group 1 the UDP lines /metrics counted accepted
//     before it;
//   - nothing is counted twice: no group holds more than was sent to it, and retrying every
//     answered internal flush with its Idempotency-Key after the restart changes nothing;
//   - so what is missing is at most what arrived after the last committed flush.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

struct Totals {
  int64_t total = -1;
  int64_t success = -1;
  int64_t failure = -1;
  Totals& operator+=(const Totals& o) {
    total += o.total;
    success += o.success;
    failure += o.failure;
    return *this;
  }
};

Totals FromObject(const json::object& o) {
  return {o.at("total_requests").to_number<int64_t>(),
          o.at("success_requests").to_number<int64_t>(),
          o.at("failure_requests").to_number<int64_t>()};
}

Totals ReadSummary(uint16_t port, const std::string& query = "") {
  HttpResult r = Http(port, "GET", "/admin/apikey-stats/summary" + query);
  if (r.status != 200) {
    return {};
  }
  return FromObject(json::parse(r.body).as_object());
}

// The persistence invariant over every record, read through the admin API.
void ExpectInvariant(uint16_t port) {
  HttpResult groups = Http(port, "GET", "/admin/provider-groups");
  HttpResult keys = Http(port, "GET", "/admin/api-keys");
  ASSERT_EQ(groups.status, 200) << groups.body;
  ASSERT_EQ(keys.status, 200) << keys.body;
  std::map<uint64_t, Totals> sums;
  Totals all{0, 0, 0};
  const json::value key_list = json::parse(keys.body);
  const json::value group_list = json::parse(groups.body);
  for (const json::value& v : key_list.as_array()) {
    const json::object& k = v.as_object();
    Totals t = FromObject(k);
    EXPECT_EQ(t.success + t.failure, t.total) << "key " << json::serialize(v);
    Totals& g = sums[k.at("group_id").to_number<uint64_t>()];
    if (g.total < 0) {
      g = {0, 0, 0};
    }
    g += t;
    all += t;
  }
  for (const json::value& v : group_list.as_array()) {
    const json::object& g = v.as_object();
    uint64_t id = g.at("ID").to_number<uint64_t>();
    Totals t = FromObject(g);
    Totals want = sums.count(id) != 0 ? sums[id] : Totals{0, 0, 0};
    EXPECT_EQ(t.success + t.failure, t.total) << "group " << id;
    EXPECT_EQ(t.total, want.total) << "group " << id << " != sum over its keys";
    EXPECT_EQ(t.success, want.success) << "group " << id;
    EXPECT_EQ(t.failure, want.failure) << "group " << id;
  }
  Totals summary = ReadSummary(port);
  EXPECT_EQ(summary.total, all.total) << "summary != sum over live keys";
  EXPECT_EQ(summary.success, all.success);
}

constexpr uint64_t kGroupFirstKey[] = {0, 1, 1001, 2001, 3001};
constexpr uint64_t kGroupKeys[] = {0, 200, 100, 10, 10};

// Creates groups 1..4 and their keys, so each sender's lines land in its own group.
void CreateRecords(uint16_t port) {
  for (int g = 1; g <= 4; ++g) {
    HttpResult r = Http(
        port, "PUT", "/admin/provider-groups/" + std::to_string(g),
        R"({"name":"fault-)" + std::to_string(g) + R"(","type":"openai","base_url":"http://x"})");
    ASSERT_TRUE(r.status == 200 || r.status == 201) << r.status << " " << r.body;
    for (uint64_t k = kGroupFirstKey[g]; k < kGroupFirstKey[g] + kGroupKeys[g]; ++k) {
      r = Http(port, "PUT", "/admin/api-keys/" + std::to_string(k),
               R"({"api_key":"sk-fault-)" + std::to_string(k) + R"(","group_id":)" +
                   std::to_string(g) + "}");
      ASSERT_TRUE(r.status == 200 || r.status == 201) << r.status << " " << r.body;
    }
  }
}

// Lines of value 1, so lines count requests. Keys cycle through the group's range.
std::string Lines(int group, int lines, uint64_t* cursor) {
  std::string out;
  for (int i = 0; i < lines; ++i) {
    uint64_t key = kGroupFirstKey[group] + (*cursor)++ % kGroupKeys[group];
    out += "apikey." + std::to_string(key) + (key % 3 == 0 ? ".failure:1|c\n" : ".success:1|c\n");
  }
  return out;
}

struct InternalFlush {
  std::string key;  // Idempotency-Key
  std::string body;
};

struct Load {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sent[5] = {};     // per group: every line or request that left
  std::atomic<int64_t> durable[5] = {};  // per group: answered 200 (groups 3 and 4)
  std::atomic<int64_t> acked[5] = {};    // per group: answered 202 (group 2)
  // Per group, this cycle: at least this total is committed (groups 1 and 2), from the
  // group's total at the cycle's start and what an /admin/flush answered 200 committed.
  std::atomic<int64_t> floor[5] = {};
  int64_t base[5] = {};  // per group: its total when the cycle started
  int64_t acked_at_start = 0;
  std::mutex mu;
  std::vector<InternalFlush> answered;  // internal flushes answered 200
  std::vector<std::thread> threads;
  int cycle = 0;

  void Start(uint16_t udp, uint16_t http) {
    threads.emplace_back([this, udp] {  // about 2,000 datagrams of 20 lines a second
      uint64_t cursor = 0;
      while (!stop.load()) {
        for (int i = 0; i < 20 && !stop.load(); ++i) {
          sent[1] += 20;  // before sending: it may be counted as soon as it leaves
          SendUdp(udp, Lines(1, 20, &cursor));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // pacing, not a wait
      }
    });
    threads.emplace_back([this, http] {  // /v1/ingest on one keep-alive connection, flat out
      uint64_t cursor = 0;
      auto conn = std::make_unique<RawConnection>(http, 2000);
      while (!stop.load()) {
        sent[2] += 50;
        int status = conn->Request("POST", "/v1/ingest", Lines(2, 50, &cursor)).status;
        if (status == 202) {
          acked[2] += 50;
        } else if (status == 0) {
          conn = std::make_unique<RawConnection>(http, 2000);
          std::this_thread::sleep_for(std::chrono::milliseconds(5));  // reconnect back-off
        }
      }
    });
    threads.emplace_back([this, http] {  // /v1/ingest?wait=flush
      uint64_t cursor = 0;
      auto conn = std::make_unique<RawConnection>(http, 5000);
      while (!stop.load()) {
        sent[3] += 10;
        HttpResult r = conn->Request("POST", "/v1/ingest?wait=flush", Lines(3, 10, &cursor));
        if (r.status == 200) {
          durable[3] += 10;
        } else if (r.status == 0) {
          conn = std::make_unique<RawConnection>(http, 5000);
          std::this_thread::sleep_for(std::chrono::milliseconds(5));  // reconnect back-off
        }
      }
    });
    threads.emplace_back([this, http] {  // ez-api's internal flush, idempotent
      auto conn = std::make_unique<RawConnection>(http, 5000);
      for (uint64_t n = 0; !stop.load(); ++n) {
        uint64_t key = kGroupFirstKey[4] + n % kGroupKeys[4];
        InternalFlush f{"kill-" + std::to_string(cycle) + "-" + std::to_string(n),
                        R"({"keys":[{"api_key_id":)" + std::to_string(key) +
                            R"(,"requests":5,"success_requests":3}]})"};
        sent[4] += 5;
        HttpResult r = conn->Request("POST", "/internal/apikey-stats/flush", f.body,
                                     {{"Idempotency-Key", f.key}});
        if (r.status == 200) {
          durable[4] += 5;
          std::lock_guard lock(mu);
          answered.push_back(std::move(f));
        } else if (r.status == 0) {
          conn = std::make_unique<RawConnection>(http, 5000);
          std::this_thread::sleep_for(std::chrono::milliseconds(5));  // reconnect back-off
        }
      }
    });
  }

  // Until stopped: notes what is accepted, asks for a flush, and when it answers 200 raises
  // the floors of groups 1 and 2 to what was accepted before it.
  void StartFlusher(uint16_t http) {
    for (int g : {1, 2}) {
      floor[g] = base[g];
    }
    threads.emplace_back([this, http] {
      while (!stop.load()) {
        const int64_t acked2 = acked[2].load();
        const std::optional<double> udp =
            ScrapeMetric(http, R"(tallyd_lines_total{transport="udp",result="accepted"})");
        if (udp.has_value() && Http(http, "POST", "/admin/flush").status == 200) {
          floor[1] = std::max(floor[1].load(), base[1] + static_cast<int64_t>(*udp));
          floor[2] = std::max(floor[2].load(), base[2] + acked2 - acked_at_start);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(150));  // pacing, not a wait
      }
    });
  }

  void Join() {
    stop = true;
    for (std::thread& t : threads) {
      t.join();
    }
    threads.clear();
    stop = false;
  }
};

TEST(FaultKill, Sigkill_UnderLoad_KeepsEveryCommittedFlushAndCountsNothingTwice) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  const std::vector<std::string> args = {"--flush-interval-ms", "100"};
  {
    TallydProcess setup(data, args);
    CreateRecords(setup.http_port());
    ASSERT_EQ(setup.Stop(), 0) << setup.Log();
  }
  Load load;
  Totals last{0, 0, 0};
  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    load.cycle = cycle;
    int64_t durable_before[5];
    Totals committed;
    {
      TallydProcess tallyd(data, args);
      ASSERT_EQ(ReadSummary(tallyd.http_port()).total, last.total) << "restart changed totals";
      for (int g = 1; g <= 2; ++g) {
        load.base[g] = ReadSummary(tallyd.http_port(), "?group_id=" + std::to_string(g)).total;
        ASSERT_GE(load.base[g], 0);
      }
      load.acked_at_start = load.acked[2].load();
      load.Start(tallyd.udp_port(), tallyd.http_port());
      load.StartFlusher(tallyd.http_port());
      std::this_thread::sleep_for(std::chrono::seconds(3));  // not a wait: 3 s of traffic
      // The summary now must survive the kill.
      committed = ReadSummary(tallyd.http_port());
      tallyd.Kill();  // senders still sending
      load.Join();
    }
    // Everything answered 200 before the kill (answers read after it included), and every
    // line committed by an /admin/flush that answered 200.
    for (int g = 0; g < 5; ++g) {
      durable_before[g] = std::max(load.durable[g].load(), load.floor[g].load());
    }
    ASSERT_GT(load.floor[2].load(), load.base[2]) << "no /admin/flush committed ingest lines";
    ASSERT_GT(load.durable[3].load(), 0) << "no wait=flush answer: no flush committed";
    ASSERT_GT(load.durable[4].load(), 0) << "no internal flush answered";

    TallydProcess again(data, args);
    const uint16_t port = again.http_port();
    Totals after = ReadSummary(port);
    EXPECT_GE(after.total, committed.total) << "a committed flush was lost";
    EXPECT_GE(after.success, committed.success);
    EXPECT_GE(after.failure, committed.failure);
    for (int g = 1; g <= 4; ++g) {
      Totals t = ReadSummary(port, "?group_id=" + std::to_string(g));
      ASSERT_GE(t.total, 0)
          << "no summary for group " << g << ": "
          << Http(port, "GET", "/admin/apikey-stats/summary?group_id=" + std::to_string(g)).body;
      EXPECT_LE(t.total, load.sent[g].load()) << "group " << g << ": counted twice";
      EXPECT_GE(t.total, durable_before[g]) << "group " << g << ": acknowledged lines lost";
      if (g == 4) {
        // Answered or not, each internal flush is all or nothing: 5 requests, 3 successes.
        EXPECT_EQ(t.total % 5, 0);
        EXPECT_EQ(t.success * 5, t.total * 3);
      }
    }
    ExpectInvariant(port);

    // Retrying every answered internal flush with its key changes nothing, after a restart.
    std::vector<InternalFlush> retry;
    {
      std::lock_guard lock(load.mu);
      retry = load.answered;
    }
    RawConnection conn(port, 5000);
    for (const InternalFlush& f : retry) {
      HttpResult r = conn.Request("POST", "/internal/apikey-stats/flush", f.body,
                                  {{"Idempotency-Key", f.key}});
      ASSERT_EQ(r.status, 200) << "retry of " << f.key << ": " << r.body;
    }
    ASSERT_EQ(Http(port, "POST", "/admin/flush").status, 200);
    Totals retried = ReadSummary(port);
    EXPECT_EQ(retried.total, after.total) << "an idempotent retry was applied twice";
    std::cerr << "cycle " << cycle << ": committed before kill " << committed.total
              << ", after restart " << after.total << "; sent udp " << load.sent[1]
              << " (committed by /admin/flush: " << load.floor[1] - load.base[1] << ")"
              << ", ingest " << load.sent[2]
              << " (committed by /admin/flush: " << load.floor[2] - load.base[2] << "), wait=flush "
              << load.sent[3] << " (200: " << load.durable[3] << "), internal " << load.sent[4]
              << " (200: " << load.durable[4] << ")\n";
    last = retried;
    EXPECT_EQ(again.Stop(), 0) << again.Log();
  }
}

}  // namespace
}  // namespace tally::testing
