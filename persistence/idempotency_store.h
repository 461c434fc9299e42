// IdempotencyStore: the first answers of idempotent writes (POST /internal/apikey-stats/flush
// with an Idempotency-Key), kept in the meta column family as "idem/<key>" for
// StoreOptions::idempotency_ttl_ns (24 hours by default, restarts included).
//
// Memory holds when each answer was written (loaded at open), so a flush tells a fresh key
// from a used one, and finds expired answers to delete, without reading RocksDB. An answer
// is written in the same batch as the flush it answers for (Put), and its expired
// predecessors are deleted a few at a time in the batches of later flushes (PurgeExpired);
// memory follows only once that batch is durable (Forget, Remember).
//
// Thread safety: none of its own. The Store guards it with its lock: the const methods under
// the lock shared, the others under it exclusively.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/status.h"
#include "persistence/records.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace tally::persistence {

class Db;

// An idempotent write's first answer, written in the same batch as the write it answers for.
struct IdempotentAnswer {
  std::string key;  // the client's Idempotency-Key
  // The request's digest: SHA-256 of its body (32 bytes), compared byte for byte. An answer
  // stored by an older build (format version 1) holds the 8-byte FNV-1a-64 hash of the body
  // instead (record_codec.h); callers tell the two apart by the size.
  std::string request_digest;
  std::string response;  // the answer body returned the first time
};

class IdempotencyStore {
 public:
  // `db` must outlive this object.
  IdempotencyStore(const Db& db, int64_t ttl_ns, size_t purge_per_batch)
      : db_(db), ttl_ns_(ttl_ns), purge_per_batch_(purge_per_batch) {}

  // InvalidArgument unless the key is 1 to 255 bytes.
  static core::Status CheckKey(const std::string& key);

  // Reads when every stored answer was written (at open). Corruption for an undecodable one.
  core::Status Load();

  // Whether an answer under `key` was written less than the TTL before `now`.
  bool Unexpired(const std::string& key, TimeNs now) const;
  // The unexpired answer under `key`, read from RocksDB; nullopt when there is none or it
  // cannot be read.
  std::optional<IdempotentAnswer> Lookup(const std::string& key, TimeNs now) const;
  // Unexpired answers held. A scan of the index: O(answers held).
  size_t CountUnexpired(TimeNs now) const;

  // Adds to `batch` the deletes of up to purge_per_batch expired answers; returns how many
  // index entries Forget must drop once the batch is durable.
  size_t PurgeExpired(TimeNs now, rocksdb::WriteBatch* batch) const;
  // Adds `answer`, written at `now`, to `batch`.
  void Put(TimeNs now, const IdempotentAnswer& answer, rocksdb::WriteBatch* batch) const;
  // After the batch is durable: drops the `purged` oldest index entries (PurgeExpired's
  // answer) and records `key` as written at `now`.
  void Forget(size_t purged);
  void Remember(const std::string& key, TimeNs now);

 private:
  const Db& db_;
  const int64_t ttl_ns_;
  const size_t purge_per_batch_;
  std::unordered_map<std::string, TimeNs> written_at_;  // key -> when its answer was written
  std::deque<std::pair<TimeNs, std::string>> order_;    // oldest first; stale entries allowed
};

}  // namespace tally::persistence
