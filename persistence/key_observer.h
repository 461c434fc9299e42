// KeyObserver: a part of the daemon's state that follows every admin write of a key record
// (create, PUT, delete) in the write's own synced WriteBatch, as a FlushParticipant follows
// the flushes. The ban keeper (ban_keeper.h) is one: it keeps each key's status, auto_ban and
// ban deadline in memory so that the flush never reads a record to judge a key.
//
// The protocol, all under the store's write lock:
//   Load(db)                       once, at Store::AddKeyObserver: read what it keeps.
//   StageKeyWrite(old, next, ...)  the write is built: add this part's writes to `batch`
//                                  (`db` for the column family handles).
//                                  `old` is null for a create; a delete's `next` has
//                                  deleted_at set.
//   CommitKeyWrite()               the batch is durable: make memory match it.
//   AbortKeyWrite()                the batch will not be written: forget what was staged.
#pragma once

#include "core/status.h"
#include "persistence/records.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace tally::persistence {

class Db;

class KeyObserver {
 public:
  virtual ~KeyObserver() = default;
  virtual core::Status Load(const Db& db) = 0;
  virtual void StageKeyWrite(const ApiKey* old, const ApiKey& next, TimeNs now, const Db& db,
                             rocksdb::WriteBatch* batch) = 0;
  virtual void CommitKeyWrite() = 0;
  virtual void AbortKeyWrite() = 0;
};

}  // namespace tally::persistence
