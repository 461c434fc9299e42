// BanKeeper: the ban rule at the flush, written into the flush's batch, kept across a reopen,
// and followed by admin writes (persistence/ban_keeper.h).
#include "persistence/ban_keeper.h"

#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <string>
#include <vector>

#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'800'000'000 * kSecond;

class BanKeeperTest : public StoreFixture<> {
 protected:
  void SetUp() override {
    clock_.Set(kT0);
    opts_.clock = &clock_;
    Open();
  }
  void TearDown() override {
    store_.reset();
    keeper_.reset();
  }
  void Open() {
    store_.reset();
    keeper_ = std::make_unique<BanKeeper>(core::BanPolicy{}, &codes_);
    Reopen();
    ASSERT_TRUE(store_->AddKeyObserver(keeper_.get()).ok());
    store_->AddParticipant(keeper_.get());
  }
  void Flush(std::vector<core::KeyDelta> deltas) {
    auto r = store_->ApplyFlush(&deltas);
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  ApiKey Key(uint64_t id) {
    auto k = store_->GetKey(id);
    EXPECT_TRUE(k.ok());
    return k.ok() ? *k : ApiKey{};
  }

  std::unique_ptr<rocksdb::Env> mem_;  // set by a test; TearDown closes the store first
  core::FailureCodes codes_;
  std::unique_ptr<BanKeeper> keeper_;
};

TEST_F(BanKeeperTest, RateBanIsWrittenIntoTheRecordWithItsReasonAndDeadline) {
  ASSERT_TRUE(store_->CreateGroup(TestGroup(1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(2, 1)).ok());
  Flush({{1, 10, 9}});  // 19 requests: below min_requests, run broken by successes
  EXPECT_EQ(Key(1).status, "active");
  clock_.Advance(kSecond);
  Flush({{1, 0, 1}});  // 20 requests, 10 failures: rate 0.5
  ApiKey k = Key(1);
  EXPECT_EQ(k.status, "auto_disabled");
  EXPECT_EQ(k.ban_reason, "failure_rate 0.50 (10/20) over 60s");
  ASSERT_TRUE(k.ban_until.has_value());
  EXPECT_EQ(k.ban_until->unix_seconds, kT0 / kSecond + 1 + 60);
  EXPECT_EQ(k.totals.failure, 10);  // the counts were applied too
  EXPECT_EQ(keeper_->stats().banned_now, 1u);
  EXPECT_EQ(keeper_->stats().bans[static_cast<size_t>(core::BanRule::kFailureRate)], 1u);
  std::vector<BanEvent> events = keeper_->EventsAfter(0, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, BanEvent::Type::kBan);
  EXPECT_EQ(events[0].key, 1u);
  EXPECT_EQ(events[0].reason, k.ban_reason);
}

// A key that goes silent gives its window's ring back once the window has passed, within
// kSweepParts flushes of other keys, and gets a new one when it is heard from again.
TEST_F(BanKeeperTest, ASilentKeyGivesItsWindowBackAfterTheWindow) {
  ASSERT_TRUE(store_->CreateGroup(TestGroup(1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(2, 1)).ok());
  Flush({{1, 5, 1}, {2, 5, 1}});
  EXPECT_TRUE(keeper_->HoldsWindow(1));
  clock_.Advance(59 * kSecond);  // second 0 is still in the window ending now
  for (size_t i = 0; i < BanKeeper::kSweepParts; ++i) {
    Flush({{2, 1, 0}});
  }
  EXPECT_TRUE(keeper_->HoldsWindow(1));
  clock_.Advance(kSecond);  // now it is not
  for (size_t i = 0; i < BanKeeper::kSweepParts; ++i) {
    Flush({{2, 1, 0}});
  }
  EXPECT_FALSE(keeper_->HoldsWindow(1));
  EXPECT_TRUE(keeper_->HoldsWindow(2));  // heard from in this window
  Flush({{1, 0, 1}});
  EXPECT_TRUE(keeper_->HoldsWindow(1));
  EXPECT_EQ(Key(1).status, "active");  // 1 failure in the window: no ban
}

TEST_F(BanKeeperTest, ImmediateCodeFromTheChannelBansAtOnce) {
  ASSERT_TRUE(store_->CreateGroup(TestGroup(1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(2, 1)).ok());
  const int wanted[] = {401};
  codes_.SetCodes(wanted);
  codes_.Add(1, 401, 1);
  Flush({{1, 0, 1}});
  EXPECT_EQ(Key(1).status, "auto_disabled");
  EXPECT_EQ(Key(1).ban_reason, "code 401");
}

TEST_F(BanKeeperTest, KeepOneWithholdsTheLastActiveKeyOfAGroup) {
  ASSERT_TRUE(store_->CreateGroup(TestGroup(1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 1)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(2, 1)).ok());
  Flush({{1, 0, 10}, {2, 0, 10}});  // both runs reach 10 in the same flush
  EXPECT_EQ(Key(1).status, "auto_disabled");
  EXPECT_EQ(Key(2).status, "active");
  EXPECT_EQ(keeper_->stats().withheld, 1u);
}

TEST_F(BanKeeperTest, ReleasedAtTheDeadlineAndBackoffDoublesAfterAHalfOpenFailure) {
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 0)).ok());  // unassigned: no keep-one
  Flush({{1, 0, 10}});
  ASSERT_EQ(Key(1).status, "auto_disabled");
  clock_.Advance(60 * kSecond);
  Flush({});
  EXPECT_EQ(Key(1).status, "active");
  EXPECT_FALSE(Key(1).ban_until.has_value());
  EXPECT_EQ(Key(1).ban_reason, "");
  clock_.Advance(kSecond);
  Flush({{1, 0, 10}});
  ApiKey k = Key(1);
  EXPECT_EQ(k.status, "auto_disabled");
  EXPECT_EQ(k.ban_until->unix_seconds, (kT0 + 61 * kSecond) / kSecond + 120);  // doubled
  std::vector<BanEvent> events = keeper_->EventsAfter(0, 10);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].type, BanEvent::Type::kUnban);
  EXPECT_EQ(events[1].rule, "expired");
  EXPECT_EQ(events[2].backoff_level, 1);
}

TEST_F(BanKeeperTest, ReopenKeepsBansDeadlinesBackoffPolicyAndEvents) {
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 0)).ok());
  core::BanPolicy p;
  p.consecutive_failures = 5;
  ASSERT_TRUE(keeper_->SetPolicy(*store_, p, "{}").ok());
  Flush({{1, 0, 5}});
  clock_.Advance(60 * kSecond);
  Flush({});  // released, half-open
  ASSERT_EQ(Key(1).status, "active");
  Open();
  EXPECT_EQ(keeper_->policy().consecutive_failures, 5);
  EXPECT_EQ(keeper_->last_event_id(), 3u);  // policy, ban, unban
  clock_.Advance(kSecond);
  Flush({{1, 0, 5}});  // half-open survived the reopen: the next ban doubles
  ApiKey k = Key(1);
  EXPECT_EQ(k.status, "auto_disabled");
  EXPECT_EQ(k.ban_until->unix_seconds, (kT0 + 61 * kSecond) / kSecond + 120);
  Open();
  EXPECT_EQ(keeper_->stats().banned_now, 1u);
  clock_.Advance(120 * kSecond);
  Flush({});  // the deadline was reloaded into the index
  EXPECT_EQ(Key(1).status, "active");
}

TEST_F(BanKeeperTest, OperatorStatusWinsAndUnbanResetsTheBackoff) {
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 0)).ok());
  Flush({{1, 0, 10}});
  ApiKey k = Key(1);
  ASSERT_EQ(k.status, "auto_disabled");
  k.status = "active";  // what POST .../unban writes
  k.ban_reason.clear();
  k.ban_until.reset();
  ASSERT_TRUE(store_->PutKey(k).ok());
  EXPECT_EQ(keeper_->stats().banned_now, 0u);
  std::vector<BanEvent> events = keeper_->EventsAfter(1, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, BanEvent::Type::kUnban);
  EXPECT_EQ(events[0].rule, "operator");
  // A manual_disabled key is never judged.
  k.status = "manual_disabled";
  ASSERT_TRUE(store_->PutKey(k).ok());
  Flush({{1, 0, 50}});
  EXPECT_EQ(Key(1).status, "manual_disabled");
}

TEST_F(BanKeeperTest, EventsResumeAfterAnIdAndABadPolicyWritesNothing) {
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 0)).ok());
  core::BanPolicy p;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(keeper_->SetPolicy(*store_, p, std::to_string(i)).ok());
  }
  EXPECT_EQ(keeper_->EventsAfter(0, 100).size(), 3u);
  EXPECT_EQ(keeper_->EventsAfter(2, 100).size(), 1u);
  EXPECT_EQ(keeper_->EventsAfter(2, 100)[0].reason, "2");
  core::BanPolicy bad;
  bad.window_seconds = 0;
  EXPECT_EQ(keeper_->SetPolicy(*store_, bad, "{}").code(), core::Status::Code::kInvalidArgument);
  EXPECT_EQ(keeper_->last_event_id(), 3u);
}

// The log keeps the last 10,000 events, in memory and on disk. An in-memory Env makes the
// 10,005 synced writes quick.
TEST_F(BanKeeperTest, EventLogKeepsTheLastTenThousandAcrossAReopen) {
  store_.reset();
  mem_.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  opts_.env = mem_.get();
  Open();
  core::BanPolicy p;
  const uint64_t n = BanKeeper::kEventLogSize + 5;
  for (uint64_t i = 1; i <= n; ++i) {
    ASSERT_TRUE(keeper_->SetPolicy(*store_, p, std::to_string(i)).ok());
  }
  EXPECT_EQ(keeper_->first_event_id(), 6u);
  EXPECT_EQ(keeper_->last_event_id(), n);
  std::vector<BanEvent> from_start = keeper_->EventsAfter(0, 3);
  ASSERT_EQ(from_start.size(), 3u);
  EXPECT_EQ(from_start[0].id, 6u);  // older ones are gone: the stream starts at the oldest held
  EXPECT_EQ(keeper_->EventsAfter(n - 2, 10).size(), 2u);
  Open();  // the stored log holds exactly the same events
  EXPECT_EQ(keeper_->first_event_id(), 6u);
  EXPECT_EQ(keeper_->last_event_id(), n);
  EXPECT_EQ(keeper_->EventsAfter(0, 1)[0].reason, "6");
  ASSERT_TRUE(keeper_->SetPolicy(*store_, p, "next").ok());
  EXPECT_EQ(keeper_->last_event_id(), n + 1);  // ids go on after a reopen
  EXPECT_EQ(keeper_->first_event_id(), 7u);
}

TEST(BanCodec, RoundTripsAndRefusesUnknownVersionsAndTruncation) {
  uint8_t level = 0;
  bool half_open = false;
  bool cooling = false;
  ASSERT_TRUE(DecodeBanState(EncodeBanState(5, true, false), &level, &half_open, &cooling).ok());
  EXPECT_EQ(level, 5);
  EXPECT_TRUE(half_open);
  EXPECT_FALSE(cooling);
  std::string state = EncodeBanState(1, false, true);
  state[0] = 9;
  EXPECT_FALSE(DecodeBanState(state, &level, &half_open, &cooling).ok());

  BanEvent e;
  e.id = 77;
  e.type = BanEvent::Type::kBan;
  e.at = kT0;
  e.key = 42;
  e.group_id = 3;
  e.ban_until_ns = kT0 + 60 * kSecond;
  e.backoff_level = 2;
  e.rule = "failure_rate";
  e.reason = "failure_rate 0.63 (38/60) over 60s";
  BanEvent back;
  ASSERT_TRUE(DecodeBanEvent(EncodeBanEvent(e), &back).ok());
  EXPECT_EQ(back, e);
  std::string cut = EncodeBanEvent(e);
  cut.pop_back();
  EXPECT_FALSE(DecodeBanEvent(cut, &back).ok());

  core::BanPolicy p;
  p.window_seconds = 120;
  p.failure_rate = 0.25;
  p.immediate_codes = {401};
  p.cooldown_codes = {};
  p.keep_one_active = false;
  core::BanPolicy q;
  ASSERT_TRUE(DecodeBanPolicy(EncodeBanPolicy(p), &q).ok());
  EXPECT_EQ(q, p);
  p.min_requests = 0;  // out of range: a stored policy is validated too
  EXPECT_EQ(DecodeBanPolicy(EncodeBanPolicy(p), &q).code(), core::Status::Code::kCorruption);
}

}  // namespace
}  // namespace tally::persistence
