// OutboxStore's writing side: the FlushParticipant that stages each flush's batches, and
// the coalescing of the never-sent suffix (outbox_store.h).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <span>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/outbox_codec.h"
#include "persistence/outbox_store.h"

namespace tally::persistence {
using core::Status;

std::map<uint64_t, OutboxStore::BatchInfo>::const_iterator OutboxStore::SuffixLocked() const {
  uint64_t last_head = 0;  // the heads' highest first_sequence (0: no consumer has a head)
  for (const auto& [consumer, cursor] : cursors_) {
    auto head = HeadLocked(consumer);
    if (head != index_.end()) {
      last_head = std::max(last_head, head->first);
    }
  }
  auto start = index_.end();
  while (start != index_.begin()) {
    auto before = std::prev(start);
    if (!before->second.only_for.empty() || before->first <= last_head) {
      break;
    }
    start = before;
  }
  return start;
}

Status OutboxStore::Stage(const FlushView& flush, rocksdb::WriteBatch* batch) {
  flush_lock_ = std::unique_lock(mu_);  // until Commit or Abort
  staged_ = Staged{};
  if (flush.applied.empty()) {
    return Status::Ok();  // nothing applied, nothing to forward
  }
  std::vector<core::KeyDelta> deltas;
  deltas.reserve(flush.applied.size());
  for (const AppliedDelta& a : flush.applied) {  // in key order (flush_participant.h)
    deltas.push_back(
        {a.key, static_cast<uint64_t>(a.delta.success), static_cast<uint64_t>(a.delta.failure)});
  }
  uint64_t first = last_sequence_ + 1;
  TimeNs created = flush.now;
  auto suffix = SuffixLocked();
  if (index_.size() >= opts_.coalesce_after && suffix != index_.end()) {
    std::vector<core::KeyDelta> held;  // the suffix's deltas
    for (auto it = suffix; it != index_.end(); ++it) {
      std::string value;
      rocksdb::Status s = flush.db->rocks()->Get(rocksdb::ReadOptions(), flush.db->outbox(),
                                                 OutboxBatchKey(it->first), &value);
      if (!s.ok()) {
        return FromRocks(s, "outbox: read a never-sent batch");
      }
      OutboxBatchHead head;
      std::vector<core::KeyDelta> part;
      TALLY_RETURN_IF_ERROR(DecodeOutboxBatch(value, &head, &part));
      held.insert(held.end(), part.begin(), part.end());
      staged_.replaced.push_back(it->first);
      created = std::min(created, it->second.created);
    }
    held.insert(held.end(), deltas.begin(), deltas.end());
    core::SortAndMergeDeltas(&held);
    deltas = std::move(held);
    first = suffix->first;
    staged_.merged = true;
  }
  // Batches of at most max_batch_keys keys, one sequence each, the last taking the rest.
  const size_t cap = std::max<size_t>(opts_.max_batch_keys, 1);
  const size_t parts = (deltas.size() + cap - 1) / cap;
  staged_.sequence = std::max(last_sequence_ + 1, first + parts - 1);
  for (size_t i = 0; i < parts; ++i) {
    const uint64_t part_first = first + i;
    const uint64_t part_last = i + 1 == parts ? staged_.sequence : part_first;
    const std::span<const core::KeyDelta> keys(deltas.data() + i * cap,
                                               std::min(cap, deltas.size() - i * cap));
    std::string value = EncodeOutboxBatch({part_last, created, "", keys.size()}, keys);
    staged_.parts.push_back({part_first, {part_last, "", value.size(), created}});
    batch->Put(flush.db->outbox(), OutboxBatchKey(part_first), value);
  }
  for (uint64_t old : staged_.replaced) {
    if (old >= first + parts) {  // not overwritten by a part above
      batch->Delete(flush.db->outbox(), OutboxBatchKey(old));
    }
  }
  batch->Put(flush.db->outbox(), kOutboxSequenceKey, Be64(staged_.sequence));
  staged_.active = true;
  return Status::Ok();
}

void OutboxStore::Commit(const FlushView& /*flush*/) {
  if (staged_.active) {
    for (uint64_t old : staged_.replaced) {
      batch_bytes_ -= index_[old].bytes;
      index_.erase(old);
    }
    for (const auto& [part_first, info] : staged_.parts) {
      index_[part_first] = info;
      batch_bytes_ += info.bytes;
    }
    coalesced_ += staged_.merged ? 1 : 0;
    last_sequence_ = staged_.sequence;
    UpdateFullLocked();
    ready_.notify_all();
  }
  staged_ = Staged{};
  if (flush_lock_.owns_lock()) {
    flush_lock_.unlock();
  }
}

void OutboxStore::Abort() {
  staged_ = Staged{};
  if (flush_lock_.owns_lock()) {
    flush_lock_.unlock();
  }
}

}  // namespace tally::persistence
