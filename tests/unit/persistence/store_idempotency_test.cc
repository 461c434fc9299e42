// Idempotent answers: recorded with the flush, found again after a reopen, a reused key
// detectable, expired after the TTL, purged over time.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "persistence/store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;

class StoreIdempotency : public StoreTest {
 protected:
  void SetUp() override {
    clock_.Set(1'000'000'000);
    opts_.clock = &clock_;
    Reopen();
  }
  // A stand-in for a request's digest, which the store stores and compares as bytes.
  static std::string Digest(uint64_t n) { return "digest-" + std::to_string(n); }
  core::StatusOr<FlushResult> Apply(const std::string& key, uint64_t hash,
                                    std::vector<core::KeyDelta> deltas) {
    IdempotentAnswer a{key, Digest(hash), ""};
    return store_->ApplyFlush(&deltas, &a, [](const FlushResult& r) {
      return "{\"updated\":" + std::to_string(r.keys_updated) + "}";
    });
  }
  // Answers stored on disk, counted with a raw RocksDB read (the store closed).
  size_t StoredAnswers() {
    store_.reset();
    size_t n = 0;
    {
      RawDb raw(db_dir());
      std::unique_ptr<rocksdb::Iterator> it(
          raw.db()->NewIterator(rocksdb::ReadOptions(), raw.cf(RawDb::kMetaCf)));
      for (it->Seek("idem/"); it->Valid() && it->key().starts_with("idem/"); it->Next()) {
        ++n;
      }
    }
    Reopen();
    return n;
  }
};

TEST_F(StoreIdempotency, AnswerIsRecordedWithTheFlushAndSurvivesReopen) {
  auto r = Apply("req-1", 77, {{1, 2, 1}, {2, 1, 0}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto found = store_->LookupIdempotent("req-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->request_digest, Digest(77));
  EXPECT_EQ(found->response, "{\"updated\":2}");
  EXPECT_FALSE(store_->LookupIdempotent("req-2").has_value());
  Reopen();
  found = store_->LookupIdempotent("req-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->key, "req-1");
  EXPECT_EQ(found->request_digest, Digest(77));
  EXPECT_EQ(found->response, "{\"updated\":2}");
  EXPECT_EQ(store_->idempotent_answers(), 1u);
}

TEST_F(StoreIdempotency, ASecondFlushWithAValidKeyIsRefusedAndAppliesNothing) {
  ASSERT_TRUE(Apply("req-1", 77, {{1, 2, 1}}).ok());
  for (uint64_t hash : {77u, 78u}) {  // a retry and a reuse with another body
    auto again = Apply("req-1", hash, {{1, 100, 100}});
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), Status::Code::kConflict);
  }
  EXPECT_EQ(store_->Summary().total, 3);
  EXPECT_EQ(store_->epoch(), 1u);
  // The caller tells the two apart by the stored hash.
  EXPECT_EQ(store_->LookupIdempotent("req-1")->request_digest, Digest(77));
  Reopen();
  EXPECT_EQ(Apply("req-1", 78, {{1, 1, 0}}).status().code(), Status::Code::kConflict);
}

TEST_F(StoreIdempotency, BadKeysAreRefused) {
  EXPECT_EQ(Apply("", 1, {{1, 1, 0}}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Apply(std::string(256, 'k'), 1, {{1, 1, 0}}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(Apply(std::string(255, 'k'), 1, {{1, 1, 0}}).ok());
  EXPECT_EQ(store_->Summary().total, 1);
}

TEST_F(StoreIdempotency, AnswersExpireAfterTheTtlAcrossReopen) {
  ASSERT_TRUE(Apply("old", 1, {{1, 1, 0}}).ok());
  clock_.Advance(kIdempotencyTtlNs - 1);
  Reopen();
  EXPECT_TRUE(store_->LookupIdempotent("old").has_value());
  clock_.Advance(1);
  EXPECT_FALSE(store_->LookupIdempotent("old").has_value());
  EXPECT_EQ(store_->idempotent_answers(), 0u);
  // Once expired the key may be used again, and holds the new answer.
  ASSERT_TRUE(Apply("old", 2, {{1, 1, 0}}).ok());
  EXPECT_EQ(store_->LookupIdempotent("old")->request_digest, Digest(2));
  EXPECT_EQ(store_->Summary().total, 2);
  Reopen();
  EXPECT_EQ(store_->LookupIdempotent("old")->request_digest, Digest(2));
}

TEST_F(StoreIdempotency, ExpiredAnswersArePurgedAFewPerFlush) {
  opts_.idempotency_purge_per_flush = 2;
  Reopen();
  for (int i = 0; i < 5; ++i) {
    std::string key = std::to_string(i);  // not "k" + ...: GCC 12 -Wrestrict false positive
    ASSERT_TRUE(Apply(key, i, {{1, 1, 0}}).ok());
    clock_.Advance(1);
  }
  EXPECT_EQ(StoredAnswers(), 5u);
  clock_.Advance(kIdempotencyTtlNs);
  ASSERT_TRUE(Apply("fresh", 9, {{1, 1, 0}}).ok());  // purges 2 of the 5
  EXPECT_EQ(StoredAnswers(), 4u);
  std::vector<core::KeyDelta> plain = {{1, 1, 0}};
  ASSERT_TRUE(store_->ApplyFlush(&plain).ok());  // plain flushes purge too
  EXPECT_EQ(StoredAnswers(), 2u);
  ASSERT_TRUE(store_->ApplyFlush(&plain).ok());
  ASSERT_TRUE(store_->ApplyFlush(&plain).ok());
  EXPECT_EQ(StoredAnswers(), 1u);  // only "fresh" is left
  EXPECT_TRUE(store_->LookupIdempotent("fresh").has_value());
  EXPECT_EQ(store_->idempotent_answers(), 1u);
}

}  // namespace
}  // namespace tally::persistence
