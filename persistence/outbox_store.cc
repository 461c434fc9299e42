// OutboxStore: the outbox's batches, cursors and dead letters (outbox_store.h).
#include "persistence/outbox_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <span>
#include <utility>

#include "core/clock.h"
#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/outbox_codec.h"
#include "persistence/store.h"

namespace tally::persistence {
namespace {

using core::Status;
using core::StatusOr;

bool ValidConsumer(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

bool OutboxStore::ValidSource(const std::string& source) {
  if (source.empty() || source.size() > 128) {
    return false;
  }
  return std::all_of(source.begin(), source.end(),
                     [](char c) { return c > 0x20 && c < 0x7f && c != ':'; });
}

std::string OutboxStore::NewSourceId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0) {
    std::snprintf(host, sizeof(host), "tallyd");
  }
  std::string id;
  for (const char* p = host; *p != 0 && id.size() < 100; ++p) {
    id.push_back(*p > 0x20 && *p < 0x7f && *p != ':' ? *p : '-');
  }
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "-%08x", static_cast<unsigned>(rd()));
  return id + suffix;
}

StatusOr<std::unique_ptr<OutboxStore>> OutboxStore::Open(Store& store, OutboxOptions options) {
  if (options.consumers.empty() || options.consumers.size() > 16) {
    return Status::InvalidArgument("outbox: 1 to 16 consumers");
  }
  for (const std::string& c : options.consumers) {
    if (!ValidConsumer(c)) {
      return Status::InvalidArgument("outbox: bad consumer name '" + c + "'");
    }
  }
  if (!options.source.empty() && !ValidSource(options.source)) {
    return Status::InvalidArgument(
        "source id: must be 1 to 128 visible ASCII characters other than ':'");
  }
  std::unique_ptr<OutboxStore> outbox(new OutboxStore(store, std::move(options)));
  TALLY_RETURN_IF_ERROR(outbox->Load());
  store.AddParticipant(outbox.get());
  return outbox;
}

Status OutboxStore::Load() {
  std::string stored_source;
  TALLY_RETURN_IF_ERROR(store_.ReadState([&](const Db& db, const rocksdb::Snapshot* snap) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::unique_ptr<rocksdb::Iterator> it(db.rocks()->NewIterator(ro, db.outbox()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      const std::string_view value(it->value().data(), it->value().size());
      if (key == kOutboxSourceKey) {
        stored_source = std::string(value);
      } else if (key == kOutboxSequenceKey) {
        last_sequence_ = FromBe64(value);
      } else if (key.starts_with("b/") && key.size() == 10) {
        OutboxBatchHead head;
        TALLY_RETURN_IF_ERROR(DecodeOutboxBatch(value, &head, nullptr));
        index_[FromBe64(key.substr(2))] = {head.last_sequence, head.only_for, value.size(),
                                           head.created_at};
        batch_bytes_ += value.size();
      } else if (key.starts_with("c/")) {
        cursors_[key.substr(2)] = FromBe64(value);
      } else if (key.starts_with("d/") && key.size() > 11 && key[key.size() - 9] == '\0') {
        OutboxDeadHead head;
        TALLY_RETURN_IF_ERROR(DecodeOutboxDead(value, &head, nullptr));
        DeadLetterInfo d;
        d.consumer = key.substr(2, key.size() - 11);
        d.id = d.first_sequence = FromBe64(key.substr(key.size() - 8));
        d.last_sequence = head.last_sequence;
        d.keys = head.keys;
        d.bytes = value.size();
        d.created_at = head.created_at;
        d.dead_at = head.dead_at;
        d.http_status = head.http_status;
        d.reason = head.reason;
        dead_bytes_ += d.bytes;
        dead_[{d.consumer, d.id}] = std::move(d);
      }
    }
    return it->status().ok() ? Status::Ok() : FromRocks(it->status(), "outbox: read");
  }));
  // Only configured consumers count; a new one starts at 0.
  std::map<std::string, uint64_t> cursors;
  for (const std::string& c : opts_.consumers) {
    auto it = cursors_.find(c);
    cursors[c] = it == cursors_.end() ? 0 : it->second;
  }
  cursors_ = std::move(cursors);
  UpdateFullLocked();
  source_ = opts_.source.empty() ? stored_source : opts_.source;
  if (source_.empty() || !ValidSource(source_)) {
    source_ = NewSourceId();
  }
  if (source_ != stored_source) {
    TALLY_RETURN_IF_ERROR(store_.WriteState(
        [&](const Db& db, rocksdb::WriteBatch* batch) {
          batch->Put(db.outbox(), kOutboxSourceKey, source_);
          return Status::Ok();
        },
        nullptr));
  }
  return Status::Ok();
}

void OutboxStore::UpdateFullLocked() {
  if (opts_.full != nullptr && opts_.max_bytes > 0) {
    opts_.full->store(batch_bytes_ + dead_bytes_ > opts_.max_bytes, std::memory_order_relaxed);
  }
}

uint64_t OutboxStore::CursorLocked(const std::string& consumer) const {
  auto it = cursors_.find(consumer);
  return it == cursors_.end() ? 0 : it->second;
}

std::map<uint64_t, OutboxStore::BatchInfo>::const_iterator OutboxStore::HeadLocked(
    const std::string& consumer) const {
  const uint64_t cursor = CursorLocked(consumer);
  for (auto it = index_.begin(); it != index_.end(); ++it) {
    if (it->second.last > cursor &&
        (it->second.only_for.empty() || it->second.only_for == consumer)) {
      return it;
    }
  }
  return index_.end();
}

std::vector<uint64_t> OutboxStore::DeletableLocked(
    const std::map<std::string, uint64_t>& cursors) const {
  std::vector<uint64_t> out;
  for (const auto& [first, info] : index_) {
    bool needed = false;
    for (const auto& [consumer, cursor] : cursors) {
      needed |= (info.only_for.empty() || info.only_for == consumer) && info.last > cursor;
    }
    if (!needed) {
      out.push_back(first);
    }
  }
  return out;
}

StatusOr<std::optional<core::DeltaBatch>> OutboxStore::Peek(const std::string& consumer) const {
  uint64_t first = 0;
  BatchInfo info;
  {
    std::lock_guard lock(mu_);
    auto head = HeadLocked(consumer);
    if (head == index_.end()) {
      return std::optional<core::DeltaBatch>();
    }
    first = head->first;
    info = head->second;
  }
  // The head is never merged into (outbox_store.h), so reading it after the lock is safe.
  core::DeltaBatch batch;
  batch.source = source_;
  batch.first_sequence = first;
  batch.last_sequence = info.last;
  TALLY_RETURN_IF_ERROR(store_.ReadState([&](const Db& db, const rocksdb::Snapshot* snap) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::string value;
    rocksdb::Status s = db.rocks()->Get(ro, db.outbox(), OutboxBatchKey(first), &value);
    if (!s.ok()) {
      return FromRocks(s, "outbox: read batch " + std::to_string(first));
    }
    OutboxBatchHead head;
    return DecodeOutboxBatch(value, &head, &batch.deltas);
  }));
  return std::optional<core::DeltaBatch>(std::move(batch));
}

Status OutboxStore::Advance(const std::string& consumer, uint64_t last, const DeadLetterInfo* dead,
                            const std::vector<core::KeyDelta>* dead_deltas) {
  // The consumers are fixed at Open (opts_ is const): no lock needed to look.
  if (std::find(opts_.consumers.begin(), opts_.consumers.end(), consumer) ==
      opts_.consumers.end()) {
    return Status::InvalidArgument("outbox: unknown consumer '" + consumer + "'");
  }
  std::unique_lock lock(mu_, std::defer_lock);
  std::map<std::string, uint64_t> cursors;
  std::vector<uint64_t> deletable;
  Status s = store_.WriteState(
      [&](const Db& db, rocksdb::WriteBatch* batch) {
        lock.lock();  // the store's lock first, then ours (outbox_store.h)
        cursors = cursors_;
        cursors[consumer] = std::max(cursors[consumer], last);
        deletable = DeletableLocked(cursors);
        batch->Put(db.outbox(), OutboxCursorKey(consumer), Be64(cursors[consumer]));
        for (uint64_t first : deletable) {
          batch->Delete(db.outbox(), OutboxBatchKey(first));
        }
        if (dead != nullptr) {
          OutboxDeadHead head{dead->last_sequence, dead->created_at, dead->dead_at,
                              dead->http_status,   dead->reason,     dead_deltas->size()};
          batch->Put(db.outbox(), OutboxDeadKey(consumer, dead->id),
                     EncodeOutboxDead(head, *dead_deltas));
        }
        return Status::Ok();
      },
      [&] {
        cursors_ = cursors;
        for (uint64_t first : deletable) {
          batch_bytes_ -= index_[first].bytes;
          index_.erase(first);
        }
        if (dead != nullptr) {
          DeadLetterInfo d = *dead;
          d.bytes = EncodeOutboxDead({d.last_sequence, d.created_at, d.dead_at, d.http_status,
                                      d.reason, dead_deltas->size()},
                                     *dead_deltas)
                        .size();
          dead_bytes_ += d.bytes;
          dead_[{consumer, d.id}] = std::move(d);
        }
        UpdateFullLocked();
      });
  return s;
}

Status OutboxStore::Ack(const std::string& consumer, uint64_t last_sequence) {
  return Advance(consumer, last_sequence, nullptr, nullptr);
}

Status OutboxStore::DeadLetter(const std::string& consumer, const core::DeltaBatch& batch,
                               unsigned http_status, const std::string& reason) {
  DeadLetterInfo d;
  d.consumer = consumer;
  d.id = d.first_sequence = batch.first_sequence;
  d.last_sequence = batch.last_sequence;
  d.keys = batch.deltas.size();
  d.dead_at = core::UnixNowNs();
  d.http_status = http_status;
  d.reason = reason.substr(0, 512);
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(batch.first_sequence);
    d.created_at = it == index_.end() ? d.dead_at : it->second.created;
  }
  return Advance(consumer, batch.last_sequence, &d, &batch.deltas);
}

Status OutboxStore::RetryDead(const std::string& consumer, uint64_t id) {
  std::vector<core::KeyDelta> deltas;
  OutboxDeadHead dead;
  {
    std::lock_guard lock(mu_);
    if (!dead_.contains({consumer, id})) {
      return Status::NotFound("no dead letter " + std::to_string(id) + " for " + consumer);
    }
  }
  TALLY_RETURN_IF_ERROR(store_.ReadState([&](const Db& db, const rocksdb::Snapshot* snap) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::string value;
    rocksdb::Status s = db.rocks()->Get(ro, db.outbox(), OutboxDeadKey(consumer, id), &value);
    if (s.IsNotFound()) {
      return Status::NotFound("no dead letter " + std::to_string(id) + " for " + consumer);
    }
    if (!s.ok()) {
      return FromRocks(s, "outbox: read a dead letter");
    }
    return DecodeOutboxDead(value, &dead, &deltas);
  }));
  // Written back as batches of at most max_batch_keys keys (the cap may have been lowered
  // since: a batch refused as too big comes back cut), under the next sequences.
  std::unique_lock lock(mu_, std::defer_lock);
  uint64_t sequence = 0;
  std::vector<std::pair<uint64_t, BatchInfo>> parts;
  Status s = store_.WriteState(
      [&](const Db& db, rocksdb::WriteBatch* batch) {
        lock.lock();
        if (!dead_.contains({consumer, id})) {
          return Status::NotFound("no dead letter " + std::to_string(id) + " for " + consumer);
        }
        const size_t cap = std::max<size_t>(opts_.max_batch_keys, 1);
        sequence = last_sequence_;
        for (size_t at = 0; at == 0 || at < deltas.size(); at += cap) {
          const std::span<const core::KeyDelta> keys(deltas.data() + at,
                                                     std::min(cap, deltas.size() - at));
          ++sequence;
          std::string value =
              EncodeOutboxBatch({sequence, dead.created_at, consumer, keys.size()}, keys);
          parts.push_back({sequence, {sequence, consumer, value.size(), dead.created_at}});
          batch->Put(db.outbox(), OutboxBatchKey(sequence), value);
        }
        batch->Put(db.outbox(), kOutboxSequenceKey, Be64(sequence));
        batch->Delete(db.outbox(), OutboxDeadKey(consumer, id));
        return Status::Ok();
      },
      [&] {
        for (const auto& [first, info] : parts) {
          index_[first] = info;
          batch_bytes_ += info.bytes;
        }
        last_sequence_ = sequence;
        auto it = dead_.find({consumer, id});
        dead_bytes_ -= it->second.bytes;
        dead_.erase(it);
        UpdateFullLocked();
        ++wakes_;
        ready_.notify_all();
      });
  return s;
}

Status OutboxStore::DeleteDead(const std::string& consumer, uint64_t id) {
  std::unique_lock lock(mu_, std::defer_lock);
  return store_.WriteState(
      [&](const Db& db, rocksdb::WriteBatch* batch) {
        lock.lock();
        if (!dead_.contains({consumer, id})) {
          return Status::NotFound("no dead letter " + std::to_string(id) + " for " + consumer);
        }
        batch->Delete(db.outbox(), OutboxDeadKey(consumer, id));
        return Status::Ok();
      },
      [&] {
        auto it = dead_.find({consumer, id});
        dead_bytes_ -= it->second.bytes;
        dead_.erase(it);
        UpdateFullLocked();
      });
}

std::vector<DeadLetterInfo> OutboxStore::DeadLetters() const {
  std::lock_guard lock(mu_);
  std::vector<DeadLetterInfo> out;
  for (const auto& [key, d] : dead_) {
    out.push_back(d);
  }
  return out;
}

bool OutboxStore::WaitForBatch(const std::string& consumer, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const uint64_t wakes = wakes_;
  ready_.wait_for(lock, timeout,
                  [&] { return wakes_ != wakes || HeadLocked(consumer) != index_.end(); });
  return HeadLocked(consumer) != index_.end();
}

void OutboxStore::Wake() {
  std::lock_guard lock(mu_);
  ++wakes_;
  ready_.notify_all();
}

OutboxStats OutboxStore::stats() const {
  std::lock_guard lock(mu_);
  OutboxStats s;
  s.batches = index_.size();
  s.batch_bytes = batch_bytes_;
  for (const auto& [first, info] : index_) {
    if (s.oldest_created_at == 0 || info.created < s.oldest_created_at) {
      s.oldest_created_at = info.created;
    }
  }
  s.last_sequence = last_sequence_;
  s.dead_letters = dead_.size();
  s.dead_bytes = dead_bytes_;
  s.coalesced = coalesced_;
  return s;
}

uint64_t OutboxStore::bytes() const {
  std::lock_guard lock(mu_);
  return batch_bytes_ + dead_bytes_;
}

}  // namespace tally::persistence
