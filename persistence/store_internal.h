// Shared by the store's .cc files only: column family and meta key names, id limits, and
// the conversion of RocksDB statuses. Not part of the public API.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace rocksdb {
class Status;
}  // namespace rocksdb

namespace tally::persistence {

inline constexpr char kGroupsCf[] = "groups";
inline constexpr char kKeysCf[] = "keys";
inline constexpr char kTotalsCf[] = "key_totals";
inline constexpr char kMetaCf[] = "meta";
inline constexpr char kFormatKey[] = "format";
inline constexpr char kEpochKey[] = "epoch";
inline constexpr char kIdempotentPrefix[] = "idem/";
inline constexpr size_t kMaxIdempotencyKeyBytes = 255;
inline constexpr uint64_t kMaxId = (uint64_t{1} << 63) - 1;

// IoError (retry may help) or Corruption, with `what` and RocksDB's message.
core::Status FromRocks(const rocksdb::Status& s, const std::string& what);

}  // namespace tally::persistence
