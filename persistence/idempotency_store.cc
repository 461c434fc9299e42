#include "persistence/idempotency_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"

namespace tally::persistence {

using core::Status;

Status IdempotencyStore::CheckKey(const std::string& key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyBytes) {
    return Status::InvalidArgument("idempotency key must be 1 to " +
                                   std::to_string(kMaxIdempotencyKeyBytes) + " bytes");
  }
  return Status::Ok();
}

Status IdempotencyStore::Load() {
  const std::string prefix = kIdempotentPrefix;
  std::unique_ptr<rocksdb::Iterator> it(
      db_.rocks()->NewIterator(rocksdb::ReadOptions(), db_.meta()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    TimeNs written_at = 0;
    std::string digest;
    std::string response;
    if (Status s = DecodeIdempotent(it->value().ToStringView(), &written_at, &digest, &response);
        !s.ok()) {
      return Status::Corruption("idempotent answer " + it->key().ToString() + ": " + s.message());
    }
    std::string key = it->key().ToString().substr(prefix.size());
    order_.emplace_back(written_at, key);
    written_at_[std::move(key)] = written_at;
  }
  std::sort(order_.begin(), order_.end());
  return FromRocks(it->status(), "reading idempotent answers");
}

bool IdempotencyStore::Unexpired(const std::string& key, TimeNs now) const {
  auto found = written_at_.find(key);
  return found != written_at_.end() && found->second + ttl_ns_ > now;
}

std::optional<IdempotentAnswer> IdempotencyStore::Lookup(const std::string& key, TimeNs now) const {
  if (!Unexpired(key, now)) {
    return std::nullopt;
  }
  std::string value;
  if (!db_.CheckOpen().ok() ||
      !db_.rocks()->Get(rocksdb::ReadOptions(), db_.meta(), kIdempotentPrefix + key, &value).ok()) {
    return std::nullopt;
  }
  IdempotentAnswer answer;
  TimeNs written_at = 0;
  if (!DecodeIdempotent(value, &written_at, &answer.request_digest, &answer.response).ok()) {
    return std::nullopt;
  }
  answer.key = key;
  return answer;
}

size_t IdempotencyStore::CountUnexpired(TimeNs now) const {
  size_t n = 0;
  for (const auto& [key, written_at] : written_at_) {
    n += written_at + ttl_ns_ > now ? 1 : 0;
  }
  return n;
}

size_t IdempotencyStore::PurgeExpired(TimeNs now, rocksdb::WriteBatch* batch) const {
  size_t n = 0;
  size_t deleted = 0;
  while (n < order_.size() && deleted < purge_per_batch_) {
    const auto& [written_at, key] = order_[n];
    if (written_at + ttl_ns_ > now) {
      break;
    }
    auto found = written_at_.find(key);
    // An order entry is stale when its key was rewritten later; the newer entry stays.
    if (found != written_at_.end() && found->second == written_at) {
      batch->Delete(db_.meta(), kIdempotentPrefix + key);
      ++deleted;
    }
    ++n;
  }
  return n;
}

void IdempotencyStore::Put(TimeNs now, const IdempotentAnswer& answer,
                           rocksdb::WriteBatch* batch) const {
  batch->Put(db_.meta(), kIdempotentPrefix + answer.key,
             EncodeIdempotent(now, answer.request_digest, answer.response));
}

void IdempotencyStore::Forget(size_t purged) {
  for (size_t i = 0; i < purged; ++i) {
    const auto& [written_at, key] = order_.front();
    auto found = written_at_.find(key);
    if (found != written_at_.end() && found->second == written_at) {
      written_at_.erase(found);
    }
    order_.pop_front();
  }
}

void IdempotencyStore::Remember(const std::string& key, TimeNs now) {
  written_at_[key] = now;
  order_.emplace_back(now, key);
}

}  // namespace tally::persistence
