// The ban policy's settings: Validate()'s ranges, the backoff lengths and which statuses
// the rule may touch (core/ban_policy.h). The rule itself: ban_policy_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/ban_policy.h"

namespace tally::core {
namespace {

TEST(BanPolicyValidate, DefaultsAreIssue16sAndValid) {
  BanPolicy p;
  EXPECT_TRUE(p.Validate().ok());
  EXPECT_EQ(p.window_seconds, 60);
  EXPECT_EQ(p.min_requests, 20);
  EXPECT_EQ(p.failure_rate, 0.5);
  EXPECT_EQ(p.consecutive_failures, 10);
  EXPECT_EQ(p.immediate_codes, (std::vector<int>{401, 403}));
  EXPECT_EQ(p.cooldown_codes, (std::vector<int>{429}));
  EXPECT_EQ(p.cooldown_seconds, 60);
  EXPECT_EQ(p.max_cooldown_seconds, 3600);
  EXPECT_TRUE(p.keep_one_active);
}

TEST(BanPolicyValidate, EachIntegerFieldAtItsBoundsAndOnePast) {
  struct Case {
    const char* field;
    int64_t BanPolicy::*member;
    int64_t lo;
    int64_t hi;
  };
  const Case cases[] = {
      {"window_seconds", &BanPolicy::window_seconds, 1, 3600},
      {"min_requests", &BanPolicy::min_requests, 1, 1'000'000'000},
      {"consecutive_failures", &BanPolicy::consecutive_failures, 1, 1'000'000'000},
      {"cooldown_seconds", &BanPolicy::cooldown_seconds, 1, 604'800},
      {"max_cooldown_seconds", &BanPolicy::max_cooldown_seconds, 1, 604'800},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    BanPolicy base;  // room for either cooldown at its bounds
    base.cooldown_seconds = 1;
    base.max_cooldown_seconds = 604'800;
    for (int64_t ok : {c.lo, c.hi}) {
      BanPolicy p = base;
      p.*c.member = ok;
      EXPECT_TRUE(p.Validate().ok()) << ok;
    }
    for (int64_t bad : {c.lo - 1, c.hi + 1}) {
      BanPolicy p = base;
      p.*c.member = bad;
      Status s = p.Validate();
      ASSERT_FALSE(s.ok()) << bad;
      EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
      EXPECT_EQ(s.message().rfind(std::string("ban policy: ") + c.field + " must be", 0), 0u)
          << s.message();
      EXPECT_NE(s.message().find("got " + std::to_string(bad)), std::string::npos) << s.message();
    }
  }
}

TEST(BanPolicyValidate, CooldownSecondsMayNotExceedTheMaximum) {
  BanPolicy p;
  p.cooldown_seconds = 3600;
  EXPECT_TRUE(p.Validate().ok());
  p.cooldown_seconds = 3601;
  Status s = p.Validate();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "ban policy: cooldown_seconds (3601) must not exceed max_cooldown_seconds (3600)");
}

TEST(BanPolicyValidate, FailureRateIsInZeroExcludedToOne) {
  for (double ok : {1e-9, 0.5, 1.0}) {
    BanPolicy p;
    p.failure_rate = ok;
    EXPECT_TRUE(p.Validate().ok()) << ok;
  }
  for (double bad : {0.0, -0.1, std::nextafter(1.0, 2.0), std::nan(""),
                     std::numeric_limits<double>::infinity()}) {
    BanPolicy p;
    p.failure_rate = bad;
    Status s = p.Validate();
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("failure_rate"), std::string::npos) << s.message();
  }
}

TEST(BanPolicyValidate, CodesAreHttpStatusesWithoutRepeatsInOneListOnly) {
  auto message = [](std::vector<int> immediate, std::vector<int> cooldown) {
    BanPolicy p;
    p.immediate_codes = std::move(immediate);
    p.cooldown_codes = std::move(cooldown);
    Status s = p.Validate();
    return s.ok() ? std::string("ok") : s.message();
  };
  EXPECT_EQ(message({100, 599}, {}), "ok");
  EXPECT_EQ(message({}, {}), "ok");
  EXPECT_NE(message({99}, {429}).find("immediate_codes"), std::string::npos);
  EXPECT_NE(message({401}, {600}).find("cooldown_codes"), std::string::npos);
  EXPECT_NE(message({401, 401}, {429}).find("immediate_codes"), std::string::npos);
  EXPECT_NE(message({401, 429}, {429}).find("cooldown_codes"), std::string::npos);
  std::vector<int> sixteen;
  for (int i = 0; i < 16; ++i) {
    sixteen.push_back(500 + i);
  }
  EXPECT_EQ(message(sixteen, {}), "ok");
  sixteen.push_back(599);
  EXPECT_NE(message(sixteen, {}).find("immediate_codes"), std::string::npos);
}

TEST(BanPolicy, BanSecondsDoublesPerLevelUpToTheCap) {
  BanPolicy p;
  EXPECT_EQ(p.BanSeconds(0), 60);
  EXPECT_EQ(p.BanSeconds(1), 120);
  EXPECT_EQ(p.BanSeconds(5), 1920);
  EXPECT_EQ(p.BanSeconds(6), 3600);  // 3840 capped
  EXPECT_EQ(p.BanSeconds(255), 3600);
  EXPECT_EQ(p.BanSeconds(~0u), 3600);
}

TEST(BanPolicy, ClassifyStatusLeavesEveryOtherStatusToTheOperator) {
  EXPECT_EQ(ClassifyStatus("active"), KeyStatus::kActive);
  EXPECT_EQ(ClassifyStatus("auto_disabled"), KeyStatus::kAutoDisabled);
  for (const char* s : {"manual_disabled", "suspended", "", "Active", "disabled"}) {
    EXPECT_EQ(ClassifyStatus(s), KeyStatus::kOther) << s;
  }
}

// --- Rate ---

}  // namespace
}  // namespace tally::core
