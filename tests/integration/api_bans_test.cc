// Automatic bans against the real binary (issue 16; README "Bans"): failures over UDP flip a
// key within two flushes; the event stream delivers the ban and resumes with Last-Event-ID;
// a restart keeps bans and deadlines; SIGKILL right after a ban never leaves a key banned
// without its reason and deadline.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"
#include "tests/support/wait_until.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

// A raw GET /admin/events that keeps reading what the stream sends.
class EventStream {
 public:
  EventStream(uint16_t port, std::string last_event_id = "") {
    fd_ = ConnectLoopback(SOCK_STREAM, port);
    timeval tv{0, 100'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = "GET /admin/events HTTP/1.1\r\nHost: x\r\n";
    for (const auto& [name, value] : kAdmin) {
      req += name + ": " + value + "\r\n";
    }
    if (!last_event_id.empty()) {
      req += "Last-Event-ID: " + last_event_id + "\r\n";
    }
    req += "\r\n";
    EXPECT_EQ(send(fd_, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }
  ~EventStream() { close(fd_); }
  // Reads until the bytes received hold `text` (true) or `timeout_ms` passes.
  bool WaitFor(std::string_view text, int timeout_ms) {
    return WaitUntil(
        [&] {
          char buf[4096];
          ssize_t n = recv(fd_, buf, sizeof buf, 0);
          if (n > 0) {
            got_.append(buf, static_cast<size_t>(n));
          }
          return got_.find(text) != std::string::npos;
        },
        timeout_ms, 1);
  }
  const std::string& got() const { return got_; }

 private:
  int fd_ = -1;
  std::string got_;
};

json::object GetKey(uint16_t port, uint64_t id) {
  HttpResult r = Http(port, "GET", "/admin/api-keys/" + std::to_string(id), {}, kAdmin);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.status == 200 ? json::parse(r.body).as_object() : json::object();
}

std::string Status(uint16_t port, uint64_t id) {
  json::object k = GetKey(port, id);
  return k.contains("status") ? std::string(k.at("status").as_string()) : "";
}

// A group with keys 1 and 2 (two, so keep-one lets one of them be banned).
void MakeGroup(uint16_t port) {
  ASSERT_EQ(Http(port, "POST", "/admin/provider-groups",
                 R"({"ID":1,"name":"g","type":"openai","base_url":"http://u"})", kAdmin)
                .status,
            201);
  for (int id : {1, 2}) {
    ASSERT_EQ(Http(port, "POST", "/admin/api-keys",
                   R"({"ID":)" + std::to_string(id) + R"(,"group_id":1,"api_key":"k"})", kAdmin)
                  .status,
              201);
  }
}

double Flushes(uint16_t port) {
  return ScrapeMetric(port, "tallyd_flushes_total{result=\"ok\"}").value_or(-1);
}

TEST(Bans, UdpFailuresFlipAKeyWithinTwoFlushesAndTheStreamTellsIt) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("db"), Tokens({"--flush-interval-ms", "300"}));
  const uint16_t port = tallyd.http_port();
  MakeGroup(port);
  EventStream stream(port);
  ASSERT_TRUE(stream.WaitFor("retry: 1000", 5000)) << stream.got();
  const double before = Flushes(port);
  SendUdp(tallyd.udp_port(), "apikey.1.failure:6|c\napikey.1.failure:4|c");  // a run of 10
  ASSERT_TRUE(WaitUntil([&] { return Status(port, 1) == "auto_disabled"; }, 10000));
  EXPECT_LE(Flushes(port) - before, 2);
  json::object k = GetKey(port, 1);
  EXPECT_EQ(k.at("ban_reason").as_string(), "consecutive_failures 10");
  EXPECT_TRUE(k.at("ban_until").is_string());
  EXPECT_EQ(Status(port, 2), "active");
  ASSERT_TRUE(stream.WaitFor("event: ban\n", 5000)) << stream.got();
  EXPECT_NE(stream.got().find("\"api_key_id\":1"), std::string::npos) << stream.got();
  EXPECT_EQ(ScrapeMetric(port, "tallyd_bans_total{reason=\"consecutive_failures\"}"), 1);
  EXPECT_EQ(ScrapeMetric(port, "tallyd_keys_banned"), 1);

  // A failure code bans at once; keep-one then withholds the group's last active key.
  SendUdp(tallyd.udp_port(), "apikey.2.failure.401:1|c");
  ASSERT_TRUE(WaitUntil(
      [&] { return ScrapeMetric(port, "tallyd_bans_withheld_total").value_or(0) == 1; }, 10000));
  EXPECT_EQ(Status(port, 2), "active");
}

TEST(Bans, StreamResumesAfterAReconnectWithLastEventId) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("db"), Tokens({"--flush-interval-ms", "100"}));
  const uint16_t port = tallyd.http_port();
  MakeGroup(port);
  {
    EventStream first(port);
    ASSERT_TRUE(first.WaitFor("retry:", 5000));
    SendUdp(tallyd.udp_port(), "apikey.1.failure.403:1|c");
    ASSERT_TRUE(first.WaitFor("id: 1\n", 5000)) << first.got();
  }  // the gateway goes away
  // Meanwhile: an operator unban (event 2) and a policy change (event 3).
  ASSERT_EQ(Http(port, "POST", "/admin/api-keys/1/unban", {}, kAdmin).status, 200);
  ASSERT_EQ(Http(port, "PUT", "/admin/ban-policy", R"({"min_requests":30})", kAdmin).status, 200);
  EventStream again(port, "1");
  ASSERT_TRUE(again.WaitFor("event: policy\n", 5000)) << again.got();
  EXPECT_EQ(again.got().find("id: 1\n"), std::string::npos) << again.got();
  EXPECT_NE(again.got().find("id: 2\nevent: unban\n"), std::string::npos) << again.got();
  EXPECT_NE(again.got().find("\"min_requests\":30"), std::string::npos) << again.got();
  EXPECT_EQ(Status(port, 1), "active");
  // A bad policy changes nothing and names the field.
  HttpResult bad = Http(port, "PUT", "/admin/ban-policy", R"({"failure_rate":2})", kAdmin);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("failure_rate"), std::string::npos) << bad.body;
  HttpResult policy = Http(port, "GET", "/admin/ban-policy", {}, kAdmin);
  EXPECT_NE(policy.body.find("\"failure_rate\":0.5"), std::string::npos) << policy.body;
  EXPECT_EQ(Http(port, "GET", "/admin/ban-policy").status, 401);
}

// The usual key to unban is one first seen through traffic: it has no api_key, which an
// admin PUT requires, and the unban must not (it changes the status fields only).
TEST(Bans, AKeyFirstSeenThroughTrafficCanBeUnbanned) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("db"), Tokens({"--flush-interval-ms", "100"}));
  const uint16_t port = tallyd.http_port();
  SendUdp(tallyd.udp_port(), "apikey.7.failure.401:1|c");
  auto banned = [&] {  // no record before the first flush: not Status(), which expects one
    HttpResult got = Http(port, "GET", "/admin/api-keys/7", {}, kAdmin);
    return got.status == 200 && got.body.find("\"auto_disabled\"") != std::string::npos;
  };
  ASSERT_TRUE(WaitUntil(banned, 10000));
  HttpResult r = Http(port, "POST", "/admin/api-keys/7/unban", {}, kAdmin);
  ASSERT_EQ(r.status, 200) << r.body;
  json::object k = GetKey(port, 7);
  EXPECT_EQ(k.at("status").as_string(), "active");
  EXPECT_EQ(k.at("ban_reason").as_string(), "");
  EXPECT_TRUE(k.at("ban_until").is_null());
  EXPECT_EQ(k.at("api_key").as_string(), "");
  EXPECT_EQ(k.at("total_requests").to_number<int64_t>(), 1);
  EXPECT_EQ(Http(port, "POST", "/admin/api-keys/8/unban", {}, kAdmin).status, 404);
}

TEST(Bans, RestartKeepsBansDeadlinesAndPolicy) {
  TempDir dir;
  std::string until;
  {
    TallydProcess tallyd(dir.Sub("db"), Tokens({"--flush-interval-ms", "100"}));
    const uint16_t port = tallyd.http_port();
    MakeGroup(port);
    ASSERT_EQ(Http(port, "PUT", "/admin/ban-policy", R"({"cooldown_seconds":600})", kAdmin).status,
              200);
    SendUdp(tallyd.udp_port(), "apikey.1.failure.401:1|c");
    ASSERT_TRUE(WaitUntil([&] { return Status(port, 1) == "auto_disabled"; }, 10000));
    until = std::string(GetKey(port, 1).at("ban_until").as_string());
    EXPECT_EQ(tallyd.Stop(), 0);
  }
  TallydProcess tallyd(dir.Sub("db"), Tokens({"--flush-interval-ms", "100"}));
  const uint16_t port = tallyd.http_port();
  json::object k = GetKey(port, 1);
  EXPECT_EQ(k.at("status").as_string(), "auto_disabled");
  EXPECT_EQ(k.at("ban_until").as_string(), until);
  EXPECT_EQ(k.at("ban_reason").as_string(), "code 401");
  EXPECT_EQ(ScrapeMetric(port, "tallyd_keys_banned"), 1);
  HttpResult policy = Http(port, "GET", "/admin/ban-policy", {}, kAdmin);
  EXPECT_NE(policy.body.find("\"cooldown_seconds\":600"), std::string::npos) << policy.body;
  EventStream stream(port, "0");
  ASSERT_TRUE(stream.WaitFor("event: ban\n", 5000)) << stream.got();  // the log survived
}

TEST(Bans, ExpiredBanIsReleasedWithoutTraffic) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("db"),
                       Tokens({"--flush-interval-ms", "100", "--ban-cooldown-seconds", "1"}));
  const uint16_t port = tallyd.http_port();
  MakeGroup(port);
  EventStream stream(port);
  ASSERT_TRUE(stream.WaitFor("retry:", 5000));
  SendUdp(tallyd.udp_port(), "apikey.1.failure.401:1|c");
  ASSERT_TRUE(stream.WaitFor("event: ban\n", 5000)) << stream.got();
  ASSERT_TRUE(stream.WaitFor("event: unban\n", 5000)) << stream.got();
  EXPECT_NE(stream.got().find("\"rule\":\"expired\""), std::string::npos) << stream.got();
  json::object k = GetKey(port, 1);
  EXPECT_EQ(k.at("status").as_string(), "active");
  EXPECT_TRUE(k.at("ban_until").is_null());
}

// A stream ends (its last chunk) when tallyd stops, and holds no stop up.
TEST(Bans, StreamEndsWhenTallydStops) {
  TempDir dir;
  TallydProcess tallyd(dir.Sub("db"), Tokens());
  EventStream stream(tallyd.http_port());
  ASSERT_TRUE(stream.WaitFor("retry:", 5000));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(tallyd.Stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(stream.WaitFor("0\r\n\r\n", 2000)) << stream.got();
}

TEST(Bans, KillRightAfterABanNeverLeavesAKeyBannedWithoutReasonAndDeadline) {
  TempDir dir;
  for (int round = 0; round < 3; ++round) {
    TallydProcess tallyd(dir.Sub("db"),
                         Tokens({"--flush-interval-ms", "20", "--ban-keep-one-active", "false"}));
    const uint16_t port = tallyd.http_port();
    if (round == 0) {
      MakeGroup(port);
    }
    const std::string key = std::to_string(1 + round % 2);
    ASSERT_EQ(Http(port, "POST", "/admin/api-keys/" + key + "/unban", {}, kAdmin).status, 200);
    SendUdp(tallyd.udp_port(), "apikey." + key + ".failure.401:1|c");
    // Kill as soon as the ban is visible (or the stream says so): the flush has committed.
    ASSERT_TRUE(
        WaitUntil([&] { return Status(port, std::stoull(key)) == "auto_disabled"; }, 10000, 1));
    tallyd.Kill();
    TallydProcess after(dir.Sub("db"), Tokens());
    for (uint64_t id : {1, 2}) {
      json::object k = GetKey(after.http_port(), id);
      if (k.at("status").as_string() == "auto_disabled") {
        EXPECT_FALSE(k.at("ban_reason").as_string().empty()) << json::serialize(k);
        EXPECT_TRUE(k.at("ban_until").is_string()) << json::serialize(k);
      }
    }
    EXPECT_EQ(Status(after.http_port(), std::stoull(key)), "auto_disabled");
    after.Stop();
  }
}

}  // namespace
}  // namespace tally::testing
