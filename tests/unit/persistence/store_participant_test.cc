// FlushParticipant: parts that commit with the flush see exactly what it applied, write into
// its batch, and are told whether the batch became durable.
#include <gtest/gtest.h>
#include <rocksdb/write_batch.h>

#include <string>
#include <vector>

#include "persistence/db.h"
#include "persistence/flush_participant.h"
#include "tests/unit/persistence/fault_fs.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;

// Writes "p/<epoch>" into the meta family at Stage; records the protocol's calls.
class Recorder : public FlushParticipant {
 public:
  Status Stage(const FlushView& flush, rocksdb::WriteBatch* batch) override {
    calls.push_back("stage " + std::to_string(flush.epoch));
    seen.assign(flush.applied.begin(), flush.applied.end());
    internal = flush.internal;
    if (!fail_stage.ok()) {
      return fail_stage;
    }
    batch->Put(flush.db->meta(), "p/" + std::to_string(flush.epoch), "x");
    return Status::Ok();
  }
  void Commit(const FlushView& flush) override {
    calls.push_back("commit " + std::to_string(flush.epoch));
  }
  void Abort() override { calls.push_back("abort"); }

  Status fail_stage = Status::Ok();
  std::vector<std::string> calls;
  std::vector<AppliedDelta> seen;
  bool internal = false;
};

class StoreParticipant : public StoreFixture<> {
 protected:
  void SetUp() override {
    opts_.env = fault_.env.get();
    Reopen();
    store_->AddParticipant(&recorder_);
  }
  void TearDown() override { store_.reset(); }
  bool MetaHas(const std::string& key) {
    store_.reset();
    RawDb raw(db_dir());
    std::string v;
    return raw.db()->Get({}, raw.cf(RawDb::kMetaCf), key, &v).ok();
  }

  testing::FaultEnv fault_;
  Recorder recorder_;
};

TEST_F(StoreParticipant, SeesEachAppliedDeltaWithItsGroupAndCommitsInTheSameBatch) {
  ASSERT_TRUE(store_->CreateGroup(TestGroup(7)).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(1, 7)).ok());
  ASSERT_TRUE(store_->DeleteKey(1).ok());
  ASSERT_TRUE(store_->CreateKey(TestKey(2, 7)).ok());
  std::vector<core::KeyDelta> deltas = {{3, 1, 0}, {2, 4, 1}, {1, 9, 9}};
  auto r = store_->ApplyFlush(&deltas, FlushRules{.all_or_nothing = true});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(recorder_.internal);
  ASSERT_EQ(recorder_.seen.size(), 2u);  // key 1 is deleted: dropped, not seen
  EXPECT_EQ(recorder_.seen[0].key, 2u);
  EXPECT_EQ(recorder_.seen[0].group_id, 7u);
  EXPECT_EQ(recorder_.seen[0].delta.success, 4);
  EXPECT_EQ(recorder_.seen[0].delta.failure, 1);
  EXPECT_FALSE(recorder_.seen[0].created);
  EXPECT_EQ(recorder_.seen[1].key, 3u);
  EXPECT_EQ(recorder_.seen[1].group_id, kUnassignedGroup);
  EXPECT_TRUE(recorder_.seen[1].created);
  EXPECT_EQ(recorder_.calls, (std::vector<std::string>{"stage 1", "commit 1"}));
  EXPECT_TRUE(MetaHas("p/1"));
}

TEST_F(StoreParticipant, AStageErrorAbortsTheWholeFlush) {
  recorder_.fail_stage = Status::Refused("no");
  std::vector<core::KeyDelta> deltas = {{1, 1, 0}};
  auto r = store_->ApplyFlush(&deltas);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kRefused);
  EXPECT_EQ(recorder_.calls, (std::vector<std::string>{"stage 1", "abort"}));
  EXPECT_EQ(store_->epoch(), 0u);
  EXPECT_EQ(store_->Summary().total, 0);
  EXPECT_EQ(store_->live_keys(), 0u);
}

TEST_F(StoreParticipant, AFailedWriteAbortsAndLeavesNothingOfTheParticipant) {
  fault_.fs->set_mode(testing::FaultFs::Mode::kFailWrites);
  std::vector<core::KeyDelta> deltas = {{1, 1, 0}};
  ASSERT_FALSE(store_->ApplyFlush(&deltas).ok());
  EXPECT_EQ(recorder_.calls, (std::vector<std::string>{"stage 1", "abort"}));
  fault_.fs->set_mode(testing::FaultFs::Mode::kNone);
  ASSERT_TRUE(store_->ApplyFlush(&deltas).ok());
  EXPECT_EQ(recorder_.calls.back(), "commit 1");
  EXPECT_TRUE(MetaHas("p/1"));
}

}  // namespace
}  // namespace tally::persistence
