// The automatic-ban rule (core/ban_policy.h), with an injected clock: every branch, the
// boundaries of each threshold, the sliding window, half-open, backoff, keep-one (Validate() and
// the settings: ban_policy_validate_test.cc).
#include "core/ban_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace tally::core {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kT0 = int64_t{1'800'000'000} * kSec;  // a second boundary in 2027

// One key, its group and the policy; Feed() is one flush at kT0 + `at` seconds.
struct Key {
  BanPolicy policy;
  KeyBanState state;
  GroupActive group{10};

  Decision Feed(int64_t at, uint64_t successes, uint64_t failures,
                std::vector<CodeCount> codes = {}) {
    KeyInput in;
    in.successes = successes;
    in.failures = failures;
    in.codes = codes;
    return Evaluate(policy, kT0 + at * kSec, in, state, group);
  }
  // A flush for the key while banned until `until_ns` (deltas ignored).
  Decision FeedBanned(int64_t at, int64_t until_ns, uint64_t failures = 0) {
    KeyInput in;
    in.failures = failures;
    in.status = KeyStatus::kAutoDisabled;
    in.ban_until_ns = until_ns;
    return Evaluate(policy, kT0 + at * kSec, in, state, group);
  }
  // Bans the key with a run at `at`, then releases it at its deadline: half-open after.
  int64_t BanAndRelease(int64_t at) {
    Decision ban = Feed(at, 0, static_cast<uint64_t>(policy.consecutive_failures));
    EXPECT_EQ(ban.verdict, Verdict::kBan);
    const int64_t release_at = (ban.ban_until_ns - kT0) / kSec;
    EXPECT_EQ(FeedBanned(release_at, ban.ban_until_ns).verdict, Verdict::kUnban);
    EXPECT_TRUE(state.half_open());
    return release_at;
  }
};

// --- Validate() and the small helpers ---

TEST(BanRate, ExactlyMinRequestsAtExactlyTheRateBans) {
  Key k;
  Decision d = k.Feed(0, 10, 10);  // one delta with a success: no run
  EXPECT_EQ(d.verdict, Verdict::kBan);
  EXPECT_EQ(d.rule, BanRule::kFailureRate);
  EXPECT_EQ(d.reason, "failure_rate 0.50 (10/20) over 60s");
  EXPECT_EQ(d.ban_until_ns, kT0 + 60 * kSec);
  EXPECT_EQ(d.backoff_level, 0);
  EXPECT_EQ(k.group.active(), 9u);
}

TEST(BanRate, OneRequestBelowMinRequestsDoesNotBan) {
  Key k;
  EXPECT_EQ(k.Feed(0, 9, 10).verdict, Verdict::kNone);  // 19 requests, rate 0.53
  EXPECT_EQ(k.group.active(), 10u);
  EXPECT_EQ(k.Feed(1, 0, 1).verdict, Verdict::kBan);  // the 20th
}

TEST(BanRate, OneFailureBelowTheRateDoesNotBan) {
  Key k;
  EXPECT_EQ(k.Feed(0, 11, 9).verdict, Verdict::kNone);  // 20 requests, rate 0.45
  EXPECT_EQ(k.Feed(1, 1, 0).verdict, Verdict::kNone);
}

TEST(BanRate, ARateWithoutAnExactBinaryValueStillBansAtExactlyIt) {
  Key k;
  k.policy.failure_rate = 0.3;
  EXPECT_EQ(k.Feed(0, 15, 5).verdict, Verdict::kNone);  // 0.25
  Key exact;
  exact.policy.failure_rate = 0.3;
  EXPECT_EQ(exact.Feed(0, 14, 6).verdict, Verdict::kBan);  // 6/20 == 0.3
}

TEST(BanRate, ReasonGivesTheRateTheCountsAndTheWindow) {
  Key k;
  Decision d = k.Feed(0, 22, 38);
  EXPECT_EQ(d.reason, "failure_rate 0.63 (38/60) over 60s");
  EXPECT_EQ(BanRuleName(d.rule), "failure_rate");
}

TEST(BanWindow, SecondsOlderThanTheWindowFallOut) {
  Key k;
  k.policy.consecutive_failures = 1'000'000'000;        // the rate alone
  EXPECT_EQ(k.Feed(0, 0, 15).verdict, Verdict::kNone);  // 15 < min_requests
  EXPECT_EQ(k.Feed(59, 0, 4).verdict, Verdict::kNone);  // 19, second 0 still in
  EXPECT_EQ(k.state.window_failures(), 19u);
  EXPECT_EQ(k.Feed(60, 0, 1).verdict, Verdict::kNone);  // second 0 left: 5
  EXPECT_EQ(k.state.window_failures(), 5u);
  Key k2;
  k2.policy.consecutive_failures = 1'000'000'000;
  EXPECT_EQ(k2.Feed(0, 0, 15).verdict, Verdict::kNone);
  EXPECT_EQ(k2.Feed(59, 0, 5).verdict, Verdict::kBan);  // 20 within the last 60 s
}

TEST(BanWindow, OldSuccessesFallOutAndTheRateRises) {
  Key k;
  EXPECT_EQ(k.Feed(0, 30, 0).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(30, 15, 9).verdict, Verdict::kNone);  // 9/54
  EXPECT_EQ(k.Feed(70, 1, 9).verdict, Verdict::kBan);    // second 0 gone: 18/34
}

TEST(BanWindow, AGapLongerThanTheWindowEmptiesItAndTrimFreesIt) {
  Key k;
  EXPECT_EQ(k.Feed(0, 10, 9).verdict, Verdict::kNone);
  k.state.Trim(k.policy, kT0 + 59 * kSec);
  EXPECT_EQ(k.state.window_failures(), 9u);  // second 0 still in the window
  k.state.Trim(k.policy, kT0 + 60 * kSec);
  EXPECT_EQ(k.state.window_failures(), 0u);
  EXPECT_EQ(k.Feed(500, 1, 9).verdict, Verdict::kNone);  // only this second: 10 requests
  EXPECT_EQ(k.state.window_successes(), 1u);
}

TEST(BanWindow, AChangedWindowLengthStartsTheWindowAgain) {
  Key k;
  EXPECT_EQ(k.Feed(0, 9, 10).verdict, Verdict::kNone);
  k.policy.window_seconds = 30;
  EXPECT_EQ(k.Feed(1, 0, 1).verdict, Verdict::kNone);  // 1, not 20
  EXPECT_EQ(k.state.window_failures(), 1u);
}

TEST(BanWindow, AClockSteppingBackCountsInTheNewestSecond) {
  Key k;
  EXPECT_EQ(k.Feed(10, 9, 5).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(3, 0, 6).verdict, Verdict::kBan);  // 20 requests, 11 failures
}

TEST(BanWindow, ASecondSaturatesInsteadOfWrapping) {
  Key k;
  k.policy.consecutive_failures = 1'000'000'000;
  EXPECT_EQ(k.Feed(0, uint64_t{1} << 40, 3).verdict, Verdict::kNone);
  EXPECT_EQ(k.state.window_successes(), uint64_t{0xffff'ffff});
  EXPECT_EQ(k.state.window_failures(), 3u);
}

// The ring keeps 16-bit counts until a second needs more, then 32-bit ones (ban_policy.h):
// a second past 65,535 counts whole, and the seconds before the switch keep theirs.
TEST(BanWindow, ASecondPast16BitsCountsWholeAndTheOthersKeepTheirs) {
  Key k;
  k.policy.consecutive_failures = 1'000'000'000;
  k.policy.min_requests = 1'000'000'000;
  EXPECT_EQ(k.Feed(0, 7, 3).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(1, 65'535, 65'535).verdict, Verdict::kNone);  // the most 16 bits hold
  EXPECT_EQ(k.state.window_successes(), 65'542u);
  EXPECT_EQ(k.state.window_failures(), 65'538u);
  EXPECT_EQ(k.Feed(2, 40'000, 2).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(2, 30'000, 70'000).verdict, Verdict::kNone);  // second 2: 70,000 / 70,002
  EXPECT_EQ(k.state.window_successes(), 135'542u);
  EXPECT_EQ(k.state.window_failures(), 135'540u);
  EXPECT_EQ(k.Feed(60, 1, 0).verdict, Verdict::kNone);  // second 0 leaves: 7 and 3
  EXPECT_EQ(k.state.window_successes(), 135'536u);
  EXPECT_EQ(k.state.window_failures(), 135'537u);
  EXPECT_EQ(k.Feed(61, 0, 0).verdict, Verdict::kNone);  // second 1 leaves
  EXPECT_EQ(k.state.window_successes(), 70'001u);
  EXPECT_EQ(k.state.window_failures(), 70'002u);
  EXPECT_EQ(k.Feed(62, 0, 0).verdict, Verdict::kNone);  // second 2 leaves
  EXPECT_EQ(k.state.window_successes(), 1u);
  EXPECT_EQ(k.state.window_failures(), 0u);
  EXPECT_EQ(k.Feed(200, 5, 4).verdict, Verdict::kNone);  // a gap: every second ages out
  EXPECT_EQ(k.state.window_successes(), 5u);
  EXPECT_EQ(k.state.window_failures(), 4u);
}

// --- Run ---

TEST(BanRun, ConsecutiveFailuresBanBelowMinRequests) {
  Key k;
  for (int i = 0; i < 9; ++i) {
    ASSERT_EQ(k.Feed(i, 0, 1).verdict, Verdict::kNone) << i;
  }
  Decision d = k.Feed(9, 0, 1);
  EXPECT_EQ(d.verdict, Verdict::kBan);
  EXPECT_EQ(d.rule, BanRule::kRun);
  EXPECT_EQ(d.reason, "consecutive_failures 10");
}

TEST(BanRun, ASuccessEndsTheRunWithTheFailuresOfItsSecond) {
  Key k;
  k.policy.min_requests = 1000;  // the run alone
  EXPECT_EQ(k.Feed(0, 0, 8).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(1, 1, 5).verdict, Verdict::kNone);  // 8 + 5 failures, but a success
  EXPECT_EQ(k.state.run(), 0u);
  EXPECT_EQ(k.Feed(1, 0, 4).verdict, Verdict::kNone);  // same second as the success
  EXPECT_EQ(k.state.run(), 0u);
  EXPECT_EQ(k.Feed(2, 0, 9).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(3, 0, 1).verdict, Verdict::kBan);
}

TEST(BanRun, FailuresOlderThanTheWindowLeaveTheRun) {
  Key k;
  EXPECT_EQ(k.Feed(0, 0, 5).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(30, 0, 4).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(60, 0, 1).verdict, Verdict::kNone);  // second 0 left: 4 + 1
  EXPECT_EQ(k.state.run(), 5u);
  EXPECT_EQ(k.Feed(61, 0, 4).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(62, 0, 1).verdict, Verdict::kBan);
}

TEST(BanRun, AGapOfAWholeWindowEmptiesTheRun) {
  Key k;
  EXPECT_EQ(k.Feed(0, 0, 9).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(60, 0, 1).verdict, Verdict::kNone);  // the 9 aged out at once
  EXPECT_EQ(k.state.run(), 1u);
  EXPECT_EQ(k.Feed(61, 0, 9).verdict, Verdict::kBan);
}

TEST(BanRun, TheFailuresOfASuccessSecondNeverJoinTheRun) {
  Key k;
  EXPECT_EQ(k.Feed(0, 1, 5).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(1, 0, 5).verdict, Verdict::kNone);
  EXPECT_EQ(k.Feed(60, 0, 4).verdict, Verdict::kNone);  // second 0 left the window
  EXPECT_EQ(k.state.run(), 9u);
  EXPECT_EQ(k.Feed(60, 0, 1).verdict, Verdict::kBan);
}

// --- Codes ---

TEST(BanCodes, AnImmediateCodeBansAtOnce) {
  Key k;
  Decision d = k.Feed(0, 50, 1, {{401, 1}});
  EXPECT_EQ(d.verdict, Verdict::kBan);
  EXPECT_EQ(d.rule, BanRule::kImmediateCode);
  EXPECT_EQ(d.reason, "code 401");
  EXPECT_EQ(d.ban_until_ns, kT0 + 60 * kSec);
}

TEST(BanCodes, OtherCodesAndZeroCountsDoNothing) {
  Key k;
  EXPECT_EQ(k.Feed(0, 50, 2, {{500, 1}, {403, 0}, {429, 0}}).verdict, Verdict::kNone);
}

TEST(BanCodes, AnImmediateCodeOutranksACooldownCode) {
  Key k;
  Decision d = k.Feed(0, 0, 2, {{429, 1}, {403, 1}});
  EXPECT_EQ(d.rule, BanRule::kImmediateCode);
  EXPECT_EQ(d.reason, "code 403");
}

TEST(BanCodes, ACooldownCodeCoolsForCooldownSecondsOverTheRate) {
  Key k;
  Decision d = k.Feed(0, 0, 30, {{429, 30}});  // also over the rate and the run
  EXPECT_EQ(d.verdict, Verdict::kBan);
  EXPECT_EQ(d.rule, BanRule::kCooldownCode);
  EXPECT_EQ(d.reason, "code 429 cooldown");
  EXPECT_EQ(d.ban_until_ns, kT0 + 60 * kSec);
  EXPECT_TRUE(k.state.cooling());
  EXPECT_EQ(k.FeedBanned(60, d.ban_until_ns).verdict, Verdict::kUnban);
  EXPECT_FALSE(k.state.half_open());  // a cooldown is no verdict on the key
  EXPECT_FALSE(k.state.cooling());
}

TEST(BanCodes, ACooldownNeitherGrowsNorResetsTheBackoffOfAHalfOpenKey) {
  Key k;
  k.state = KeyBanState(3, /*half_open=*/true, /*cooling=*/false);
  Decision cool = k.Feed(0, 0, 1, {{429, 1}});
  EXPECT_EQ(cool.verdict, Verdict::kBan);
  EXPECT_EQ(cool.ban_until_ns, kT0 + 60 * kSec);  // cooldown_seconds, not 480
  EXPECT_EQ(cool.backoff_level, 3);
  EXPECT_EQ(k.FeedBanned(60, cool.ban_until_ns).verdict, Verdict::kUnban);
  EXPECT_TRUE(k.state.half_open());
  Decision fail = k.Feed(61, 0, 10);
  EXPECT_EQ(fail.backoff_level, 4);
  EXPECT_EQ(fail.ban_until_ns, kT0 + (61 + 960) * kSec);
}

// --- Release, half-open and backoff ---

TEST(BanRelease, ReleasedExactlyAtBanUntilAndNotBefore) {
  Key k;
  const int64_t until = kT0 + 60 * kSec;
  EXPECT_EQ(k.FeedBanned(0, until, 5).verdict, Verdict::kNone);
  KeyInput in;
  in.status = KeyStatus::kAutoDisabled;
  in.ban_until_ns = until;
  EXPECT_EQ(Evaluate(k.policy, until - 1, in, k.state, k.group).verdict, Verdict::kNone);
  EXPECT_EQ(k.group.active(), 10u);
  Decision d = Evaluate(k.policy, until, in, k.state, k.group);
  EXPECT_EQ(d.verdict, Verdict::kUnban);
  EXPECT_EQ(k.group.active(), 11u);
  EXPECT_TRUE(k.state.half_open());
  EXPECT_EQ(k.state.window_failures(), 0u);  // outcomes of the banned time are not kept
}

TEST(BanBackoff, EachHalfOpenFailureDoublesTheBanUpToTheCap) {
  Key k;
  int64_t at = k.BanAndRelease(0);  // level 0: 60 s
  const int64_t expected[] = {120, 240, 480, 960, 1920, 3600, 3600};
  for (int64_t seconds : expected) {
    Decision d = k.Feed(at, 0, 10);
    ASSERT_EQ(d.verdict, Verdict::kBan);
    EXPECT_EQ(d.ban_until_ns, kT0 + (at + seconds) * kSec) << seconds;
    at = (d.ban_until_ns - kT0) / kSec;
    ASSERT_EQ(k.FeedBanned(at, d.ban_until_ns).verdict, Verdict::kUnban);
  }
  EXPECT_EQ(k.state.backoff_level(), 6);  // stops growing at the cap
}

TEST(BanBackoff, ABanOfAKeyThatIsNotHalfOpenKeepsItsLevel) {
  Key k;
  k.state = KeyBanState(3, /*half_open=*/false, /*cooling=*/false);
  Decision d = k.Feed(0, 0, 10);
  EXPECT_EQ(d.backoff_level, 3);
  EXPECT_EQ(d.ban_until_ns, kT0 + 480 * kSec);
}

TEST(BanHalfOpen, PassingAtMinRequestsUnderTheRateResetsTheBackoff) {
  Key k;
  int64_t at = k.BanAndRelease(0);
  Decision again = k.Feed(at, 0, 10);
  ASSERT_EQ(again.backoff_level, 1);
  at = (again.ban_until_ns - kT0) / kSec;
  ASSERT_EQ(k.FeedBanned(at, again.ban_until_ns).verdict, Verdict::kUnban);
  EXPECT_EQ(k.Feed(at, 10, 9).verdict, Verdict::kNone);  // 19: not yet judged
  EXPECT_TRUE(k.state.half_open());
  Decision pass = k.Feed(at + 1, 1, 0);  // 20, rate 0.45
  EXPECT_EQ(pass.verdict, Verdict::kBackoffReset);
  EXPECT_EQ(pass.backoff_level, 0);
  EXPECT_FALSE(k.state.half_open());
  Decision next = k.Feed(at + 2, 0, 11);  // a later ban starts from the base again
  EXPECT_EQ(next.verdict, Verdict::kBan);
  EXPECT_EQ(next.ban_until_ns, kT0 + (at + 2 + 60) * kSec);
}

TEST(BanHalfOpen, FailingAtExactlyTheRateIsAFailureNotAPass) {
  Key k;
  const int64_t at = k.BanAndRelease(0);
  Decision d = k.Feed(at, 10, 10);
  EXPECT_EQ(d.verdict, Verdict::kBan);
  EXPECT_EQ(d.backoff_level, 1);
  EXPECT_EQ(d.ban_until_ns, kT0 + (at + 120) * kSec);
}

// --- Never touched ---

TEST(BanUntouched, OperatorStatusesAreNeverJudged) {
  for (KeyStatus st : {KeyStatus::kOther, KeyStatus::kAutoDisabled}) {  // the latter: no deadline
    Key k;
    k.state = KeyBanState(2, true, false);
    KeyInput in;
    in.failures = 100;
    const CodeCount codes[] = {{401, 100}};
    in.codes = codes;
    in.status = st;
    Decision d = Evaluate(k.policy, kT0, in, k.state, k.group);
    EXPECT_EQ(d.verdict, Verdict::kNone);
    EXPECT_EQ(d.backoff_level, 2);
    EXPECT_EQ(k.state.window_failures(), 0u);
    EXPECT_EQ(k.group.active(), 10u);
  }
}

TEST(BanUntouched, AutoBanFalseIsNeverBanned) {
  Key k;
  KeyInput in;
  in.failures = 100;
  const CodeCount codes[] = {{401, 1}, {429, 1}};
  in.codes = codes;
  in.auto_ban = false;
  EXPECT_EQ(Evaluate(k.policy, kT0, in, k.state, k.group).verdict, Verdict::kNone);
  EXPECT_EQ(k.state.window_failures(), 0u);
}

TEST(BanUntouched, AutoBanTurnedOffDuringABanStillEndsItAtItsDeadline) {
  Key k;
  KeyInput in;
  in.status = KeyStatus::kAutoDisabled;
  in.ban_until_ns = kT0;
  in.auto_ban = false;
  EXPECT_EQ(Evaluate(k.policy, kT0, in, k.state, k.group).verdict, Verdict::kUnban);
}

// --- Keep one ---

KeyInput Failing() {
  KeyInput in;
  in.failures = 10;
  return in;
}

TEST(BanKeepOne, TwoKeysOfATwoKeyGroupFailingInOneFlushBanOnlyOne) {
  BanPolicy policy;
  KeyBanState a, b;
  GroupActive group(2);
  Decision da = Evaluate(policy, kT0, Failing(), a, group);
  Decision db = Evaluate(policy, kT0, Failing(), b, group);
  EXPECT_EQ(da.verdict, Verdict::kBan);
  EXPECT_EQ(db.verdict, Verdict::kWithheld);
  EXPECT_EQ(db.rule, BanRule::kRun);
  EXPECT_EQ(db.reason, "consecutive_failures 10");
  EXPECT_EQ(group.active(), 1u);
  // Still failing at the next flush: still withheld, the window kept.
  GroupActive next(1);
  EXPECT_EQ(Evaluate(policy, kT0 + kSec, Failing(), b, next).verdict, Verdict::kWithheld);
  EXPECT_EQ(b.run(), 20u);
}

TEST(BanKeepOne, ThreeFailingKeysLeaveOneActive) {
  BanPolicy policy;
  KeyBanState s[3];
  GroupActive group(3);
  int bans = 0;
  int withheld = 0;
  for (KeyBanState& st : s) {
    Verdict v = Evaluate(policy, kT0, Failing(), st, group).verdict;
    bans += v == Verdict::kBan;
    withheld += v == Verdict::kWithheld;
  }
  EXPECT_EQ(bans, 2);
  EXPECT_EQ(withheld, 1);
  EXPECT_EQ(group.active(), 1u);
}

TEST(BanKeepOne, AKeyReleasedFirstInTheFlushLetsTheOtherBeBanned) {
  BanPolicy policy;
  KeyBanState returning, failing;
  GroupActive group(1);  // only `failing` is active
  KeyInput expired;
  expired.status = KeyStatus::kAutoDisabled;
  expired.ban_until_ns = kT0;
  EXPECT_EQ(Evaluate(policy, kT0, expired, returning, group).verdict, Verdict::kUnban);
  EXPECT_EQ(Evaluate(policy, kT0, Failing(), failing, group).verdict, Verdict::kBan);
  EXPECT_EQ(group.active(), 1u);
}

TEST(BanKeepOne, WithheldForTheCooldownAndImmediateCodesToo) {
  BanPolicy policy;
  for (int code : {401, 429}) {
    KeyBanState st;
    GroupActive group(1);
    KeyInput in;
    in.failures = 1;
    const CodeCount codes[] = {{code, 1}};
    in.codes = codes;
    EXPECT_EQ(Evaluate(policy, kT0, in, st, group).verdict, Verdict::kWithheld) << code;
  }
}

TEST(BanKeepOne, OffLetsTheLastKeyGo) {
  BanPolicy policy;
  policy.keep_one_active = false;
  KeyBanState a, b;
  GroupActive group(2);
  EXPECT_EQ(Evaluate(policy, kT0, Failing(), a, group).verdict, Verdict::kBan);
  EXPECT_EQ(Evaluate(policy, kT0, Failing(), b, group).verdict, Verdict::kBan);
  EXPECT_EQ(group.active(), 0u);
}

}  // namespace
}  // namespace tally::core
