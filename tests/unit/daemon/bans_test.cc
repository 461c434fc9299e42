// The ban endpoints' JSON (api/bans.h), the SSE rendering and the hub's resume and stop
// (api/ban_events.h), and the --ban-* options (app/config_bans.h).
#include "daemon/api/bans.h"

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/api/ban_events.h"
#include "daemon/app/config.h"
#include "tests/support/wait_until.h"

namespace tally::daemon {
namespace {

TEST(BanPolicyJson, RendersAndParsesBackAndKeepsLeftOutFields) {
  core::BanPolicy p;
  const std::string json = RenderBanPolicy(p);
  EXPECT_EQ(json, R"({"window_seconds":60,"min_requests":20,"failure_rate":0.5,)"
                  R"("consecutive_failures":10,"immediate_codes":[401,403],"cooldown_codes":[429],)"
                  R"("cooldown_seconds":60,"max_cooldown_seconds":3600,"keep_one_active":true})");
  core::StatusOr<core::BanPolicy> back = ParseBanPolicy(json, core::BanPolicy{});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, p);
  core::StatusOr<core::BanPolicy> partial =
      ParseBanPolicy(R"({"min_requests":5,"cooldown_codes":[]})", p);
  ASSERT_TRUE(partial.ok()) << partial.status().message();
  EXPECT_EQ(partial->min_requests, 5);
  EXPECT_TRUE(partial->cooldown_codes.empty());
  EXPECT_EQ(partial->window_seconds, 60);
}

TEST(BanPolicyJson, RefusesNamingTheProblem) {
  const core::BanPolicy p;
  for (auto [body, names] : std::vector<std::pair<const char*, const char*>>{
           {"[]", "JSON object"},
           {"{", "JSON object"},
           {R"({"nope":1})", "nope"},
           {R"({"min_requests":"5"})", "min_requests"},
           {R"({"min_requests":0})", "min_requests"},
           {R"({"failure_rate":1.5})", "failure_rate"},
           {R"({"keep_one_active":1})", "keep_one_active"},
           {R"({"immediate_codes":[401],"cooldown_codes":[401]})", "cooldown_codes"},
           {R"({"cooldown_seconds":7200})", "cooldown_seconds"},
       }) {
    core::StatusOr<core::BanPolicy> r = ParseBanPolicy(body, p);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_NE(r.status().message().find(names), std::string::npos)
        << body << ": " << r.status().message();
  }
}

TEST(BanEvents, SseLinesOfABan) {
  persistence::BanEvent e;
  e.id = 7;
  e.type = persistence::BanEvent::Type::kBan;
  e.at = 1'800'000'000'000'000'000;
  e.key = 42;
  e.group_id = 3;
  e.ban_until_ns = e.at + 60'000'000'000;
  e.rule = "immediate_code";
  e.reason = "code 401";
  EXPECT_EQ(RenderSseEvent(e),
            "id: 7\nevent: ban\ndata: "
            R"({"id":7,"type":"ban","at":"2027-01-15T08:00:00Z","api_key_id":42,"group_id":3,)"
            R"("rule":"immediate_code","reason":"code 401","ban_until":"2027-01-15T08:01:00Z",)"
            R"("backoff_level":0})"
            "\n\n");
}

// A waiting stream gets a comment line after the heartbeat; Stop ends it with the last chunk
// (""), and a stream asking after the stop ends at once.
TEST(BanEventHub, HeartbeatsAWaitingStreamAndEndsItAtStop) {
  persistence::BanKeeper keeper(core::BanPolicy{}, nullptr);
  auto hub = std::make_shared<BanEventHub>(keeper, std::chrono::milliseconds(20));
  hub->Start();
  BodySource source = hub->Stream(std::nullopt);
  std::mutex mu;
  std::vector<std::optional<std::string>> pieces;
  auto emit = [&](std::optional<std::string> piece) {
    std::lock_guard lock(mu);
    pieces.push_back(std::move(piece));
  };
  auto count = [&] {
    std::lock_guard lock(mu);
    return pieces.size();
  };
  source(emit);
  ASSERT_EQ(count(), 1u);
  EXPECT_EQ(pieces[0], "retry: 1000\n\n");
  source(emit);  // nothing to send: parked until the heartbeat
  EXPECT_EQ(hub->waiting_streams(), 1u);
  ASSERT_TRUE(testing::WaitUntil([&] { return count() == 2; }, 5000));
  EXPECT_EQ(pieces[1], ": keep-alive\n\n");
  source(emit);
  hub->Stop();
  ASSERT_TRUE(testing::WaitUntil([&] { return count() == 3; }, 5000));
  EXPECT_EQ(pieces[2], "");
  source(emit);
  ASSERT_EQ(count(), 4u);
  EXPECT_EQ(pieces[3], "");
}

TEST(BanOptions, DefaultsParseAndBadValuesNameTheOption) {
  const char* ok[] = {"tallyd", "--ban-failure-rate",    "0.25",  "--ban-immediate-codes",
                      "none",   "--ban-keep-one-active", "false", "--ban-min-requests",
                      "7"};
  ParsedArgs parsed = ParseArgs(9, ok);
  ASSERT_TRUE(parsed.config.has_value()) << parsed.output;
  EXPECT_EQ(parsed.config->bans.policy.failure_rate, 0.25);
  EXPECT_TRUE(parsed.config->bans.policy.immediate_codes.empty());
  EXPECT_FALSE(parsed.config->bans.policy.keep_one_active);
  EXPECT_EQ(parsed.config->bans.policy.min_requests, 7);
  for (auto [option, value] : std::vector<std::pair<const char*, const char*>>{
           {"--ban-failure-rate", "0"},
           {"--ban-failure-rate", "x"},
           {"--ban-immediate-codes", "401,abc"},
           {"--ban-cooldown-codes", "403"},  // also immediate
           {"--ban-keep-one-active", "yes"},
           {"--ban-window-seconds", "0"},
       }) {
    const char* argv[] = {"tallyd", option, value};
    ParsedArgs bad = ParseArgs(3, argv);
    EXPECT_EQ(bad.exit_code, 2) << option << " " << value;
    EXPECT_NE(bad.output.find("ban"), std::string::npos) << bad.output;
  }
}

}  // namespace
}  // namespace tally::daemon
