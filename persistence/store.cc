#include "persistence/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "persistence/record_codec.h"

namespace tally::persistence {
namespace {

using core::Status;
using core::StatusOr;

constexpr char kGroupsCf[] = "groups";
constexpr char kKeysCf[] = "keys";
constexpr char kTotalsCf[] = "key_totals";
constexpr char kMetaCf[] = "meta";
constexpr char kFormatKey[] = "format";
constexpr char kEpochKey[] = "epoch";

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) {
    return Status::Ok();
  }
  if (s.IsCorruption()) {
    return Status::Corruption(what + ": " + s.ToString());
  }
  return Status::IoError(what + ": " + s.ToString());
}

// The data directory must be a directory we can enter and list; create it if missing.
Status PrepareDir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status::IoError("data dir " + dir + ": " + std::strerror(errno));
    }
    if (mkdir(dir.c_str(), 0700) != 0) {
      return Status::IoError("cannot create data dir " + dir + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("data dir " + dir + " exists and is not a directory");
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Status::IoError("data dir " + dir +
                           " is not readable and writable: " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string EncodeU64(uint64_t v) { return IdKey(v); }

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  if (Status s = PrepareDir(dir); !s.ok()) {
    return s;
  }
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.keep_log_file_num = 5;
  rocksdb::ColumnFamilyOptions cf_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {kGroupsCf, cf_options},
      {kKeysCf, cf_options},
      {kTotalsCf, cf_options},
      {kMetaCf, cf_options},
  };
  std::unique_ptr<Store> store(new Store());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(options, dir, families, &store->handles_, &raw);
  if (!rs.ok()) {
    std::string msg = rs.ToString();
    if (msg.find("LOCK") != std::string::npos) {
      return Status::Unavailable("data dir " + dir + " is locked by another running tallyd (" +
                                 msg + ")");
    }
    return FromRocks(rs, "cannot open database in " + dir);
  }
  store->db_.reset(raw);
  store->groups_cf_ = store->handles_[1];
  store->keys_cf_ = store->handles_[2];
  store->totals_cf_ = store->handles_[3];
  store->meta_cf_ = store->handles_[4];
  if (Status s = store->Load(); !s.ok()) {
    return s;
  }
  return store;
}

Store::~Store() {
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    // Destroying handles cannot fail in a way we could act on while closing.
    (void)db_->DestroyColumnFamilyHandle(h);
  }
  if (db_) {
    (void)db_->Close();
  }
}

Status Store::Load() {
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kFormatKey, &value);
  if (rs.IsNotFound()) {
    // A new database: stamp its format.
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rs = db_->Put(wo, meta_cf_, kFormatKey, std::string(1, static_cast<char>(kFormatVersion)));
    if (Status s = FromRocks(rs, "cannot stamp format version"); !s.ok()) {
      return s;
    }
  } else if (!rs.ok()) {
    return FromRocks(rs, "cannot read format version");
  } else if (value.size() != 1 || static_cast<uint8_t>(value[0]) != kFormatVersion) {
    return Status::Corruption("unknown database format version " +
                              std::to_string(value.empty() ? 0 : static_cast<uint8_t>(value[0])) +
                              " (this build reads version " + std::to_string(kFormatVersion) + ")");
  }

  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kEpochKey, &value);
  if (rs.ok() && value.size() == 8) {
    epoch_ = IdFromKey(value);
  } else if (!rs.IsNotFound()) {
    return Status::Corruption("bad epoch record: " + rs.ToString());
  }

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), groups_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ProviderGroup g;
    if (Status s = DecodeGroup(it->value().ToStringView(), &g); !s.ok()) {
      return s;
    }
    groups_.emplace(g.id, std::move(g));
  }
  if (Status s = FromRocks(it->status(), "reading groups"); !s.ok()) {
    return s;
  }

  it.reset(db_->NewIterator(rocksdb::ReadOptions(), keys_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ApiKey k;
    if (Status s = DecodeKey(it->value().ToStringView(), &k); !s.ok()) {
      return s;
    }
    keys_[k.id] = KeyState{k.group_id, {}, k.live()};
  }
  if (Status s = FromRocks(it->status(), "reading keys"); !s.ok()) {
    return s;
  }

  it.reset(db_->NewIterator(rocksdb::ReadOptions(), totals_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t id = IdFromKey(it->key().ToStringView());
    auto found = keys_.find(id);
    if (found == keys_.end()) {
      return Status::Corruption("totals for key " + std::to_string(id) + " without its record");
    }
    if (Status s = DecodeTotals(it->value().ToStringView(), &found->second.totals); !s.ok()) {
      return s;
    }
  }
  if (Status s = FromRocks(it->status(), "reading key totals"); !s.ok()) {
    return s;
  }
  for (const auto& [id, k] : keys_) {
    if (k.live && k.group_id == kUnassignedGroup) {
      unassigned_ += k.totals;
    }
  }
  return Status::Ok();
}

Status Store::Write(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, batch), "write failed");
}

core::Totals* Store::GroupTotalsLocked(uint64_t group_id) {
  if (group_id == kUnassignedGroup) {
    return &unassigned_;
  }
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second.totals;
}

StatusOr<FlushResult> Store::ApplyFlush(std::vector<core::KeyDelta>* deltas) {
  // Sort and merge, so each key is written once even if the caller listed it twice.
  std::sort(deltas->begin(), deltas->end(),
            [](const core::KeyDelta& a, const core::KeyDelta& b) { return a.key < b.key; });
  size_t merged = 0;
  for (size_t i = 0; i < deltas->size(); ++i) {
    if (merged > 0 && (*deltas)[merged - 1].key == (*deltas)[i].key) {
      (*deltas)[merged - 1].successes += (*deltas)[i].successes;
      (*deltas)[merged - 1].failures += (*deltas)[i].failures;
    } else {
      (*deltas)[merged++] = (*deltas)[i];
    }
  }
  deltas->resize(merged);

  std::unique_lock lock(mu_);
  const TimeNs now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
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
  for (const core::KeyDelta& d : *deltas) {
    core::Totals delta;
    delta.Add(static_cast<int64_t>(d.successes), static_cast<int64_t>(d.failures));
    auto it = keys_.find(d.key);
    KeyState* state = it == keys_.end() ? nullptr : &it->second;
    core::Totals next = delta;
    uint64_t group_id = kUnassignedGroup;
    if (state == nullptr) {
      ApiKey created;
      created.id = d.key;
      created.created_at = now;
      created.updated_at = now;
      batch.Put(keys_cf_, IdKey(d.key), EncodeKey(created));
      ++result.keys_created;
    } else if (!state->live) {
      result.refused_events += d.successes + d.failures;
      continue;
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
  batch.Put(meta_cf_, kEpochKey, EncodeU64(result.epoch));

  if (Status s = Write(&batch); !s.ok()) {
    return s;
  }

  for (const Staged& s : staged) {
    KeyState* state = s.state;
    if (state == nullptr) {
      state = &keys_[s.key];
    }
    state->totals += s.delta;
  }
  for (const auto& [group_id, delta] : group_deltas) {
    *GroupTotalsLocked(group_id) += delta;
  }
  epoch_ = result.epoch;
  result.keys_updated = staged.size();
  return result;
}

core::Totals Store::Summary() const {
  std::shared_lock lock(mu_);
  core::Totals sum = unassigned_;
  for (const auto& [id, g] : groups_) {
    if (g.live()) {
      sum += g.totals;
    }
  }
  return sum;
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
