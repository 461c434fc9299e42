#include "persistence/db.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace tally::persistence {
namespace {

// kColumnFamilyNames is the order of Db's handles, which whatever opens the database raw (the
// tests' RawDb, bench/raw_db.h) indexes by, and names every family on disk.
TEST(Db, FamiliesAreTheListedNamesInHandleOrder) {
  testing::TempDir dir;
  const std::string path = dir.Sub("db");
  {
    core::StatusOr<std::unique_ptr<Db>> db = Db::Open(path, StoreOptions());
    ASSERT_TRUE(db.ok()) << db.status().message();
    const Db& d = **db;
    const std::vector<rocksdb::ColumnFamilyHandle*> handles = {d.rocks()->DefaultColumnFamily(),
                                                               d.groups(),
                                                               d.keys(),
                                                               d.totals(),
                                                               d.meta(),
                                                               d.windows(),
                                                               d.bans(),
                                                               d.outbox(),
                                                               d.sources()};
    ASSERT_EQ(handles.size(), kColumnFamilyNames.size());
    for (size_t i = 0; i < handles.size(); ++i) {
      EXPECT_EQ(handles[i]->GetName(), kColumnFamilyNames[i]) << "family " << i;
    }
  }
  std::vector<std::string> on_disk;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &on_disk).ok());
  std::vector<std::string> listed(kColumnFamilyNames.begin(), kColumnFamilyNames.end());
  std::sort(on_disk.begin(), on_disk.end());
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(on_disk, listed);
}

}  // namespace
}  // namespace tally::persistence
