// The persistence tests' fixtures: a Store opened in a temporary directory (StoreTest), a
// one-shot open (OpenStore), and the store's database opened with plain RocksDB while the
// store is closed (RawDb), to write what a Store never would.
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "persistence/db.h"
#include "persistence/store.h"
#include "tests/support/temp_dir.h"

namespace tally::persistence {

// A valid group record with the given id (its name is the id, so ids never clash).
inline ProviderGroup TestGroup(uint64_t id) {
  ProviderGroup g;
  g.id = id;
  g.name = std::to_string(id);
  g.type = "openai";
  g.base_url = "u";
  return g;
}

// A valid key record with the given id in group `group_id`.
inline ApiKey TestKey(uint64_t id, uint64_t group_id) {
  ApiKey k;
  k.id = id;
  k.group_id = group_id;
  k.api_key = "sk";
  return k;
}

// Opens the store in `dir`; nullptr (and a failed expectation naming why) when it fails.
inline std::unique_ptr<Store> OpenStore(const std::string& dir, const StoreOptions& opts = {}) {
  auto s = Store::Open(dir, opts);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(*s) : nullptr;
}

// A Store in dir_.Sub("db"), opened with opts_ by Reopen() (the test's SetUp calls it, after
// setting opts_). clock_ is the store's clock when a test points opts_.clock at it.
// TearDown closes the store, before the members of a derived fixture (an Env the store
// uses) are destroyed; a derived TearDown calls it last.
template <typename Base = ::testing::Test>
class StoreFixture : public Base {
 protected:
  void TearDown() override { store_.reset(); }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(dir_.Sub("db"), opts_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
  }
  std::string db_dir() const { return dir_.Sub("db"); }

  testing::TempDir dir_;
  core::ManualClock clock_;
  StoreOptions opts_;
  std::unique_ptr<Store> store_;
};
using StoreTest = StoreFixture<>;

// The store's database opened with plain RocksDB (the store must be closed), every column
// family (kColumnFamilyNames, db.h) with default options. Index the families with the k*Cf
// constants.
class RawDb {
 public:
  static constexpr int kGroupsCf = 1;
  static constexpr int kKeysCf = 2;
  static constexpr int kTotalsCf = 3;
  static constexpr int kMetaCf = 4;
  static constexpr int kWindowsCf = 5;
  static constexpr int kBansCf = 6;
  static constexpr int kOutboxCf = 7;
  static constexpr int kSourcesCf = 8;

  explicit RawDb(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : kColumnFamilyNames) {
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles_, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db_.reset(raw);
  }
  ~RawDb() {
    for (auto* h : handles_) {
      EXPECT_TRUE(db_->DestroyColumnFamilyHandle(h).ok());
    }
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  bool ok() const { return db_ != nullptr; }
  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(int index) const { return handles_[index]; }
  // Writes `value` under `key` in family `index`.
  bool Put(int index, const std::string& key, const std::string& value) {
    return db_->Put(rocksdb::WriteOptions(), handles_[index], key, value).ok();
  }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace tally::persistence
