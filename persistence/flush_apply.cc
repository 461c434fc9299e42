// Store: the atomic flush of counter deltas and the idempotent answers recorded with it.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <mutex>

#include "core/key_delta.h"
#include "core/totals.h"
#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/record_rules.h"
#include "persistence/store.h"

namespace tally::persistence {
using core::Status;
using core::StatusOr;

void Store::AddParticipant(FlushParticipant* participant) {
  std::unique_lock lock(mu_);
  participants_.push_back(participant);
}

Status Store::AddKeyObserver(KeyObserver* observer) {
  std::unique_lock lock(mu_);
  TALLY_RETURN_IF_ERROR(db_->CheckOpen());
  TALLY_RETURN_IF_ERROR(observer->Load(*db_));
  key_observers_.push_back(observer);
  return Status::Ok();
}

Status Store::WriteAside(const std::function<Status(const Db&, rocksdb::WriteBatch*)>& stage,
                         const std::function<void()>& commit) {
  std::unique_lock lock(mu_);
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());  // before the batch takes the handles
  rocksdb::WriteBatch batch;
  TALLY_RETURN_IF_ERROR(stage(*db_, &batch));
  TALLY_RETURN_IF_ERROR(db_->Write(&batch));
  commit();
  return Status::Ok();
}

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
  TALLY_RETURN_IF_ERROR(IdempotencyStore::CheckKey(answer->key));
  return Flush(deltas, answer, &render, rules);
}

StatusOr<FlushResult> Store::Flush(std::vector<core::KeyDelta>* deltas, IdempotentAnswer* answer,
                                   const std::function<std::string(const FlushResult&)>* render,
                                   const FlushRules& rules) {
  core::SortAndMergeDeltas(deltas);  // each key written once, even if listed twice

  std::unique_lock lock(mu_);
  const TimeNs now = Now();
  if (answer != nullptr && idem_.Unexpired(answer->key, now)) {
    return Status::Conflict("idempotency key already used; look up its answer");
  }
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());  // before the batch takes the handles
  // About 18 bytes per key's totals record (more for a created key or a participant's
  // records): reserved at once, the batch is not copied as it grows.
  rocksdb::WriteBatch batch(deltas->size() * 24 + 4096);
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
  std::vector<AppliedDelta> applied;
  if (!participants_.empty()) {
    applied.reserve(deltas->size());
  }
  std::unordered_map<uint64_t, core::Totals> group_deltas;
  std::string value;
  // The sum over every live key bounds every key's and every group's totals (all counts are
  // non-negative), so one check against it keeps all of them within 2^63-1 (FlushRules).
  core::Totals whole = WholeLocked();
  if (rules.all_or_nothing && rules.max_keys > 0) {
    size_t unknown = 0;
    for (const core::KeyDelta& d : *deltas) {
      unknown += IdInRange(d.key) && !keys_.contains(d.key) ? 1 : 0;
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
    if (!IdInRange(d.key)) {
      result.dropped_deleted = core::SaturatingAdd(result.dropped_deleted, events);
      continue;
    }
    auto it = keys_.find(d.key);
    KeyState* state = it == keys_.end() ? nullptr : &it->second;
    if (state != nullptr && !state->live) {
      result.dropped_deleted = core::SaturatingAdd(result.dropped_deleted, events);
      result.deleted_keys.push_back(d.key);
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
      batch.Put(db_->keys(), IdKey(d.key), EncodeKey(created));
      ++result.keys_created;
    } else {
      next += state->totals;
      group_id = state->group_id;
    }
    EncodeTotals(next, &value);
    batch.Put(db_->totals(), IdKey(d.key), value);
    group_deltas[group_id] += delta;
    staged.push_back({state, d.key, delta});
    if (!participants_.empty()) {
      applied.push_back({d.key, group_id, delta, state == nullptr});
    }
  }
  for (const auto& [group_id, delta] : group_deltas) {
    if (group_id == kUnassignedGroup) {
      continue;
    }
    ProviderGroup next = groups_.at(group_id);
    next.totals += delta;
    batch.Put(db_->groups(), IdKey(group_id), EncodeGroup(next));
    ++result.groups_updated;
  }
  batch.Put(db_->meta(), kEpochKey, IdKey(result.epoch));
  result.keys_updated = staged.size();

  // Purge before recording the answer, so a reused expired key is deleted, then rewritten.
  size_t purged = idem_.PurgeExpired(now, &batch);
  if (answer != nullptr) {
    if (*render) {
      answer->response = (*render)(result);
    }
    idem_.Put(now, *answer, &batch);
  }

  const FlushView view{now,     result.epoch, rules.all_or_nothing,
                       applied, db_.get(),    rules.source ? &*rules.source : nullptr};
  for (size_t i = 0; i < participants_.size(); ++i) {
    if (Status s = participants_[i]->Stage(view, &batch); !s.ok()) {
      for (size_t j = 0; j <= i; ++j) {
        participants_[j]->Abort();
      }
      return s;
    }
  }
  if (Status s = db_->Write(&batch); !s.ok()) {
    for (FlushParticipant* p : participants_) {
      p->Abort();
    }
    return s;
  }
  for (FlushParticipant* p : participants_) {
    p->Commit(view);
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
  idem_.Forget(purged);
  if (answer != nullptr) {
    idem_.Remember(answer->key, now);
  }
  return result;
}

Status Store::ReadState(
    const std::function<Status(const Db& db, const rocksdb::Snapshot* snapshot)>& read) const {
  Db::ReadView view = db_->Read();
  TALLY_RETURN_IF_ERROR(db_->CheckOpen());
  if (view.snapshot() == nullptr) {
    return Status::IoError("the database is closed");
  }
  return read(*db_, view.snapshot());
}

Status Store::WriteState(const std::function<Status(const Db& db, rocksdb::WriteBatch*)>& build,
                         const std::function<void()>& commit) {
  std::unique_lock lock(mu_);
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());
  rocksdb::WriteBatch batch;
  TALLY_RETURN_IF_ERROR(build(*db_, &batch));
  TALLY_RETURN_IF_ERROR(db_->Write(&batch));
  if (commit) {
    commit();
  }
  return Status::Ok();
}

std::optional<IdempotentAnswer> Store::LookupIdempotent(const std::string& key) const {
  std::shared_lock lock(mu_);
  return idem_.Lookup(key, Now());
}

size_t Store::idempotent_answers() const {
  std::shared_lock lock(mu_);
  return idem_.CountUnexpired(Now());
}

}  // namespace tally::persistence
