// OutboxStore: batches written with the flush, per-consumer cursors, dead letters, coalescing
// of never-sent batches; SourcesStore: the receiver's high-water mark in the flush's batch.
#include "persistence/outbox_store.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "persistence/sources_store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::DeltaBatch;
using core::KeyDelta;

class OutboxTest : public StoreTest {
 protected:
  void SetUp() override { Open({"forward"}); }
  void TearDown() override {
    outbox_.reset();
    store_.reset();
  }
  void Open(std::vector<std::string> consumers, size_t coalesce_after = 16, std::string source = "",
            size_t max_batch_keys = 20000) {
    outbox_.reset();
    Reopen();
    OutboxOptions options{source, std::move(consumers), coalesce_after};
    options.max_batch_keys = max_batch_keys;
    auto o = OutboxStore::Open(*store_, std::move(options));
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    outbox_ = std::move(*o);
  }
  void Flush(std::vector<KeyDelta> deltas) {
    auto r = store_->ApplyFlush(&deltas);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::optional<DeltaBatch> Peek(const std::string& consumer = "forward") {
    auto b = outbox_->Peek(consumer);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : std::nullopt;
  }

  // Takes every batch of `consumer` in order: checks that the sequences follow each other
  // without holes from `first_sequence` and that no batch has more than `max_keys` keys;
  // returns the per-key sums (successes, failures).
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> Drain(const std::string& consumer,
                                                          uint64_t first_sequence,
                                                          size_t max_keys) {
    std::map<uint64_t, std::pair<uint64_t, uint64_t>> sums;
    uint64_t next = first_sequence;
    while (auto b = Peek(consumer)) {
      EXPECT_EQ(b->first_sequence, next);
      EXPECT_LE(b->first_sequence, b->last_sequence);
      EXPECT_LE(b->deltas.size(), max_keys);
      for (const KeyDelta& d : b->deltas) {
        sums[d.key].first += d.successes;
        sums[d.key].second += d.failures;
      }
      next = b->last_sequence + 1;
      EXPECT_TRUE(outbox_->Ack(consumer, b->last_sequence).ok());
    }
    EXPECT_EQ(next, outbox_->stats().last_sequence + 1);
    return sums;
  }

  std::unique_ptr<OutboxStore> outbox_;
};

std::vector<KeyDelta> Keys(uint64_t from, uint64_t to, uint64_t successes) {
  std::vector<KeyDelta> out;
  for (uint64_t k = from; k <= to; ++k) {
    out.push_back({k, successes, k % 2});
  }
  return out;
}

TEST_F(OutboxTest, EachFlushIsOneBatchNumberedFromOneAndAckRemovesIt) {
  Flush({{1, 2, 1}, {5, 0, 3}});
  Flush({{1, 1, 0}});
  Flush({});  // applies nothing: no batch
  auto b = Peek();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->source, outbox_->source());
  EXPECT_EQ(b->first_sequence, 1u);
  EXPECT_EQ(b->last_sequence, 1u);
  EXPECT_EQ(b->deltas, (std::vector<KeyDelta>{{1, 2, 1}, {5, 0, 3}}));
  EXPECT_EQ(Peek()->first_sequence, 1u);  // the same until acknowledged
  ASSERT_TRUE(outbox_->Ack("forward", 1).ok());
  b = Peek();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first_sequence, 2u);
  EXPECT_EQ(b->deltas, (std::vector<KeyDelta>{{1, 1, 0}}));
  ASSERT_TRUE(outbox_->Ack("forward", 2).ok());
  EXPECT_FALSE(Peek());
  EXPECT_EQ(outbox_->stats().batches, 0u);
  EXPECT_EQ(outbox_->bytes(), 0u);
}

TEST_F(OutboxTest, SourceAndSequenceAndCursorSurviveARestart) {
  const std::string source = outbox_->source();
  EXPECT_TRUE(OutboxStore::ValidSource(source)) << source;
  Flush({{1, 1, 0}});
  Flush({{2, 1, 0}});
  ASSERT_TRUE(outbox_->Ack("forward", 1).ok());
  Open({"forward"});
  EXPECT_EQ(outbox_->source(), source);
  auto b = Peek();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first_sequence, 2u);
  Flush({{3, 1, 0}});
  ASSERT_TRUE(outbox_->Ack("forward", 2).ok());
  EXPECT_EQ(Peek()->first_sequence, 3u);
  // --source-id overrides, and is kept.
  Open({"forward"}, 16, "edge-7");
  EXPECT_EQ(outbox_->source(), "edge-7");
  Open({"forward"});
  EXPECT_EQ(outbox_->source(), "edge-7");
}

TEST_F(OutboxTest, ABatchGoesOnlyWhenEveryConsumerHasPassedIt) {
  Open({"forward", "pg"});
  Flush({{1, 1, 0}});
  ASSERT_TRUE(outbox_->Ack("forward", 1).ok());
  EXPECT_FALSE(Peek("forward"));
  EXPECT_EQ(outbox_->stats().batches, 1u);
  ASSERT_TRUE(Peek("pg"));
  ASSERT_TRUE(outbox_->Ack("pg", 1).ok());
  EXPECT_EQ(outbox_->stats().batches, 0u);
  EXPECT_FALSE(outbox_->Ack("nobody", 1).ok());
}

TEST_F(OutboxTest, NeverSentBatchesCoalesceAndTheHeadIsNeverMerged) {
  Open({"forward", "pg"}, /*coalesce_after=*/2);
  Flush({{1, 1, 0}});             // 1: both consumers' head
  Flush({{1, 1, 0}});             // 2
  Flush({{1, 0, 1}, {2, 4, 0}});  // 3: merged into 2
  Flush({{2, 1, 0}});             // 4: merged into 2
  EXPECT_EQ(outbox_->stats().batches, 2u);
  EXPECT_EQ(outbox_->stats().coalesced, 2u);
  auto b = Peek("forward");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->last_sequence, 1u);
  ASSERT_TRUE(outbox_->Ack("forward", 1).ok());
  b = Peek("forward");  // now 2..4 is forward's head: it may be sent, never merged again
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first_sequence, 2u);
  EXPECT_EQ(b->last_sequence, 4u);
  EXPECT_EQ(b->deltas, (std::vector<KeyDelta>{{1, 1, 1}, {2, 5, 0}}));
  Flush({{3, 1, 0}});  // 5: a batch of its own
  EXPECT_EQ(outbox_->stats().batches, 3u);
  EXPECT_EQ(Peek("forward")->last_sequence, 4u);
  // After a restart the tail is read back before merging.
  Open({"forward", "pg"}, 2);
  Flush({{3, 1, 0}});  // 6: merged into 5
  ASSERT_TRUE(outbox_->Ack("forward", 4).ok());
  b = Peek("forward");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first_sequence, 5u);
  EXPECT_EQ(b->last_sequence, 6u);
  EXPECT_EQ(b->deltas, (std::vector<KeyDelta>{{3, 2, 0}}));
}

TEST_F(OutboxTest, AFlushOverTheKeyCapIsSplitIntoBatchesWithConsecutiveSequences) {
  Open({"forward"}, 16, "", /*max_batch_keys=*/3);
  Flush(Keys(1, 7, 2));  // 1: keys 1-3, 2: 4-6, 3: 7
  Flush(Keys(2, 3, 1));  // 4
  EXPECT_EQ(outbox_->stats().batches, 4u);
  EXPECT_EQ(outbox_->stats().last_sequence, 4u);
  auto b = Peek();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->last_sequence, 1u);
  EXPECT_EQ(b->deltas, (std::vector<KeyDelta>{{1, 2, 1}, {2, 2, 0}, {3, 2, 1}}));
  auto sums = Drain("forward", 1, 3);
  ASSERT_EQ(sums.size(), 7u);
  for (uint64_t k = 1; k <= 7; ++k) {
    EXPECT_EQ(sums[k], std::make_pair(k == 2 || k == 3 ? 3ul : 2ul, (k % 2) * (k == 3 ? 2 : 1)))
        << k;
  }
  EXPECT_EQ(outbox_->stats().batches, 0u);
}

TEST_F(OutboxTest, ARetriedDeadLetterIsCutAtTheCapInForceNow) {
  Flush(Keys(1, 7, 1));  // one batch of 7 keys, refused (say, 413: too big for the upstream)
  ASSERT_TRUE(outbox_->DeadLetter("forward", *Peek(), 413, "too big").ok());
  Open({"forward"}, 16, "", /*max_batch_keys=*/3);  // restarted with a lower cap
  ASSERT_TRUE(outbox_->RetryDead("forward", 1).ok());
  EXPECT_EQ(outbox_->stats().batches, 3u);
  auto sums = Drain("forward", 2, 3);
  ASSERT_EQ(sums.size(), 7u);
  for (uint64_t k = 1; k <= 7; ++k) {
    EXPECT_EQ(sums[k], std::make_pair(1ul, k % 2)) << k;
  }
}

TEST_F(OutboxTest, DuringAnOutageTheOutboxGrowsWithTheKeysNotWithTime) {
  // The consumer never acknowledges (its upstream is down): batch 1 is its head, and every
  // later flush is coalesced into the never-sent suffix once 2 batches are held.
  Open({"forward"}, /*coalesce_after=*/2, "", /*max_batch_keys=*/3);
  for (int flush = 0; flush < 40; ++flush) {
    Flush(Keys(1, 8, 1));
    if (flush == 20) {
      Open({"forward"}, 2, "", 3);  // a restart: the suffix is read back from disk
    }
  }
  // Head (3 keys) + the 8 keys in batches of 3: at most 1 + 3 batches, whatever the time.
  EXPECT_LE(outbox_->stats().batches, 4u);
  EXPECT_GE(outbox_->stats().coalesced, 19u);  // since the restart
  auto sums = Drain("forward", 1, 3);
  ASSERT_EQ(sums.size(), 8u);
  for (uint64_t k = 1; k <= 8; ++k) {
    EXPECT_EQ(sums[k], std::make_pair(40ul, 40 * (k % 2))) << k;
  }
}

TEST_F(OutboxTest, ADeadLetterIsSkippedAndARetryComesBackRenumberedForItsConsumerOnly) {
  Open({"forward", "pg"});
  Flush({{1, 1, 0}});
  Flush({{2, 1, 0}});
  auto b = Peek("forward");
  ASSERT_TRUE(b);
  ASSERT_TRUE(outbox_->DeadLetter("forward", *b, 400, "bad body").ok());
  EXPECT_EQ(Peek("forward")->first_sequence, 2u);
  auto dead = outbox_->DeadLetters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, 1u);
  EXPECT_EQ(dead[0].http_status, 400u);
  EXPECT_EQ(dead[0].reason, "bad body");
  ASSERT_TRUE(outbox_->Ack("forward", 2).ok());
  Open({"forward", "pg"});  // dead letters are kept
  ASSERT_EQ(outbox_->DeadLetters().size(), 1u);
  EXPECT_EQ(outbox_->RetryDead("forward", 9).code(), core::Status::Code::kNotFound);
  ASSERT_TRUE(outbox_->RetryDead("forward", 1).ok());
  EXPECT_TRUE(outbox_->DeadLetters().empty());
  b = Peek("forward");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->first_sequence, 3u);  // a new sequence, past every receiver's mark
  EXPECT_EQ(b->deltas, (std::vector<KeyDelta>{{1, 1, 0}}));
  // pg never sees the retry: it already has 1 and 2.
  ASSERT_TRUE(outbox_->Ack("pg", 2).ok());
  EXPECT_FALSE(Peek("pg"));
  ASSERT_TRUE(outbox_->Ack("forward", 3).ok());
  EXPECT_EQ(outbox_->stats().batches, 0u);
  // Delete.
  Flush({{4, 1, 0}});
  ASSERT_TRUE(outbox_->DeadLetter("forward", *Peek("forward"), 422, "no").ok());
  ASSERT_TRUE(outbox_->DeleteDead("forward", 4).ok());
  EXPECT_TRUE(outbox_->DeadLetters().empty());
  EXPECT_EQ(outbox_->DeleteDead("forward", 4).code(), core::Status::Code::kNotFound);
}

TEST_F(OutboxTest, AFailedFlushWritesNoBatch) {
  Flush({{1, 1, 0}});
  std::vector<KeyDelta> deltas = {{1, 1, 0}};
  FlushRules rules;
  rules.all_or_nothing = true;
  rules.max_keys = 1;
  std::vector<KeyDelta> unknown = {{9, 1, 0}};
  EXPECT_FALSE(store_->ApplyFlush(&unknown, rules).ok());
  EXPECT_EQ(outbox_->stats().batches, 1u);
  EXPECT_EQ(outbox_->stats().last_sequence, 1u);
}

class SourcesTest : public StoreTest {
 protected:
  void SetUp() override { OpenAll(); }
  void TearDown() override {
    sources_.reset();
    store_.reset();
  }
  void OpenAll() {
    sources_.reset();
    Reopen();
    auto s = SourcesStore::Open(*store_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sources_ = std::move(*s);
  }
  core::Status Apply(const std::string& source, uint64_t first, uint64_t last) {
    std::vector<KeyDelta> deltas = {{1, 1, 0}};
    FlushRules rules;
    rules.all_or_nothing = true;
    rules.source = FlushSource{source, first, last};
    auto r = store_->ApplyFlush(&deltas, rules);
    return r.ok() ? core::Status::Ok() : r.status();
  }
  std::unique_ptr<SourcesStore> sources_;
};

TEST_F(SourcesTest, TheMarkMovesWithTheDeltasAndRefusesAReplay) {
  ASSERT_TRUE(Apply("a", 1, 1).ok());
  ASSERT_TRUE(Apply("a", 2, 3).ok());
  EXPECT_EQ(sources_->Mark("a"), 3u);
  EXPECT_EQ(Apply("a", 3, 3).code(), core::Status::Code::kConflict);
  EXPECT_EQ(store_->Summary().success, 2);  // the refused replay applied nothing
  ASSERT_TRUE(Apply("a", 6, 6).ok());       // a gap: applied, counted
  ASSERT_TRUE(Apply("b", 1, 1).ok());
  auto list = sources_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].last_sequence, 6u);
  EXPECT_EQ(list[0].gaps, 1u);
  OpenAll();
  EXPECT_EQ(sources_->Mark("a"), 6u);
  EXPECT_EQ(sources_->Mark("b"), 1u);
  EXPECT_EQ(sources_->Mark("c"), 0u);
  EXPECT_EQ(store_->Summary().success, 4);
}

}  // namespace
}  // namespace tally::persistence
