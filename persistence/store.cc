// Store: opening (the Db, then the in-memory state loaded from it) and the summaries.
#include "persistence/store.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"

namespace tally::persistence {

using core::Status;
using core::StatusOr;

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  return Open(dir, StoreOptions{});
}

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir, const StoreOptions& options) {
  StatusOr<std::unique_ptr<Db>> db = Db::Open(dir, options);
  if (!db.ok()) {
    return db.status();
  }
  std::unique_ptr<Store> store(new Store(std::move(*db), options));
  TALLY_RETURN_IF_ERROR(store->Load());
  return store;
}

Store::Store(std::unique_ptr<Db> db, const StoreOptions& options)
    : db_(std::move(db)),
      clock_(options.clock != nullptr ? *options.clock : core::SystemClock::Get()),
      idem_(*db_, options.idempotency_ttl_ns, options.idempotency_purge_per_flush) {}

Store::~Store() = default;

TimeNs Store::Now() const { return clock_.NowNs(); }

Status Store::Checkpoint(const std::string& dir) { return db_->Checkpoint(dir); }

StoreHealth Store::health() const { return db_->health(); }

uint64_t Store::DiskBytes() const { return db_->DiskBytes(); }

Status Store::Compact() {
  std::unique_lock lock(mu_);
  return db_->FlushAndCompact();
}

Status Store::Load() {
  std::string value;
  rocksdb::Status rs = db_->rocks()->Get(rocksdb::ReadOptions(), db_->meta(), kEpochKey, &value);
  if (rs.ok() && value.size() == 8) {
    epoch_ = IdFromKey(value);
  } else if (!rs.IsNotFound()) {
    return Status::Corruption("bad epoch record: " + rs.ToString());
  }
  TALLY_RETURN_IF_ERROR(LoadGroups());
  TALLY_RETURN_IF_ERROR(LoadKeys());
  TALLY_RETURN_IF_ERROR(SumLoadedTotals());
  return idem_.Load();
}

Status Store::LoadGroups() {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->rocks()->NewIterator(rocksdb::ReadOptions(), db_->groups()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ProviderGroup g;
    if (Status s = DecodeGroup(it->value().ToStringView(), &g); !s.ok()) {
      return Status::Corruption("group " + std::to_string(IdFromKey(it->key().ToStringView())) +
                                ": " + s.message());
    }
    groups_.emplace(g.id, std::move(g));
  }
  return FromRocks(it->status(), "reading groups");
}

namespace {

struct LoadedTotals {
  uint64_t id;
  core::Totals totals;
};

// Every stored totals record, in id order.
Status ScanTotals(const Db& db, const rocksdb::ReadOptions& scan, std::vector<LoadedTotals>* out) {
  std::unique_ptr<rocksdb::Iterator> it(db.rocks()->NewIterator(scan, db.totals()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    LoadedTotals& t = out->emplace_back();
    t.id = IdFromKey(it->key().ToStringView());
    if (Status s = DecodeTotals(it->value().ToStringView(), &t.totals); !s.ok()) {
      return Status::Corruption("totals of key " + std::to_string(t.id) + ": " + s.message());
    }
  }
  return FromRocks(it->status(), "reading key totals");
}

}  // namespace

// The key records' heads (id, liveness, group), and beside them, on a second thread, their
// totals: the two families are independent, and with 1M keys each scan is a few hundred
// milliseconds of one core (docs/performance.md, "Persistence").
Status Store::LoadKeys() {
  // A bulk scan: read ahead, and keep the block cache for the records read later.
  rocksdb::ReadOptions scan;
  scan.readahead_size = 2 << 20;
  scan.fill_cache = false;
  uint64_t estimate = 0;
  std::vector<LoadedTotals> totals;
  if (db_->rocks()->GetIntProperty(db_->keys(), "rocksdb.estimate-num-keys", &estimate)) {
    keys_.reserve(estimate);
    totals.reserve(estimate);
  }
  Status totals_status;
  std::thread totals_reader([&] { totals_status = ScanTotals(*db_, scan, &totals); });
  Status keys_status = [&] {
    std::unique_ptr<rocksdb::Iterator> it(db_->rocks()->NewIterator(scan, db_->keys()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t id = 0;
      uint64_t group_id = 0;
      bool live = true;
      if (Status s = DecodeKeyHead(it->value().ToStringView(), &id, &live, &group_id); !s.ok()) {
        return Status::Corruption("key " + std::to_string(IdFromKey(it->key().ToStringView())) +
                                  ": " + s.message());
      }
      keys_[id] = KeyState{group_id, {}, live};
      max_key_id_ = std::max(max_key_id_, id);
    }
    return FromRocks(it->status(), "reading keys");
  }();
  totals_reader.join();
  TALLY_RETURN_IF_ERROR(keys_status);
  TALLY_RETURN_IF_ERROR(totals_status);
  for (const LoadedTotals& t : totals) {
    auto found = keys_.find(t.id);
    if (found == keys_.end()) {
      return Status::Corruption("totals for key " + std::to_string(t.id) + " without its record");
    }
    found->second.totals = t.totals;
  }
  return Status::Ok();
}

Status Store::SumLoadedTotals() {
  // Each stored total decoded within 0..2^63-1; their sum over the live keys must be too
  // (FlushRules), or a later flush could not keep it so. Sums the unassigned keys as it goes.
  const Status too_large = Status::Corruption(
      "the totals of the live keys add up past 2^63-1 (written by a build without the "
      "overflow rule)");
  for (const auto& [id, k] : keys_) {
    if (k.live && k.group_id == kUnassignedGroup) {
      if (!unassigned_.CanAdd(k.totals)) {
        return too_large;
      }
      unassigned_ += k.totals;
    }
  }
  core::Totals whole = unassigned_;
  for (const auto& [id, g] : groups_) {
    if (g.live()) {
      if (!whole.CanAdd(g.totals)) {
        return too_large;
      }
      whole += g.totals;
    }
  }
  return Status::Ok();
}

core::Totals* Store::GroupTotalsLocked(uint64_t group_id) {
  if (group_id == kUnassignedGroup) {
    return &unassigned_;
  }
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second.totals;
}

core::Totals Store::WholeLocked() const {
  core::Totals sum = unassigned_;
  for (const auto& [id, g] : groups_) {
    if (g.live()) {
      sum += g.totals;
    }
  }
  return sum;
}

core::Totals Store::Summary() const {
  std::shared_lock lock(mu_);
  return WholeLocked();
}

StatusOr<core::Totals> Store::GroupSummary(uint64_t group_id) const {
  std::shared_lock lock(mu_);
  if (group_id == kUnassignedGroup) {
    return unassigned_;
  }
  auto it = groups_.find(group_id);
  if (it == groups_.end() || !it->second.live()) {
    return Status::NotFound("no provider group " + std::to_string(group_id));
  }
  return it->second.totals;
}

uint64_t Store::epoch() const {
  std::shared_lock lock(mu_);
  return epoch_;
}

size_t Store::live_keys() const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (const auto& [id, k] : keys_) {
    n += k.live ? 1 : 0;
  }
  return n;
}

size_t Store::live_groups() const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (const auto& [id, g] : groups_) {
    n += g.live() ? 1 : 0;
  }
  return n;
}

}  // namespace tally::persistence
