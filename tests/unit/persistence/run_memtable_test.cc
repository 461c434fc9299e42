// RunMemTableFactory (persistence/run_memtable.h) under plain RocksDB: whatever the order of
// the inserts (sorted runs as the flushes write them, single admin writes, random order),
// iterators and point reads over the mutable and the read-only memtable see every key in
// order, at the right version.
#include "persistence/run_memtable.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tally::persistence {
namespace {

std::string Key(uint64_t id) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, id >>= 8) {
    k[i] = static_cast<char>(id & 0xff);
  }
  return k;
}

class RunMemTable : public ::testing::Test {
 protected:
  void SetUp() override {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.allow_concurrent_memtable_write = false;
    options.memtable_factory = NewRunMemTableFactory();
    options.write_buffer_size = 64 << 20;  // nothing leaves the memtable unless a test says so
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.Sub("db"), &raw).ok());
    db_.reset(raw);
  }

  // Writes `ids` (in this order) in one batch, each with value "<id>:<round>".
  void WriteBatch(const std::vector<uint64_t>& ids, int round) {
    rocksdb::WriteBatch batch;
    for (uint64_t id : ids) {
      std::string value = std::to_string(id) + ":" + std::to_string(round);
      ASSERT_TRUE(batch.Put(Key(id), value).ok());
      expected_[id] = value;
    }
    ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
  }

  // Every key, forwards and backwards, against expected_.
  void ExpectIterationMatches() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    auto want = expected_.begin();
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++want) {
      ASSERT_NE(want, expected_.end());
      ASSERT_EQ(it->key().ToString(), Key(want->first));
      ASSERT_EQ(it->value().ToString(), want->second);
    }
    ASSERT_TRUE(it->status().ok());
    EXPECT_EQ(want, expected_.end());
    auto back = expected_.rbegin();
    for (it->SeekToLast(); it->Valid(); it->Prev(), ++back) {
      ASSERT_NE(back, expected_.rend());
      ASSERT_EQ(it->key().ToString(), Key(back->first));
    }
    EXPECT_EQ(back, expected_.rend());
  }

  // Every 50th key (a read of the mutable memtable copies and sorts it, as VectorRep's do).
  void ExpectPointReadsMatch() {
    size_t i = 0;
    for (const auto& [id, value] : expected_) {
      if (i++ % 50 != 0) {
        continue;
      }
      std::string got;
      ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), Key(id), &got).ok()) << id;
      ASSERT_EQ(got, value);
    }
  }

  tally::testing::TempDir dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<uint64_t, std::string> expected_;
};

TEST_F(RunMemTable, IteratesInKeyOrderWhateverTheInsertOrder) {
  std::vector<uint64_t> sorted;
  for (uint64_t id = 1; id <= 5000; ++id) {
    sorted.push_back(id * 3);
  }
  WriteBatch(sorted, 1);            // one flush's run
  WriteBatch({7, 2, 15000, 1}, 2);  // admin writes, out of order
  std::vector<uint64_t> every_other;
  for (uint64_t id = 2; id <= 12000; id += 2) {
    every_other.push_back(id);
  }
  WriteBatch(every_other, 3);  // the next flush: overwrites and new keys
  ExpectIterationMatches();
  ExpectPointReadsMatch();
}

TEST_F(RunMemTable, ManyShortRunsAreSortedToo) {
  std::vector<uint64_t> ids;
  for (uint64_t id = 1; id <= 3000; ++id) {
    ids.push_back(id);
  }
  std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
  for (size_t i = 0; i < ids.size(); i += 3) {
    WriteBatch({ids[i], ids[i + 1], ids[i + 2]}, static_cast<int>(i));
  }
  ExpectIterationMatches();
  ExpectPointReadsMatch();
}

TEST_F(RunMemTable, SeeksLandOnTheNearestKey) {
  WriteBatch({10, 20, 30, 40}, 1);
  WriteBatch({15, 35}, 2);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(Key(16));
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().ToString(), Key(20));
  it->Seek(Key(35));
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().ToString(), Key(35));
  it->SeekForPrev(Key(34));
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().ToString(), Key(30));
  it->SeekForPrev(Key(15));
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().ToString(), Key(15));
  it->SeekForPrev(Key(9));
  EXPECT_FALSE(it->Valid());
  it->Seek(Key(41));
  EXPECT_FALSE(it->Valid());
}

// LookupKey's layout (run_memtable.cc, Get): a point read must find the newest version a
// snapshot sees, and nothing for a missing key, in the mutable and the read-only memtable.
TEST_F(RunMemTable, PointReadsFindEveryVersion) {
  WriteBatch({1, 2, 3}, 1);
  const rocksdb::Snapshot* before = db_->GetSnapshot();
  WriteBatch({2}, 2);
  const auto expect = [&](const std::string& when) {
    std::string got;
    ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), Key(2), &got).ok()) << when;
    EXPECT_EQ(got, "2:2") << when;
    rocksdb::ReadOptions at_snapshot;
    at_snapshot.snapshot = before;
    ASSERT_TRUE(db_->Get(at_snapshot, Key(2), &got).ok()) << when;
    EXPECT_EQ(got, "2:1") << when;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), Key(4), &got).IsNotFound()) << when;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), Key(0), &got).IsNotFound()) << when;
  };
  expect("mutable");
  // Read-only: switched out and held there while background work is paused.
  ASSERT_TRUE(db_->PauseBackgroundWork().ok());
  rocksdb::FlushOptions no_wait;
  no_wait.wait = false;
  ASSERT_TRUE(db_->Flush(no_wait).ok());
  uint64_t immutable = 0;
  ASSERT_TRUE(db_->GetIntProperty("rocksdb.num-immutable-mem-table", &immutable));
  ASSERT_EQ(immutable, 1u);
  expect("read-only");
  ExpectIterationMatches();
  ASSERT_TRUE(db_->ContinueBackgroundWork().ok());
  ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions()).ok());  // the SST holds what the memtable did
  expect("flushed");
  ExpectIterationMatches();
  db_->ReleaseSnapshot(before);
}

}  // namespace
}  // namespace tally::persistence
