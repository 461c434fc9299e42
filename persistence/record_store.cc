// Store: the admin operations on ProviderGroup and ApiKey records (the rules they follow:
// record_rules.h).
//
// Every change is one synced WriteBatch that keeps the invariant: moving a key rewrites both
// groups' totals, deleting a key takes its totals out of its group. Memory changes only
// after the batch is written.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <limits>
#include <mutex>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/record_rules.h"
#include "persistence/store.h"

namespace tally::persistence {
using core::Status;
using core::StatusOr;

namespace {

bool Live(const ProviderGroup& g) { return g.live(); }
template <typename State>
bool Live(const State& key_state) {
  return key_state.live;
}

// The id a create gets: `requested`, or when it is 0 the lowest id no record in `taken` has
// ever held, deleted ones included. Since ids are never freed, that answer never decreases:
// `*cursor` advances past taken ids, O(1) amortized. InvalidArgument out of 1..2^63-1;
// Conflict when taken (deleted records keep their ids); Refused once every id is taken.
template <typename Map>
StatusOr<uint64_t> IdForCreate(uint64_t requested, const Map& taken, uint64_t* cursor,
                               const std::string& kind,
                               const std::function<bool(uint64_t)>& seen = nullptr) {
  if (requested == 0) {
    while (*cursor <= core::kMaxId && (taken.contains(*cursor) || (seen && seen(*cursor)))) {
      ++*cursor;
    }
    if (*cursor > core::kMaxId) {
      return Status::Refused("no free " + kind + " id");
    }
    return *cursor;
  }
  TALLY_RETURN_IF_ERROR(CheckId(requested));
  if (auto it = taken.find(requested); it != taken.end()) {
    return Status::Conflict(kind + " " + std::to_string(requested) +
                            (Live(it->second) ? " exists" : " was deleted; ids are not reused"));
  }
  return requested;
}

}  // namespace

StatusOr<ProviderGroup> Store::GetGroup(uint64_t id) const {
  std::shared_lock lock(mu_);
  auto it = groups_.find(id);
  if (it == groups_.end() || !it->second.live()) {
    return Status::NotFound("no " + GroupName(id));
  }
  return it->second;
}

std::vector<ProviderGroup> Store::ListGroups() const {
  std::shared_lock lock(mu_);
  std::vector<ProviderGroup> out;
  for (const auto& [id, g] : groups_) {
    if (g.live()) {
      out.push_back(g);
    }
  }
  return out;
}

StatusOr<ProviderGroup> Store::CreateGroup(ProviderGroup g) {
  std::unique_lock lock(mu_);
  StatusOr<uint64_t> id = IdForCreate(g.id, groups_, &free_group_cursor_, "provider group");
  if (!id.ok()) {
    return id.status();
  }
  g.id = *id;
  return WriteGroupLocked(std::move(g), /*create=*/true);
}

StatusOr<ProviderGroup> Store::PutGroup(ProviderGroup g) {
  std::unique_lock lock(mu_);
  TALLY_RETURN_IF_ERROR(CheckId(g.id));
  auto it = groups_.find(g.id);
  if (it != groups_.end() && !it->second.live()) {
    return Status::Conflict(GroupName(g.id) + " was deleted; ids are not reused");
  }
  return WriteGroupLocked(std::move(g), /*create=*/it == groups_.end());
}

Status Store::CheckGroupNameLocked(const ProviderGroup& g) const {
  for (const auto& [id, other] : groups_) {
    if (id != g.id && other.live() && other.name == g.name) {
      return Status::Conflict("a provider group named \"" + g.name + "\" exists (id " +
                              std::to_string(id) + ")");
    }
  }
  return Status::Ok();
}

StatusOr<ProviderGroup> Store::WriteGroupLocked(ProviderGroup g, bool create) {
  TALLY_RETURN_IF_ERROR(ValidateGroup(&g));
  TALLY_RETURN_IF_ERROR(CheckGroupNameLocked(g));
  const TimeNs now = Now();
  if (create) {
    g.created_at = now;
    g.totals = {};  // no key can name a group before it exists
  } else {
    const ProviderGroup& old = groups_.at(g.id);
    g.created_at = old.created_at;
    g.totals = old.totals;
  }
  g.updated_at = now;
  g.deleted_at.reset();
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());  // before the batch takes the handles
  rocksdb::WriteBatch batch;
  batch.Put(db_->groups(), IdKey(g.id), EncodeGroup(g));
  TALLY_RETURN_IF_ERROR(db_->Write(&batch));
  groups_[g.id] = g;
  return g;
}

Status Store::DeleteGroup(uint64_t id) {
  std::unique_lock lock(mu_);
  auto it = groups_.find(id);
  if (it == groups_.end() || !it->second.live()) {
    return Status::NotFound("no " + GroupName(id));
  }
  size_t live = 0;
  for (const auto& [key_id, k] : keys_) {
    live += k.live && k.group_id == id ? 1 : 0;
  }
  if (live > 0) {
    return Status::Conflict(GroupName(id) + " has " + std::to_string(live) +
                            " live api keys; move or delete them first");
  }
  ProviderGroup g = it->second;
  g.updated_at = Now();
  g.deleted_at = g.updated_at;
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());
  rocksdb::WriteBatch batch;
  batch.Put(db_->groups(), IdKey(id), EncodeGroup(g));
  TALLY_RETURN_IF_ERROR(db_->Write(&batch));
  it->second = std::move(g);
  return Status::Ok();
}

StatusOr<ApiKey> Store::ReadKeyLocked(uint64_t id) const {
  auto state = keys_.find(id);
  if (state == keys_.end()) {
    return Status::NotFound("no " + KeyName(id));
  }
  TALLY_RETURN_IF_ERROR(db_->CheckOpen());
  std::string value;
  rocksdb::Status rs = db_->rocks()->Get(rocksdb::ReadOptions(), db_->keys(), IdKey(id), &value);
  if (!rs.ok()) {
    return FromRocks(rs, "reading " + KeyName(id));
  }
  ApiKey k;
  TALLY_RETURN_IF_ERROR(DecodeKey(value, &k));
  k.totals = state->second.totals;
  return k;
}

StatusOr<ApiKey> Store::GetKey(uint64_t id) const {
  std::shared_lock lock(mu_);
  auto state = keys_.find(id);
  if (state == keys_.end() || !state->second.live) {
    return Status::NotFound("no " + KeyName(id));
  }
  return ReadKeyLocked(id);
}

StatusOr<std::vector<ApiKey>> Store::ListKeys(std::optional<uint64_t> group_id,
                                              std::optional<std::string> status) const {
  return ListKeysPage(0, std::numeric_limits<size_t>::max(), group_id, status);
}

std::vector<ProviderGroup> Store::ListGroupsPage(uint64_t after_id, size_t limit,
                                                 const std::optional<std::string>& status) const {
  std::shared_lock lock(mu_);
  std::vector<ProviderGroup> out;
  for (auto it = groups_.upper_bound(after_id); it != groups_.end() && out.size() < limit; ++it) {
    if (it->second.live() && (!status || it->second.status == *status)) {
      out.push_back(it->second);
    }
  }
  return out;
}

StatusOr<std::vector<ApiKey>> Store::ListKeysPage(uint64_t after_id, size_t limit,
                                                  std::optional<uint64_t> group_id,
                                                  const std::optional<std::string>& status) const {
  std::vector<ApiKey> out;
  if (after_id >= core::kMaxId || limit == 0) {
    return out;
  }
  // Taken under the lock, the snapshot is the state after some completed write, when disk
  // equals memory; the scan then runs without the lock, so writers are not held up.
  // The view also keeps the database open (no reopen, db.h) until the scan is done.
  Db::ReadView view;
  {
    std::shared_lock lock(mu_);
    view = db_->Read();
  }
  TALLY_RETURN_IF_ERROR(db_->CheckOpen());
  rocksdb::ReadOptions read;
  read.snapshot = view.snapshot();
  read.fill_cache = false;  // a bulk scan
  std::unique_ptr<rocksdb::Iterator> it(db_->rocks()->NewIterator(read, db_->keys()));
  // Totals come from the same snapshot, in the same id order: a merge join.
  std::unique_ptr<rocksdb::Iterator> totals(db_->rocks()->NewIterator(read, db_->totals()));
  const std::string first = IdKey(after_id + 1);
  totals->Seek(first);
  for (it->Seek(first); it->Valid() && out.size() < limit; it->Next()) {
    ApiKey k;
    if (Status s = DecodeKey(it->value().ToStringView(), &k); !s.ok()) {
      return Status::Corruption(KeyName(IdFromKey(it->key().ToStringView())) + ": " + s.message());
    }
    if (!k.live() || (group_id && k.group_id != *group_id) || (status && k.status != *status)) {
      continue;
    }
    const std::string id = IdKey(k.id);
    while (totals->Valid() && totals->key().compare(id) < 0) {
      totals->Next();
    }
    if (totals->Valid() && totals->key() == id) {
      if (Status s = DecodeTotals(totals->value().ToStringView(), &k.totals); !s.ok()) {
        return Status::Corruption("totals of " + KeyName(k.id) + ": " + s.message());
      }
    }
    TALLY_RETURN_IF_ERROR(FromRocks(totals->status(), "listing api key totals"));
    out.push_back(std::move(k));
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "listing api keys"));
  return out;
}

StatusOr<ApiKey> Store::CreateKey(ApiKey k) { return CreateKey(std::move(k), nullptr); }

StatusOr<ApiKey> Store::CreateKey(ApiKey k, const std::function<bool(uint64_t id)>& seen) {
  std::unique_lock lock(mu_);
  StatusOr<uint64_t> id = IdForCreate(k.id, keys_, &free_key_cursor_, "api key", seen);
  if (!id.ok()) {
    return id.status();
  }
  k.id = *id;
  return WriteKeyLocked(std::move(k), /*create=*/true);
}

StatusOr<ApiKey> Store::PutKey(ApiKey k) {
  std::unique_lock lock(mu_);
  TALLY_RETURN_IF_ERROR(CheckId(k.id));
  auto it = keys_.find(k.id);
  if (it != keys_.end() && !it->second.live) {
    return Status::Conflict(KeyName(k.id) + " was deleted; ids are not reused");
  }
  return WriteKeyLocked(std::move(k), /*create=*/it == keys_.end());
}

StatusOr<ApiKey> Store::UnbanKey(uint64_t id) {
  std::unique_lock lock(mu_);
  StatusOr<ApiKey> k = ReadKeyLocked(id);
  if (!k.ok()) {
    return k.status();
  }
  k->status = kDefaultStatus;
  k->ban_reason.clear();
  k->ban_until.reset();
  return WriteKeyLocked(std::move(k).value(), /*create=*/false, /*validate=*/false);
}

StatusOr<ApiKey> Store::WriteKeyLocked(ApiKey k, bool create, bool validate) {
  if (validate) {
    TALLY_RETURN_IF_ERROR(ValidateKey(&k));
  }
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());  // before the batch takes the handles
  if (k.group_id != kUnassignedGroup) {
    auto g = groups_.find(k.group_id);
    if (g == groups_.end() || !g->second.live()) {
      return Status::InvalidArgument("group_id " + std::to_string(k.group_id) +
                                     " names no provider group");
    }
  }
  const TimeNs now = Now();
  uint64_t old_group = k.group_id;
  std::optional<ApiKey> old_key;  // for the key observers
  if (create) {
    k.created_at = now;
    k.totals = {};
  } else {
    StatusOr<ApiKey> old = ReadKeyLocked(k.id);
    if (!old.ok()) {
      return old.status();
    }
    k.created_at = old->created_at;
    k.totals = old->totals;
    old_group = old->group_id;
    old_key = std::move(old).value();
  }
  k.updated_at = now;
  k.deleted_at.reset();
  rocksdb::WriteBatch batch;
  batch.Put(db_->keys(), IdKey(k.id), EncodeKey(k));
  const bool moved = old_group != k.group_id && !(k.totals == core::Totals{});
  if (moved) {
    // The totals move with the key, in the same batch.
    for (auto [gid, sign] : {std::pair{old_group, -1}, std::pair{k.group_id, 1}}) {
      if (gid == kUnassignedGroup) {
        continue;
      }
      ProviderGroup g = groups_.at(gid);
      if (sign < 0) {
        g.totals -= k.totals;
      } else {
        g.totals += k.totals;
      }
      batch.Put(db_->groups(), IdKey(gid), EncodeGroup(g));
    }
  }
  TALLY_RETURN_IF_ERROR(WriteKeyBatchLocked(old_key ? &*old_key : nullptr, k, now, &batch));
  if (moved) {
    *GroupTotalsLocked(old_group) -= k.totals;
    *GroupTotalsLocked(k.group_id) += k.totals;
  }
  keys_[k.id] = KeyState{k.group_id, k.totals, true};
  max_key_id_ = std::max(max_key_id_, k.id);
  return k;
}

Status Store::WriteKeyBatchLocked(const ApiKey* old, const ApiKey& next, TimeNs now,
                                  rocksdb::WriteBatch* batch) {
  for (KeyObserver* o : key_observers_) {
    o->StageKeyWrite(old, next, now, *db_, batch);
  }
  if (Status s = db_->Write(batch); !s.ok()) {
    for (KeyObserver* o : key_observers_) {
      o->AbortKeyWrite();
    }
    return s;
  }
  for (KeyObserver* o : key_observers_) {
    o->CommitKeyWrite();
  }
  return Status::Ok();
}

Status Store::DeleteKey(uint64_t id) {
  std::unique_lock lock(mu_);
  auto state = keys_.find(id);
  if (state == keys_.end() || !state->second.live) {
    return Status::NotFound("no " + KeyName(id));
  }
  TALLY_RETURN_IF_ERROR(db_->PrepareWrite());
  StatusOr<ApiKey> k = ReadKeyLocked(id);
  if (!k.ok()) {
    return k.status();
  }
  k->updated_at = Now();
  k->deleted_at = k->updated_at;
  rocksdb::WriteBatch batch;
  batch.Put(db_->keys(), IdKey(id), EncodeKey(*k));
  if (k->group_id != kUnassignedGroup) {
    ProviderGroup g = groups_.at(k->group_id);
    g.totals -= k->totals;
    batch.Put(db_->groups(), IdKey(g.id), EncodeGroup(g));
  }
  ApiKey old = *k;
  old.deleted_at.reset();
  TALLY_RETURN_IF_ERROR(WriteKeyBatchLocked(&old, *k, k->updated_at, &batch));
  *GroupTotalsLocked(k->group_id) -= k->totals;
  state->second.live = false;
  return Status::Ok();
}

}  // namespace tally::persistence
