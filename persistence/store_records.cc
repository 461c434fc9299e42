// Store: the admin operations on ProviderGroup and ApiKey records, and Verify().
//
// Every change is one synced WriteBatch that keeps the invariant: moving a key rewrites both
// groups' totals, deleting a key takes its totals out of its group. Memory changes only
// after the batch is written.
#include <limits>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <map>
#include <mutex>

#include "persistence/record_codec.h"
#include "persistence/store.h"
#include "persistence/store_internal.h"

namespace tally::persistence {
namespace {

using core::Status;
using core::StatusOr;

std::string GroupName(uint64_t id) { return "provider group " + std::to_string(id); }
std::string KeyName(uint64_t id) { return "api key " + std::to_string(id); }

Status ValidateGroup(ProviderGroup* g) {
  if (g->name.empty()) {
    return Status::InvalidArgument("name is required");
  }
  if (g->type.empty()) {
    return Status::InvalidArgument("type is required");
  }
  if (g->base_url.empty()) {
    return Status::InvalidArgument("base_url is required");
  }
  if (g->status.empty()) {
    g->status = "active";
  }
  return Status::Ok();
}

Status ValidateKey(ApiKey* k) {
  if (k->api_key.empty()) {
    return Status::InvalidArgument("api_key is required");
  }
  if (k->weight < 0) {
    return Status::InvalidArgument("weight must not be negative");
  }
  if (k->status.empty()) {
    k->status = "active";
  }
  return Status::Ok();
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
  if (g.id == 0) {
    StatusOr<uint64_t> id = NextFreeGroupIdLocked();
    if (!id.ok()) {
      return id.status();
    }
    g.id = *id;
  } else if (g.id > kMaxId) {
    return Status::InvalidArgument("id must be 1 to 2^63-1");
  } else if (auto it = groups_.find(g.id); it != groups_.end()) {
    return Status::Conflict(GroupName(g.id) +
                            (it->second.live() ? " exists" : " was deleted; ids are not reused"));
  }
  return WriteGroupLocked(std::move(g), /*create=*/true);
}

StatusOr<uint64_t> Store::NextFreeGroupIdLocked() {
  while (free_group_cursor_ <= kMaxId && groups_.contains(free_group_cursor_)) {
    ++free_group_cursor_;
  }
  if (free_group_cursor_ > kMaxId) {
    return Status::Refused("no free provider group id");
  }
  return free_group_cursor_;
}

StatusOr<ProviderGroup> Store::PutGroup(ProviderGroup g) {
  std::unique_lock lock(mu_);
  if (g.id == 0 || g.id > kMaxId) {
    return Status::InvalidArgument("id must be 1 to 2^63-1");
  }
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
  if (Status s = ValidateGroup(&g); !s.ok()) {
    return s;
  }
  if (Status s = CheckGroupNameLocked(g); !s.ok()) {
    return s;
  }
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
  rocksdb::WriteBatch batch;
  batch.Put(groups_cf_, IdKey(g.id), EncodeGroup(g));
  if (Status s = Write(&batch); !s.ok()) {
    return s;
  }
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
  rocksdb::WriteBatch batch;
  batch.Put(groups_cf_, IdKey(id), EncodeGroup(g));
  if (Status s = Write(&batch); !s.ok()) {
    return s;
  }
  it->second = std::move(g);
  return Status::Ok();
}

StatusOr<ApiKey> Store::ReadKeyLocked(uint64_t id) const {
  auto state = keys_.find(id);
  if (state == keys_.end()) {
    return Status::NotFound("no " + KeyName(id));
  }
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), keys_cf_, IdKey(id), &value);
  if (!rs.ok()) {
    return FromRocks(rs, "reading " + KeyName(id));
  }
  ApiKey k;
  if (Status s = DecodeKey(value, &k); !s.ok()) {
    return s;
  }
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
  if (after_id >= kMaxId || limit == 0) {
    return out;
  }
  // Taken under the lock, the snapshot is the state after some completed write, when disk
  // equals memory; the scan then runs without the lock, so writers are not held up.
  const rocksdb::Snapshot* raw = nullptr;
  {
    std::shared_lock lock(mu_);
    raw = db_->GetSnapshot();
  }
  auto release = [this](const rocksdb::Snapshot* s) { db_->ReleaseSnapshot(s); };
  std::unique_ptr<const rocksdb::Snapshot, decltype(release)> snapshot(raw, release);
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.get();
  read.fill_cache = false;  // a bulk scan
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, keys_cf_));
  // Totals come from the same snapshot, in the same id order: a merge join.
  std::unique_ptr<rocksdb::Iterator> totals(db_->NewIterator(read, totals_cf_));
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
    if (Status s = FromRocks(totals->status(), "listing api key totals"); !s.ok()) {
      return s;
    }
    out.push_back(std::move(k));
  }
  if (Status s = FromRocks(it->status(), "listing api keys"); !s.ok()) {
    return s;
  }
  return out;
}

StatusOr<ApiKey> Store::CreateKey(ApiKey k) {
  std::unique_lock lock(mu_);
  if (k.id == 0) {
    StatusOr<uint64_t> id = NextFreeKeyIdLocked();
    if (!id.ok()) {
      return id.status();
    }
    k.id = *id;
  } else if (k.id > kMaxId) {
    return Status::InvalidArgument("id must be 1 to 2^63-1");
  } else if (auto it = keys_.find(k.id); it != keys_.end()) {
    return Status::Conflict(KeyName(k.id) +
                            (it->second.live ? " exists" : " was deleted; ids are not reused"));
  }
  return WriteKeyLocked(std::move(k), /*create=*/true);
}

StatusOr<uint64_t> Store::NextFreeKeyIdLocked() {
  while (free_key_cursor_ <= kMaxId && keys_.contains(free_key_cursor_)) {
    ++free_key_cursor_;
  }
  if (free_key_cursor_ > kMaxId) {
    return Status::Refused("no free api key id");
  }
  return free_key_cursor_;
}

StatusOr<ApiKey> Store::PutKey(ApiKey k) {
  std::unique_lock lock(mu_);
  if (k.id == 0 || k.id > kMaxId) {
    return Status::InvalidArgument("id must be 1 to 2^63-1");
  }
  auto it = keys_.find(k.id);
  if (it != keys_.end() && !it->second.live) {
    return Status::Conflict(KeyName(k.id) + " was deleted; ids are not reused");
  }
  return WriteKeyLocked(std::move(k), /*create=*/it == keys_.end());
}

StatusOr<ApiKey> Store::WriteKeyLocked(ApiKey k, bool create) {
  if (Status s = ValidateKey(&k); !s.ok()) {
    return s;
  }
  if (k.group_id != kUnassignedGroup) {
    auto g = groups_.find(k.group_id);
    if (g == groups_.end() || !g->second.live()) {
      return Status::InvalidArgument("group_id " + std::to_string(k.group_id) +
                                     " names no provider group");
    }
  }
  const TimeNs now = Now();
  uint64_t old_group = k.group_id;
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
  }
  k.updated_at = now;
  k.deleted_at.reset();
  rocksdb::WriteBatch batch;
  batch.Put(keys_cf_, IdKey(k.id), EncodeKey(k));
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
      batch.Put(groups_cf_, IdKey(gid), EncodeGroup(g));
    }
  }
  if (Status s = Write(&batch); !s.ok()) {
    return s;
  }
  if (moved) {
    *GroupTotalsLocked(old_group) -= k.totals;
    *GroupTotalsLocked(k.group_id) += k.totals;
  }
  keys_[k.id] = KeyState{k.group_id, k.totals, true};
  max_key_id_ = std::max(max_key_id_, k.id);
  return k;
}

Status Store::DeleteKey(uint64_t id) {
  std::unique_lock lock(mu_);
  auto state = keys_.find(id);
  if (state == keys_.end() || !state->second.live) {
    return Status::NotFound("no " + KeyName(id));
  }
  StatusOr<ApiKey> k = ReadKeyLocked(id);
  if (!k.ok()) {
    return k.status();
  }
  k->updated_at = Now();
  k->deleted_at = k->updated_at;
  rocksdb::WriteBatch batch;
  batch.Put(keys_cf_, IdKey(id), EncodeKey(*k));
  if (k->group_id != kUnassignedGroup) {
    ProviderGroup g = groups_.at(k->group_id);
    g.totals -= k->totals;
    batch.Put(groups_cf_, IdKey(g.id), EncodeGroup(g));
  }
  if (Status s = Write(&batch); !s.ok()) {
    return s;
  }
  *GroupTotalsLocked(k->group_id) -= k->totals;
  state->second.live = false;
  return Status::Ok();
}

Status Store::Verify() const {
  std::shared_lock lock(mu_);
  std::map<uint64_t, ApiKey> keys;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), keys_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ApiKey k;
    if (Status s = DecodeKey(it->value().ToStringView(), &k); !s.ok()) {
      return s;
    }
    keys[k.id] = std::move(k);
  }
  if (Status s = FromRocks(it->status(), "verify: reading keys"); !s.ok()) {
    return s;
  }
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), totals_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t id = IdFromKey(it->key().ToStringView());
    if (!keys.contains(id)) {
      return Status::Corruption("totals without a record for " + KeyName(id));
    }
    if (Status s = DecodeTotals(it->value().ToStringView(), &keys[id].totals); !s.ok()) {
      return s;
    }
  }
  if (Status s = FromRocks(it->status(), "verify: reading key totals"); !s.ok()) {
    return s;
  }
  std::map<uint64_t, core::Totals> sums;
  if (keys.size() != keys_.size()) {
    return Status::Corruption("memory holds " + std::to_string(keys_.size()) + " keys, disk " +
                              std::to_string(keys.size()));
  }
  for (const auto& [id, k] : keys) {
    auto state = keys_.find(id);
    if (!k.totals.consistent()) {
      return Status::Corruption(KeyName(id) + ": total != success + failure");
    }
    if (state == keys_.end() || !(state->second.totals == k.totals) ||
        state->second.live != k.live() || state->second.group_id != k.group_id) {
      return Status::Corruption(KeyName(id) + ": memory differs from disk");
    }
    if (k.live()) {
      if (!sums[k.group_id].CanAdd(k.totals)) {
        return Status::Corruption(GroupName(k.group_id) + ": totals add up past 2^63-1");
      }
      sums[k.group_id] += k.totals;
      if (k.group_id != kUnassignedGroup &&
          (!groups_.contains(k.group_id) || !groups_.at(k.group_id).live())) {
        return Status::Corruption(KeyName(id) + " is live in a missing or deleted group");
      }
    }
  }
  if (!(sums[kUnassignedGroup] == unassigned_)) {
    return Status::Corruption("unassigned totals differ from the sum of their keys");
  }
  size_t stored_groups = 0;
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), groups_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++stored_groups) {
    ProviderGroup g;
    if (Status s = DecodeGroup(it->value().ToStringView(), &g); !s.ok()) {
      return s;
    }
    auto mem = groups_.find(g.id);
    if (mem == groups_.end() || !(mem->second == g)) {
      return Status::Corruption(GroupName(g.id) + ": memory differs from disk");
    }
    if (!(g.totals == sums[g.id])) {
      return Status::Corruption(GroupName(g.id) + ": totals differ from the sum of its live keys");
    }
  }
  if (Status s = FromRocks(it->status(), "verify: reading groups"); !s.ok()) {
    return s;
  }
  if (stored_groups != groups_.size()) {
    return Status::Corruption("memory and disk hold different numbers of groups");
  }
  return Status::Ok();
}

}  // namespace tally::persistence
