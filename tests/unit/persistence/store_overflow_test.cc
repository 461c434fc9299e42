// The overflow rule (README "Exactness"): no total ever passes 2^63-1. Traffic flushes drop
// the delta of a key that does not fit and count it; all-or-nothing flushes (the internal
// flush) are refused whole. Also the internal flush's bound on unknown keys.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <limits>

#include "persistence/record_codec.h"
#include "persistence/store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;

constexpr uint64_t kMax = core::kMaxId;  // 2^63-1

class StoreOverflow : public StoreTest {
 protected:
  void SetUp() override { Reopen(); }
  core::StatusOr<FlushResult> Flush(std::vector<core::KeyDelta> deltas, FlushRules rules = {}) {
    return store_->ApplyFlush(&deltas, rules);
  }
  void ExpectVerified() {
    Status v = store_->Verify();
    EXPECT_TRUE(v.ok()) << v.message();
  }
};

TEST_F(StoreOverflow, TrafficReachesExactlyTheMaximumThenOneMoreIsDroppedAndCounted) {
  ASSERT_TRUE(Flush({{1, kMax - 3, 2}}).ok());
  auto at_max = Flush({{1, 0, 1}});
  ASSERT_TRUE(at_max.ok()) << at_max.status().message();
  EXPECT_EQ(at_max->dropped_overflow, 0u);
  EXPECT_EQ(store_->GetKey(1)->totals.total, static_cast<int64_t>(kMax));

  auto past = Flush({{1, 1, 0}});
  ASSERT_TRUE(past.ok()) << past.status().message();
  EXPECT_EQ(past->dropped_overflow, 1u);
  EXPECT_EQ(past->keys_updated, 0u);
  core::Totals t = store_->GetKey(1)->totals;
  EXPECT_EQ(t.total, static_cast<int64_t>(kMax));
  EXPECT_EQ(t.success, static_cast<int64_t>(kMax - 3));
  EXPECT_EQ(t.failure, 3);
  EXPECT_EQ(store_->Summary(), t);
  ExpectVerified();
  Reopen();
  EXPECT_EQ(store_->Summary(), t);
  ExpectVerified();
}

TEST_F(StoreOverflow, TheSumOverEveryLiveKeyBoundsEachFlushAndOtherKeysStillApply) {
  ProviderGroup g;
  g.name = "g";
  g.type = "openai";
  g.base_url = "https://x";
  ASSERT_TRUE(store_->CreateGroup(g).ok());
  ApiKey k;
  k.id = 2;
  k.group_id = 1;
  k.api_key = "sk";
  ASSERT_TRUE(store_->PutKey(k).ok());
  // Key 1 (unassigned) and key 2 (group 1) each fit; their sum is at the maximum.
  ASSERT_TRUE(Flush({{1, kMax / 2, 0}, {2, 0, kMax - kMax / 2}}).ok());
  EXPECT_EQ(store_->Summary().total, static_cast<int64_t>(kMax));
  // Key 3 would take the whole past it: its delta is dropped; key 1's too; nothing else.
  auto r = Flush({{3, 1, 0}, {1, 2, 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped_overflow, 3u);
  EXPECT_EQ(r->keys_created, 0u);
  EXPECT_EQ(store_->GetKey(3).status().code(), Status::Code::kNotFound);
  // Deleting key 2 makes room: key 1 then fits, and the same flush is applied.
  ASSERT_TRUE(store_->DeleteKey(2).ok());
  r = Flush({{3, 1, 0}, {1, 2, 0}, {2, 5, 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped_overflow, 0u);
  EXPECT_EQ(r->dropped_deleted, 5u);
  EXPECT_EQ(store_->GetKey(1)->totals.total, static_cast<int64_t>(kMax / 2 + 2));
  EXPECT_EQ(store_->GetKey(3)->totals.total, 1);
  ExpectVerified();
}

TEST_F(StoreOverflow, AnAllOrNothingFlushIsRefusedWholeAtOneAboveTheMaximum) {
  const FlushRules whole{.all_or_nothing = true};
  ASSERT_TRUE(Flush({{1, kMax - 1, 0}}, whole).ok());
  const uint64_t epoch = store_->epoch();
  auto refused = Flush({{2, 1, 0}, {1, 0, 1}, {3, 1, 0}}, whole);  // one more than 2^63-1
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kRefused);
  EXPECT_EQ(store_->epoch(), epoch);
  EXPECT_EQ(store_->Summary().total, static_cast<int64_t>(kMax - 1));
  EXPECT_EQ(store_->GetKey(2).status().code(), Status::Code::kNotFound);
  auto exact = Flush({{1, 0, 1}}, whole);
  ASSERT_TRUE(exact.ok()) << exact.status().message();
  EXPECT_EQ(store_->Summary().total, static_cast<int64_t>(kMax));
  ExpectVerified();
}

TEST_F(StoreOverflow, MergedDeltasPastTwoToThe64SaturateAndAreDropped) {
  const uint64_t huge = std::numeric_limits<uint64_t>::max();
  auto r = Flush({{1, huge, 0}, {1, huge, huge}, {2, 4, 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped_overflow, huge);  // saturated count
  EXPECT_EQ(store_->Summary().total, 4);
  ExpectVerified();
}

// What a build without the overflow rule could leave: two keys that each fit, whose sum does
// not. Opening it is Corruption naming the problem, never totals that wrap.
TEST_F(StoreOverflow, StoredTotalsAddingUpPastTheMaximumAreCorruptionAtOpen) {
  store_.reset();
  {
    RawDb raw(db_dir());
    ASSERT_TRUE(raw.ok());
    for (uint64_t id : {1, 2}) {
      ApiKey k;
      k.id = id;
      core::Totals t;
      t.Add(int64_t{1} << 62, 0);
      std::string totals;
      EncodeTotals(t, &totals);
      ASSERT_TRUE(raw.Put(RawDb::kKeysCf, IdKey(id), EncodeKey(k)));
      ASSERT_TRUE(raw.Put(RawDb::kTotalsCf, IdKey(id), totals));
    }
  }
  auto s = Store::Open(dir_.Sub("db"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kCorruption);
  EXPECT_NE(s.status().message().find("2^63-1"), std::string::npos) << s.status().message();
}

TEST_F(StoreOverflow, AnAllOrNothingFlushCreatesUnknownKeysOnlyUpToTheBound) {
  const FlushRules bounded{.all_or_nothing = true, .max_keys = 3};
  ASSERT_TRUE(Flush({{1, 1, 0}}, bounded).ok());
  auto refused = Flush({{1, 1, 0}, {2, 1, 0}, {3, 1, 0}, {4, 1, 0}}, bounded);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kRefused);
  EXPECT_NE(refused.status().message().find("--max-keys"), std::string::npos);
  EXPECT_EQ(store_->Summary().total, 1);
  ASSERT_TRUE(Flush({{2, 1, 0}, {3, 1, 0}}, bounded).ok());  // exactly at the bound
  ASSERT_TRUE(store_->DeleteKey(3).ok());                    // deleted records still count
  EXPECT_EQ(Flush({{4, 1, 0}}, bounded).status().code(), Status::Code::kRefused);
  ASSERT_TRUE(Flush({{1, 1, 0}, {2, 1, 0}}, bounded).ok());  // known keys always apply
  EXPECT_EQ(store_->Summary().total, 4);
  ExpectVerified();
}

}  // namespace
}  // namespace tally::persistence
