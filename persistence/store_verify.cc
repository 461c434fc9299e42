// Store::Verify: re-reads every record and checks the invariant (record_rules.h) against
// disk and memory.
#include <rocksdb/db.h>

#include <map>
#include <mutex>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/record_rules.h"
#include "persistence/store.h"

namespace tally::persistence {

using core::Status;

Status Store::Verify() const {
  std::shared_lock lock(mu_);
  TALLY_RETURN_IF_ERROR(db_->CheckOpen());
  std::map<uint64_t, ApiKey> keys;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->rocks()->NewIterator(rocksdb::ReadOptions(), db_->keys()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ApiKey k;
    TALLY_RETURN_IF_ERROR(DecodeKey(it->value().ToStringView(), &k));
    keys[k.id] = std::move(k);
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "verify: reading keys"));
  it.reset(db_->rocks()->NewIterator(rocksdb::ReadOptions(), db_->totals()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t id = IdFromKey(it->key().ToStringView());
    if (!keys.contains(id)) {
      return Status::Corruption("totals without a record for " + KeyName(id));
    }
    TALLY_RETURN_IF_ERROR(DecodeTotals(it->value().ToStringView(), &keys[id].totals));
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "verify: reading key totals"));
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
  it.reset(db_->rocks()->NewIterator(rocksdb::ReadOptions(), db_->groups()));
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++stored_groups) {
    ProviderGroup g;
    TALLY_RETURN_IF_ERROR(DecodeGroup(it->value().ToStringView(), &g));
    auto mem = groups_.find(g.id);
    if (mem == groups_.end() || !(mem->second == g)) {
      return Status::Corruption(GroupName(g.id) + ": memory differs from disk");
    }
    if (!(g.totals == sums[g.id])) {
      return Status::Corruption(GroupName(g.id) + ": totals differ from the sum of its live keys");
    }
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "verify: reading groups"));
  if (stored_groups != groups_.size()) {
    return Status::Corruption("memory and disk hold different numbers of groups");
  }
  return Status::Ok();
}

}  // namespace tally::persistence
