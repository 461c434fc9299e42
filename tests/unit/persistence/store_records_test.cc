// Admin operations on groups and keys: their results, their errors, and the invariant.
#include <gtest/gtest.h>

#include "persistence/store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;

ProviderGroup Group(std::string name, uint64_t id = 0) {
  ProviderGroup g;
  g.id = id;
  g.name = std::move(name);
  g.type = "openai";
  g.base_url = "https://api.example.com";
  return g;
}

ApiKey Key(uint64_t group_id, uint64_t id = 0) {
  ApiKey k;
  k.id = id;
  k.group_id = group_id;
  k.api_key = std::string("sk-") + std::to_string(id);
  return k;
}

class StoreRecords : public StoreTest {
 protected:
  void SetUp() override {
    clock_.Set(1'000);
    opts_.clock = &clock_;
    Reopen();
  }
  void Flush(std::vector<core::KeyDelta> deltas) {
    auto r = store_->ApplyFlush(&deltas);
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  void ExpectValid() {
    Status s = store_->Verify();
    EXPECT_TRUE(s.ok()) << s.message();
  }
};

TEST_F(StoreRecords, CreateGroupAssignsIdsAndTimestamps) {
  auto a = store_->CreateGroup(Group("a"));
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->id, 1u);
  EXPECT_EQ(a->created_at, 1000);
  EXPECT_EQ(a->updated_at, 1000);
  EXPECT_EQ(a->status, "active");
  auto b = store_->CreateGroup(Group("b", 10));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->id, 10u);
  auto c = store_->CreateGroup(Group("c"));  // the lowest id never used
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id, 2u);
  Reopen();
  auto got = store_->GetGroup(10);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *b);
  ASSERT_EQ(store_->ListGroups().size(), 3u);
  EXPECT_EQ(store_->ListGroups()[1].name, "c");
}

TEST_F(StoreRecords, GroupErrors) {
  ASSERT_TRUE(store_->CreateGroup(Group("a", 1)).ok());
  EXPECT_EQ(store_->CreateGroup(Group("x", 1)).status().code(), Status::Code::kConflict);
  EXPECT_EQ(store_->CreateGroup(Group("a")).status().code(), Status::Code::kConflict);
  EXPECT_EQ(store_->PutGroup(Group("a", 2)).status().code(), Status::Code::kConflict);
  ProviderGroup no_name = Group("");
  EXPECT_EQ(store_->CreateGroup(no_name).status().code(), Status::Code::kInvalidArgument);
  ProviderGroup no_url = Group("u");
  no_url.base_url.clear();
  EXPECT_EQ(store_->CreateGroup(no_url).status().code(), Status::Code::kInvalidArgument);
  ProviderGroup no_type = Group("t");
  no_type.type.clear();
  EXPECT_EQ(store_->CreateGroup(no_type).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->PutGroup(Group("z", 0)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->CreateGroup(Group("big", uint64_t{1} << 63)).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->GetGroup(99).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->GetGroup(0).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->DeleteGroup(99).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->live_groups(), 1u);
}

TEST_F(StoreRecords, PutGroupKeepsCreatedAtAndTotals) {
  ASSERT_TRUE(store_->CreateGroup(Group("a", 1)).ok());
  ASSERT_TRUE(store_->CreateKey(Key(1, 5)).ok());
  Flush({{5, 3, 2}});
  clock_.Set(2000);
  ProviderGroup g = Group("renamed", 1);
  g.totals.Add(1000, 1000);  // ignored
  g.created_at = 7;          // ignored
  auto put = store_->PutGroup(g);
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->created_at, 1000);
  EXPECT_EQ(put->updated_at, 2000);
  EXPECT_EQ(put->totals.total, 5);
  EXPECT_EQ(put->totals.success, 3);
  // PUT on a free id creates.
  auto created = store_->PutGroup(Group("new", 7));
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->created_at, 2000);
  Reopen();
  EXPECT_EQ(store_->GetGroup(1)->name, "renamed");
  ExpectValid();
}

TEST_F(StoreRecords, DeleteGroupWithLiveKeysConflictsAndDeletedIdsStayTaken) {
  ASSERT_TRUE(store_->CreateGroup(Group("a", 1)).ok());
  ASSERT_TRUE(store_->CreateKey(Key(1, 5)).ok());
  EXPECT_EQ(store_->DeleteGroup(1).code(), Status::Code::kConflict);
  ASSERT_TRUE(store_->DeleteKey(5).ok());
  clock_.Set(3000);
  ASSERT_TRUE(store_->DeleteGroup(1).ok());
  EXPECT_EQ(store_->GetGroup(1).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->DeleteGroup(1).code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->CreateGroup(Group("b", 1)).status().code(), Status::Code::kConflict);
  EXPECT_EQ(store_->PutGroup(Group("b", 1)).status().code(), Status::Code::kConflict);
  // The name of a deleted group is free again.
  auto again = store_->CreateGroup(Group("a"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->id, 2u);
  Reopen();
  EXPECT_EQ(store_->live_groups(), 1u);
  EXPECT_EQ(store_->CreateGroup(Group("c", 1)).status().code(), Status::Code::kConflict);
  ExpectValid();
}

TEST_F(StoreRecords, KeyCrudAndErrors) {
  ASSERT_TRUE(store_->CreateGroup(Group("a", 1)).ok());
  ApiKey k = Key(1);
  k.refresh_token = "secret";
  k.weight = 3;
  auto created = store_->CreateKey(k);
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ(created->id, 1u);
  EXPECT_EQ(created->created_at, 1000);
  EXPECT_EQ(created->status, "active");
  EXPECT_EQ(store_->CreateKey(Key(1, 1)).status().code(), Status::Code::kConflict);
  EXPECT_EQ(store_->CreateKey(Key(9, 2)).status().code(), Status::Code::kInvalidArgument);
  ApiKey no_secret = Key(1, 2);
  no_secret.api_key.clear();
  EXPECT_EQ(store_->CreateKey(no_secret).status().code(), Status::Code::kInvalidArgument);
  ApiKey negative = Key(1, 2);
  negative.weight = -1;
  EXPECT_EQ(store_->CreateKey(negative).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->PutKey(Key(1, 0)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->GetKey(2).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->DeleteKey(2).code(), Status::Code::kNotFound);

  Reopen();
  auto got = store_->GetKey(1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->refresh_token, "secret");
  EXPECT_EQ(got->weight, 3);
  EXPECT_EQ(*got, *created);

  ApiKey suspended = Key(0, 2);
  suspended.status = "suspended";
  ASSERT_TRUE(store_->CreateKey(suspended).ok());
  EXPECT_EQ(store_->ListKeys(std::nullopt, std::nullopt)->size(), 2u);
  EXPECT_EQ(store_->ListKeys(1, std::nullopt)->size(), 1u);
  EXPECT_EQ(store_->ListKeys(0, std::nullopt)->size(), 1u);
  EXPECT_EQ(store_->ListKeys(std::nullopt, std::string("suspended")).value()[0].id, 2u);
  EXPECT_TRUE(store_->ListKeys(1, std::string("suspended"))->empty());
}

TEST_F(StoreRecords, MovingAKeyMovesItsTotals) {
  ASSERT_TRUE(store_->CreateGroup(Group("a", 1)).ok());
  ASSERT_TRUE(store_->CreateGroup(Group("b", 2)).ok());
  Flush({{7, 5, 3}, {8, 1, 0}});  // unknown keys: created in group 0
  EXPECT_EQ(store_->GroupSummary(0)->total, 9);
  auto seen = store_->GetKey(7);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->group_id, 0u);
  EXPECT_EQ(seen->api_key, "");

  clock_.Set(5000);
  ApiKey k = Key(1, 7);
  k.totals = {};  // ignored: totals are kept
  auto moved = store_->PutKey(k);
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_EQ(moved->totals.total, 8);
  EXPECT_EQ(moved->updated_at, 5000);
  EXPECT_EQ(moved->created_at, 1000);
  EXPECT_EQ(store_->GroupSummary(0)->total, 1);
  EXPECT_EQ(store_->GetGroup(1)->totals.success, 5);
  EXPECT_EQ(store_->GetGroup(1)->totals.failure, 3);
  ExpectValid();

  ASSERT_TRUE(store_->PutKey(Key(2, 7)).ok());
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 0);
  EXPECT_EQ(store_->GetGroup(2)->totals.total, 8);
  Flush({{7, 2, 0}});
  EXPECT_EQ(store_->GetGroup(2)->totals.total, 10);
  Reopen();
  EXPECT_EQ(store_->GetGroup(2)->totals.total, 10);
  EXPECT_EQ(store_->Summary().total, 11);
  ExpectValid();
  // Moving into a missing group changes nothing.
  EXPECT_EQ(store_->PutKey(Key(9, 7)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->GetGroup(2)->totals.total, 10);
}

TEST_F(StoreRecords, DeletedKeyLeavesItsGroupAndRefusesIncrements) {
  ASSERT_TRUE(store_->CreateGroup(Group("a", 1)).ok());
  ASSERT_TRUE(store_->CreateKey(Key(1, 1)).ok());
  ASSERT_TRUE(store_->CreateKey(Key(1, 2)).ok());
  Flush({{1, 4, 1}, {2, 2, 2}});
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 9);
  ASSERT_TRUE(store_->DeleteKey(1).ok());
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 4);
  EXPECT_EQ(store_->GetKey(1).status().code(), Status::Code::kNotFound);
  std::vector<core::KeyDelta> deltas = {{1, 10, 5}, {2, 1, 0}};
  auto r = store_->ApplyFlush(&deltas);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dropped_deleted, 15u);
  EXPECT_EQ(r->keys_updated, 1u);
  EXPECT_EQ(store_->GetGroup(1)->totals.total, 5);
  EXPECT_EQ(store_->CreateKey(Key(1, 1)).status().code(), Status::Code::kConflict);
  EXPECT_EQ(store_->PutKey(Key(1, 1)).status().code(), Status::Code::kConflict);
  Reopen();
  EXPECT_EQ(store_->live_keys(), 1u);
  EXPECT_EQ(store_->Summary().total, 5);
  // Still refused after a restart; the next free id skips the deleted one.
  deltas = {{1, 1, 0}};
  EXPECT_EQ(store_->ApplyFlush(&deltas)->dropped_deleted, 1u);
  auto next = store_->CreateKey(Key(1));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->id, 3u);
  ExpectValid();
}

TEST_F(StoreRecords, UnassignedKeysDeleteFromGroupZero) {
  Flush({{3, 1, 1}});
  ASSERT_TRUE(store_->DeleteKey(3).ok());
  EXPECT_EQ(store_->GroupSummary(0)->total, 0);
  EXPECT_EQ(store_->Summary().total, 0);
  ExpectValid();
}

// An automatic key id also skips the ids the caller says were seen (the daemon: counted by
// traffic, not yet flushed); explicit ids are not affected.
TEST_F(StoreRecords, AutomaticKeyIdsSkipIdsSeenElsewhere) {
  const auto seen = [](uint64_t id) { return id == 1 || id == 2 || id == 4; };
  ApiKey k;
  k.api_key = "a";
  auto a = store_->CreateKey(k, seen);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->id, 3u);
  k.api_key = "b";
  auto b = store_->CreateKey(k, seen);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->id, 5u);
  k.id = 1;
  k.api_key = "explicit";
  auto c = store_->CreateKey(k, seen);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->id, 1u);
}

}  // namespace
}  // namespace tally::persistence
