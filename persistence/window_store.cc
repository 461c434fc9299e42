#include "persistence/window_store.h"

#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/window_journal.h"

namespace tally::persistence {
namespace {

using core::Resolution;
using core::Scope;
using core::Status;
using core::StatusOr;

bool AddEncoded(const rocksdb::Slice& value, core::Totals* sum) {
  core::Totals t;
  if (!DecodeTotals(std::string_view(value.data(), value.size()), &t).ok()) {
    return false;
  }
  *sum = SaturatingSum(*sum, t);
  return true;
}

class WindowsMerge final : public rocksdb::MergeOperator {
 public:
  const char* Name() const override { return "tally.WindowsMerge"; }

  // Every operand at once (an AssociativeMergeOperator would allocate a string per pair).
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    core::Totals sum;
    if (in.existing_value != nullptr && !AddEncoded(*in.existing_value, &sum)) {
      return false;
    }
    for (const rocksdb::Slice& operand : in.operand_list) {
      if (!AddEncoded(operand, &sum)) {
        return false;
      }
    }
    EncodeTotals(sum, &out->new_value);
    return true;
  }

  bool PartialMerge(const rocksdb::Slice& /*key*/, const rocksdb::Slice& left,
                    const rocksdb::Slice& right, std::string* new_value,
                    rocksdb::Logger* /*logger*/) const override {
    core::Totals sum;
    if (!AddEncoded(left, &sum) || !AddEncoded(right, &sum)) {
      return false;
    }
    EncodeTotals(sum, new_value);
    return true;
  }
};

int Index(Resolution r) {
  switch (r) {
    case Resolution::kMinute:
      return 0;
    case Resolution::kHour:
      return 1;
    case Resolution::kDay:
      return 2;
  }
  return 0;
}

// How far a resolution's oldest held bucket must advance before the next sweep: one
// DeleteRange an hour for minutes, a day for hours and days (a range tombstone per minute
// would be 1,440 a day for compaction to carry, for nothing: queries never read past the
// oldest held bucket anyway).
int64_t SweepStep(Resolution r) { return r == Resolution::kMinute ? 3600 : 86400; }

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewWindowsMergeOperator() {
  return std::make_shared<WindowsMerge>();
}

WindowStore::WindowStore(const Db& db, const core::Clock& clock, const core::Retention& retention,
                         const WindowOptions& options)
    : db_(db), clock_(clock), retention_(retention), options_(options) {}

core::UnixSeconds WindowStore::NowSeconds() const {
  return std::max<int64_t>(0, clock_.NowNs() / 1'000'000'000);
}

WindowStats WindowStore::stats() const {
  // Relaxed: statistics.
  return {buckets_written_.load(std::memory_order_relaxed), sweeps_.load(std::memory_order_relaxed),
          rollups_.load(std::memory_order_relaxed), pending_keys_.load(std::memory_order_relaxed)};
}

void WindowStore::PublishPendingKeys() {
  uint64_t keys = open_.size();
  for (const auto& [minute, c] : closed_) {
    keys += c.keys.size() - c.next;
  }
  // Relaxed: a gauge.
  pending_keys_.store(keys, std::memory_order_relaxed);
}

namespace {

std::vector<std::pair<uint64_t, core::Totals>> Sorted(
    const std::unordered_map<uint64_t, core::Totals>& sums) {
  std::vector<std::pair<uint64_t, core::Totals>> out(sums.begin(), sums.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace

Status WindowStore::Load() {
  // Read everything first, then take pending_mu_ with the database's read view released:
  // the queries take pending_mu_ and then the view (window_reads.cc), never the reverse.
  std::map<core::UnixSeconds, std::pair<KeySums, uint64_t>> minutes;  // sums, progress
  TALLY_RETURN_IF_ERROR(ReadJournal(&minutes));
  std::unique_lock lock(pending_mu_);
  for (const auto& [minute, entry] : minutes) {
    closed_[minute].keys = Sorted(entry.first);
  }
  PublishPendingKeys();
  return Status::Ok();
}

Status WindowStore::ReadJournal(
    std::map<core::UnixSeconds, std::pair<KeySums, uint64_t>>* minutes_out) {
  auto& minutes = *minutes_out;
  Db::ReadView view = db_.Read();
  TALLY_RETURN_IF_ERROR(db_.CheckOpen());
  const std::string begin = JournalBegin(), end = JournalEnd();
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.snapshot = view.snapshot();
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_.rocks()->NewIterator(ro, db_.windows()));
  std::vector<JournalDelta> deltas;
  // Every journal minute is closed at a start: the next flush rolls up what is left of each
  // (keys above its stored progress).
  for (it->Seek(begin); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    const std::string_view value(it->value().data(), it->value().size());
    StatusOr<core::UnixSeconds> minute = DecodeJournalMinute(key);
    if (!minute.ok()) {
      return minute.status();
    }
    auto& [sums, progress] = minutes[*minute];
    if (key.size() == 9) {
      StatusOr<uint64_t> last = DecodeJournalProgress(value);
      if (!last.ok()) {
        return last.status();
      }
      progress = *last;
      continue;
    }
    TALLY_RETURN_IF_ERROR(DecodeJournal(value, &deltas));
    for (const JournalDelta& d : deltas) {
      if (d.key > progress) {
        core::Totals& t = sums[d.key];
        t = SaturatingSum(t, d.delta);
      }
    }
  }
  return FromRocks(it->status(), "reading the window journal");
}

Status WindowStore::StageRollup(core::UnixSeconds minute, const Closed& c, size_t to,
                                core::UnixSeconds now, rocksdb::ColumnFamilyHandle* cf,
                                rocksdb::WriteBatch* batch) {
  std::string value;
  for (Resolution r : core::kResolutions) {
    const core::UnixSeconds start = core::BucketStart(minute, r);
    if (start < core::OldestHeld(r, retention_, now)) {
      continue;  // already expired: never read, and the sweep would delete it
    }
    for (size_t i = c.next; i < to; ++i) {
      EncodeTotals(c.keys[i].second, &value);
      TALLY_RETURN_IF_ERROR(FromRocks(
          batch->Merge(cf, core::EncodeBucketKey({r, start, Scope::kKey, c.keys[i].first}), value),
          "window rollup"));
      ++staged_buckets_;
    }
  }
  if (to == c.keys.size()) {  // the last part: the journal (and the progress) go
    return FromRocks(
        batch->DeleteRange(cf, JournalMinuteBegin(minute), JournalMinuteBegin(minute + 60)),
        "window journal");
  }
  return FromRocks(
      batch->Put(cf, JournalMinuteBegin(minute), EncodeJournalProgress(c.keys[to - 1].first)),
      "window rollup progress");
}

Status WindowStore::Stage(const FlushView& flush, rocksdb::WriteBatch* batch) {
  const core::UnixSeconds now = std::clamp<int64_t>(flush.now / 1'000'000'000, 0, core::kMaxTime);
  const core::UnixSeconds minute = core::BucketStart(now, Resolution::kMinute);
  rocksdb::ColumnFamilyHandle* cf = flush.db->windows();
  staged_swept_ = swept_;
  staged_buckets_ = 0;
  staged_rollup_.clear();
  // Expired buckets first: the buckets written below are of held times, after the range.
  for (Resolution r : core::kResolutions) {
    const int i = Index(r);
    const core::UnixSeconds oldest = core::OldestHeld(r, retention_, now);
    if (oldest == 0 || (swept_[i] != 0 && oldest < swept_[i] + SweepStep(r))) {
      continue;
    }
    const core::KeyRange range = core::ExpiredRange(r, retention_, now);
    TALLY_RETURN_IF_ERROR(
        FromRocks(batch->DeleteRange(cf, range.begin, range.end), "window sweep"));
    staged_swept_[i] = oldest;
  }
  // The open minute's sums become a closed minute once a flush of another minute comes: a
  // change of representation only (the same sums), so it is done here, commit or not.
  // The pending state is written only under the Store's write lock, which this runs under;
  // pending_mu_ keeps readers out while it changes.
  if (open_minute_ && *open_minute_ != minute) {
    std::unique_lock lock(pending_mu_);
    // Never already there: a flush of a closed minute's own minute rolls it up whole first.
    closed_[*open_minute_].keys = Sorted(open_);
    open_.clear();
    open_minute_.reset();
  }
  // Roll up part of the closed minutes, oldest first.
  size_t remaining = 0;
  for (const auto& [m, c] : closed_) {
    remaining += c.keys.size() - c.next;
  }
  size_t budget = std::max(options_.min_rollup_keys, remaining / 8);
  for (const auto& [m, c] : closed_) {
    const size_t left = c.keys.size() - c.next;
    const bool whole = m == minute || m + 60 + options_.max_rollup_lag <= now;
    if (!whole && budget == 0) {
      continue;
    }
    const size_t n = whole ? left : std::min(left, budget);
    budget -= std::min(budget, n);
    if (!rollup_lock_.owns_lock()) {
      rollup_lock_ = std::unique_lock(pending_mu_);
    }
    TALLY_RETURN_IF_ERROR(StageRollup(m, c, c.next + n, now, cf, batch));
    staged_rollup_.push_back({m, c.next + n});
  }
  if (flush.applied.empty()) {
    return Status::Ok();
  }
  // The whole and the groups, summed; a std::map so they are written in key order (in-order
  // inserts are the memtable's cheapest).
  core::Totals whole;
  std::map<uint64_t, core::Totals> groups;
  for (const AppliedDelta& d : flush.applied) {
    whole = SaturatingSum(whole, d.delta);
    core::Totals& g = groups[d.group_id];
    g = SaturatingSum(g, d.delta);
  }
  if (whole.total == 0) {
    return Status::Ok();
  }
  std::string value;
  const auto merge = [&](Resolution r, core::UnixSeconds start, Scope scope, uint64_t id,
                         const core::Totals& t) {
    EncodeTotals(t, &value);
    ++staged_buckets_;
    return FromRocks(batch->Merge(cf, core::EncodeBucketKey({r, start, scope, id}), value),
                     "window bucket");
  };
  for (Resolution r : core::kResolutions) {
    const core::UnixSeconds start = core::BucketStart(now, r);
    TALLY_RETURN_IF_ERROR(merge(r, start, Scope::kWhole, 0, whole));
    for (const auto& [group_id, t] : groups) {
      if (t.total != 0) {
        TALLY_RETURN_IF_ERROR(merge(r, start, Scope::kGroup, group_id, t));
      }
    }
  }
  EncodeJournal(flush.applied, &value);
  return FromRocks(batch->Put(cf, EncodeJournalKey(minute, flush.epoch), value), "window journal");
}

void WindowStore::Commit(const FlushView& flush) {
  uint64_t swept = 0;
  for (size_t i = 0; i < swept_.size(); ++i) {
    swept += staged_swept_[i] != swept_[i] ? 1 : 0;
  }
  swept_ = staged_swept_;
  uint64_t rolled = 0;
  {
    std::unique_lock<std::shared_mutex> lock;
    if (!rollup_lock_.owns_lock()) {
      lock = std::unique_lock(pending_mu_);
    }
    for (const StagedRollup& r : staged_rollup_) {
      Closed& c = closed_.at(r.minute);
      c.next = r.to;
      if (c.next == c.keys.size()) {
        closed_.erase(r.minute);
        ++rolled;
      }
    }
    const core::UnixSeconds now = std::clamp<int64_t>(flush.now / 1'000'000'000, 0, core::kMaxTime);
    for (const AppliedDelta& d : flush.applied) {
      if (d.delta.total == 0) {
        continue;
      }
      open_minute_ = core::BucketStart(now, Resolution::kMinute);
      core::Totals& t = open_[d.key];
      t = SaturatingSum(t, d.delta);
    }
    PublishPendingKeys();
  }
  if (rollup_lock_.owns_lock()) {
    rollup_lock_.unlock();
  }
  // Relaxed: statistics.
  buckets_written_.fetch_add(staged_buckets_, std::memory_order_relaxed);
  sweeps_.fetch_add(swept, std::memory_order_relaxed);
  rollups_.fetch_add(rolled, std::memory_order_relaxed);
  staged_buckets_ = 0;
  staged_rollup_.clear();
}

void WindowStore::Abort() {
  staged_swept_ = swept_;
  staged_buckets_ = 0;
  staged_rollup_.clear();
  if (rollup_lock_.owns_lock()) {
    rollup_lock_.unlock();
  }
}

}  // namespace tally::persistence
