// OpenRawForPopulate: a new database under `dir` with every column family the store opens
// (kColumnFamilyNames, persistence/db.h), opened with plain RocksDB, for benchmarks that write
// their records raw (far faster than the Store's API). *handles gets the families in that
// list's order, the store's. Exits with one line when the database cannot be created.
#pragma once

#include <rocksdb/db.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "persistence/db.h"

inline std::unique_ptr<rocksdb::DB> OpenRawForPopulate(
    const std::string& dir, std::vector<rocksdb::ColumnFamilyHandle*>* handles) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* name : tally::persistence::kColumnFamilyNames) {
    cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, dir, cfs, handles, &raw).ok()) {
    std::fprintf(stderr, "cannot create %s\n", dir.c_str());
    std::exit(1);
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}
