// Store: the atomic flush of counter deltas and the idempotent answers recorded with it.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <mutex>

#include "persistence/record_codec.h"
#include "persistence/store.h"
#include "persistence/store_internal.h"

namespace tally::persistence {
namespace {

using core::Status;
using core::StatusOr;

// Sorts and merges, so each key is written once even if the caller listed it twice. A merged
// count saturates at 2^64-1 (far past what any total can take, so it is refused whole).
void SortAndMerge(std::vector<core::KeyDelta>* deltas) {
  std::sort(deltas->begin(), deltas->end(),
            [](const core::KeyDelta& a, const core::KeyDelta& b) { return a.key < b.key; });
  size_t merged = 0;
  for (size_t i = 0; i < deltas->size(); ++i) {
    if (merged > 0 && (*deltas)[merged - 1].key == (*deltas)[i].key) {
      core::KeyDelta& into = (*deltas)[merged - 1];
      into.successes = core::SaturatingAdd(into.successes, (*deltas)[i].successes);
      into.failures = core::SaturatingAdd(into.failures, (*deltas)[i].failures);
    } else {
      (*deltas)[merged++] = (*deltas)[i];
    }
  }
  deltas->resize(merged);
}

}  // namespace

StatusOr<FlushResult> Store::ApplyFlush(std::vector<core::KeyDelta>* deltas,
                                        const FlushRules& rules) {
  return Flush(deltas, nullptr, nullptr, rules);
}

StatusOr<FlushResult> Store::ApplyFlush(
    std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
    const std::function<std::string(const FlushResult&)>& render, const FlushRules& rules) {
  if (answer == nullptr) {
    return Flush(deltas, nullptr, nullptr, rules);
  }
  if (answer->key.empty() || answer->key.size() > kMaxIdempotencyKeyBytes) {
    return Status::InvalidArgument("idempotency key must be 1 to " +
                                   std::to_string(kMaxIdempotencyKeyBytes) + " bytes");
  }
  return Flush(deltas, answer, &render, rules);
}

StatusOr<FlushResult> Store::Flush(std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
                                   const std::function<std::string(const FlushResult&)>* render,
                                   const FlushRules& rules) {
  SortAndMerge(deltas);

  std::unique_lock lock(mu_);
  const TimeNs now = Now();
  if (answer != nullptr) {
    auto found = idem_.find(answer->key);
    if (found != idem_.end() && found->second.written_at + options_.idempotency_ttl_ns > now) {
      return Status::Conflict("idempotency key already used; look up its answer");
    }
  }
  rocksdb::WriteBatch batch;
  FlushResult result;
  result.epoch = epoch_ + 1;

  // Stage the new totals; memory changes only after the batch is durable.
  struct Staged {
    KeyState* state;  // nullptr for a key created by this flush
    uint64_t key;
    core::Totals delta;
  };
  std::vector<Staged> staged;
  staged.reserve(deltas->size());
  std::unordered_map<uint64_t, core::Totals> group_deltas;
  std::string value;
  // The sum over every live key bounds every key's and every group's totals (all counts are
  // non-negative), so one check against it keeps all of them within 2^63-1 (FlushRules).
  core::Totals whole = WholeLocked();
  if (rules.all_or_nothing && rules.max_keys > 0) {
    size_t unknown = 0;
    for (const core::KeyDelta& d : *deltas) {
      unknown += d.key != 0 && d.key <= kMaxId && !keys_.contains(d.key) ? 1 : 0;
    }
    if (unknown > 0 && keys_.size() + unknown > rules.max_keys) {
      return Status::Refused("the flush would create " + std::to_string(unknown) +
                             " unknown keys; the store holds " + std::to_string(keys_.size()) +
                             " of at most " + std::to_string(rules.max_keys) +
                             " (--max-keys); nothing was applied");
    }
  }
  for (const core::KeyDelta& d : *deltas) {
    const uint64_t events = core::SaturatingAdd(d.successes, d.failures);
    if (d.key == 0 || d.key > kMaxId) {
      result.dropped_deleted = core::SaturatingAdd(result.dropped_deleted, events);
      continue;
    }
    auto it = keys_.find(d.key);
    KeyState* state = it == keys_.end() ? nullptr : &it->second;
    if (state != nullptr && !state->live) {
      result.dropped_deleted = core::SaturatingAdd(result.dropped_deleted, events);
      continue;
    }
    if (!whole.CanAdd(d.successes, d.failures)) {
      if (rules.all_or_nothing) {
        return Status::Refused("api_key_id " + std::to_string(d.key) +
                               ": the flush would take a total past 2^63-1; nothing was applied");
      }
      result.dropped_overflow = core::SaturatingAdd(result.dropped_overflow, events);
      continue;
    }
    core::Totals delta;
    delta.Add(static_cast<int64_t>(d.successes), static_cast<int64_t>(d.failures));
    whole += delta;
    core::Totals next = delta;
    uint64_t group_id = kUnassignedGroup;
    if (state == nullptr) {
      ApiKey created;
      created.id = d.key;
      created.created_at = now;
      created.updated_at = now;
      batch.Put(keys_cf_, IdKey(d.key), EncodeKey(created));
      ++result.keys_created;
    } else {
      next += state->totals;
      group_id = state->group_id;
    }
    EncodeTotals(next, &value);
    batch.Put(totals_cf_, IdKey(d.key), value);
    group_deltas[group_id] += delta;
    staged.push_back({state, d.key, delta});
  }
  for (const auto& [group_id, delta] : group_deltas) {
    if (group_id == kUnassignedGroup) {
      continue;
    }
    ProviderGroup next = groups_.at(group_id);
    next.totals += delta;
    batch.Put(groups_cf_, IdKey(group_id), EncodeGroup(next));
    ++result.groups_updated;
  }
  batch.Put(meta_cf_, kEpochKey, IdKey(result.epoch));
  result.keys_updated = staged.size();

  // Purge before recording the answer, so a reused expired key is deleted, then rewritten.
  size_t purged = PurgeExpiredLocked(now, &batch);
  if (answer != nullptr) {
    if (*render) {
      answer->response = (*render)(result);
    }
    batch.Put(meta_cf_, kIdempotentPrefix + answer->key,
              EncodeIdempotent(now, answer->request_digest, answer->response));
  }

  if (Status s = Write(&batch); !s.ok()) {
    return s;
  }

  for (const Staged& s : staged) {
    KeyState* state = s.state;
    if (state == nullptr) {
      state = &keys_[s.key];
      max_key_id_ = std::max(max_key_id_, s.key);
    }
    state->totals += s.delta;
  }
  for (const auto& [group_id, delta] : group_deltas) {
    *GroupTotalsLocked(group_id) += delta;
  }
  epoch_ = result.epoch;
  ForgetIdempotentLocked(purged);
  if (answer != nullptr) {
    idem_[answer->key] = IdemEntry{now};
    idem_order_.emplace_back(now, answer->key);
  }
  return result;
}

std::optional<IdempotentAnswer> Store::LookupIdempotent(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto found = idem_.find(key);
  if (found == idem_.end() || found->second.written_at + options_.idempotency_ttl_ns <= Now()) {
    return std::nullopt;
  }
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), meta_cf_, kIdempotentPrefix + key, &value).ok()) {
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

size_t Store::idempotent_answers() const {
  std::shared_lock lock(mu_);
  const TimeNs now = Now();
  size_t n = 0;
  for (const auto& [key, e] : idem_) {
    n += e.written_at + options_.idempotency_ttl_ns > now ? 1 : 0;
  }
  return n;
}

size_t Store::PurgeExpiredLocked(TimeNs now, rocksdb::WriteBatch* batch) const {
  size_t n = 0;
  size_t deleted = 0;
  while (n < idem_order_.size() && deleted < options_.idempotency_purge_per_flush) {
    const auto& [written_at, key] = idem_order_[n];
    if (written_at + options_.idempotency_ttl_ns > now) {
      break;
    }
    auto found = idem_.find(key);
    // An order entry is stale when its key was rewritten later; the newer entry stays.
    if (found != idem_.end() && found->second.written_at == written_at) {
      batch->Delete(meta_cf_, kIdempotentPrefix + key);
      ++deleted;
    }
    ++n;
  }
  return n;
}

void Store::ForgetIdempotentLocked(size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const auto& [written_at, key] = idem_order_.front();
    auto found = idem_.find(key);
    if (found != idem_.end() && found->second.written_at == written_at) {
      idem_.erase(found);
    }
    idem_order_.pop_front();
  }
}

Status Store::LoadIdempotent() {
  const std::string prefix = kIdempotentPrefix;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    IdemEntry e;
    std::string digest;
    std::string response;
    if (Status s = DecodeIdempotent(it->value().ToStringView(), &e.written_at, &digest, &response);
        !s.ok()) {
      return Status::Corruption("idempotent answer " + it->key().ToString() + ": " + s.message());
    }
    std::string key = it->key().ToString().substr(prefix.size());
    idem_order_.emplace_back(e.written_at, key);
    idem_[std::move(key)] = e;
  }
  std::sort(idem_order_.begin(), idem_order_.end());
  return FromRocks(it->status(), "reading idempotent answers");
}

}  // namespace tally::persistence
