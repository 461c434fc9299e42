// A check of RocksDB's write-ahead log files that RocksDB's own reader cannot make, for
// Store::Open. Internal to persistence/.
//
// In WALRecoveryMode::kTolerateCorruptedTailRecords RocksDB drops, silently, a record whose
// length runs past the end of the file in the file's last 32 KiB block: that is what a
// crash in the middle of a write leaves. A damaged length field in an earlier record of
// that block looks the same, and the (acknowledged) records after it would be dropped too.
// They tell the two apart: after a torn write nothing valid follows.
#pragma once

#include <string>

namespace tally::persistence {

// Looks at the last block of every NNNNNN.log in `dir` (at most 32 KiB each). Returns ""
// when none has a record running past its end with a valid record (checksum and all) after
// it, or else one line naming the file and the offsets. Files it cannot read are skipped:
// RocksDB reports those itself.
std::string FindDamageLikeATornTail(const std::string& dir);

}  // namespace tally::persistence
