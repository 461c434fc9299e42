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

// a + b per count, saturating at 2^63-1: a bucket of the whole gathers every delta ever
// applied, deleted keys' too, which the lifetime overflow rule (FlushRules) does not bound.
core::Totals SaturatingSum(const core::Totals& a, const core::Totals& b) {
  const auto add = [](int64_t x, int64_t y) {
    return x > core::kMaxCount - y ? core::kMaxCount : x + y;
  };
  core::Totals out;
  out.success = add(a.success, b.success);
  out.failure = add(a.failure, b.failure);
  out.total = add(out.success, out.failure);
  if (out.total == core::kMaxCount) {  // keep total = success + failure
    out.failure = std::min(out.failure, core::kMaxCount - out.success);
  }
  return out;
}

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

WindowStore::WindowStore(const Db& db, const core::Clock& clock, const core::Retention& retention)
    : db_(db), clock_(clock), retention_(retention) {}

core::UnixSeconds WindowStore::NowSeconds() const {
  return std::max<int64_t>(0, clock_.NowNs() / 1'000'000'000);
}

WindowStats WindowStore::stats() const {
  // Relaxed: statistics.
  return {buckets_written_.load(std::memory_order_relaxed), sweeps_.load(std::memory_order_relaxed),
          rollups_.load(std::memory_order_relaxed), pending_keys_.load(std::memory_order_relaxed)};
}

Status WindowStore::Load() {
  Db::ReadView view = db_.Read();
  TALLY_RETURN_IF_ERROR(db_.CheckOpen());
  const std::string begin = JournalBegin(), end = JournalEnd();
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.snapshot = view.snapshot();
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_.rocks()->NewIterator(ro, db_.windows()));
  std::vector<JournalDelta> deltas;
  std::unique_lock lock(pending_mu_);
  uint64_t keys = 0;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    StatusOr<core::UnixSeconds> minute =
        DecodeJournalMinute(std::string_view(it->key().data(), it->key().size()));
    if (!minute.ok()) {
      return minute.status();
    }
    TALLY_RETURN_IF_ERROR(
        DecodeJournal(std::string_view(it->value().data(), it->value().size()), &deltas));
    KeySums& sums = pending_[*minute];
    for (const JournalDelta& d : deltas) {
      core::Totals& t = sums[d.key];
      t = SaturatingSum(t, d.delta);
    }
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "reading the window journal"));
  for (const auto& [minute, sums] : pending_) {
    keys += sums.size();
  }
  // Relaxed: a gauge.
  pending_keys_.store(keys, std::memory_order_relaxed);
  return Status::Ok();
}

Status WindowStore::StageRollup(core::UnixSeconds minute, const KeySums& sums,
                                core::UnixSeconds now, rocksdb::ColumnFamilyHandle* cf,
                                rocksdb::WriteBatch* batch) {
  std::vector<std::pair<uint64_t, core::Totals>> sorted(sums.begin(), sums.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string value;
  for (Resolution r : core::kResolutions) {
    const core::UnixSeconds start = core::BucketStart(minute, r);
    if (start < core::OldestHeld(r, retention_, now)) {
      continue;  // already expired: never read, and the sweep would delete it
    }
    for (const auto& [key, totals] : sorted) {
      EncodeTotals(totals, &value);
      TALLY_RETURN_IF_ERROR(
          FromRocks(batch->Merge(cf, core::EncodeBucketKey({r, start, Scope::kKey, key}), value),
                    "window rollup"));
      ++staged_buckets_;
    }
  }
  return FromRocks(
      batch->DeleteRange(cf, JournalMinuteBegin(minute), JournalMinuteBegin(minute + 60)),
      "window journal");
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
  // Every pending minute but this flush's is closed (or the clock went back): roll it up.
  // pending_ is written only under the Store's write lock, which this runs under.
  for (const auto& [m, sums] : pending_) {
    if (m != minute) {
      staged_rollup_.push_back(m);
    }
  }
  if (!staged_rollup_.empty()) {
    rollup_lock_ = std::unique_lock(pending_mu_);
    for (core::UnixSeconds m : staged_rollup_) {
      TALLY_RETURN_IF_ERROR(StageRollup(m, pending_.at(m), now, cf, batch));
    }
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
  {
    std::unique_lock<std::shared_mutex> lock;
    if (!rollup_lock_.owns_lock()) {
      lock = std::unique_lock(pending_mu_);
    }
    for (core::UnixSeconds m : staged_rollup_) {
      pending_.erase(m);
    }
    const core::UnixSeconds now = std::clamp<int64_t>(flush.now / 1'000'000'000, 0, core::kMaxTime);
    KeySums* sums = nullptr;
    for (const AppliedDelta& d : flush.applied) {
      if (d.delta.total == 0) {
        continue;
      }
      if (sums == nullptr) {
        sums = &pending_[core::BucketStart(now, Resolution::kMinute)];
      }
      core::Totals& t = (*sums)[d.key];
      t = SaturatingSum(t, d.delta);
    }
    uint64_t keys = 0;
    for (const auto& [minute, s] : pending_) {
      keys += s.size();
    }
    // Relaxed: a gauge.
    pending_keys_.store(keys, std::memory_order_relaxed);
  }
  if (rollup_lock_.owns_lock()) {
    rollup_lock_.unlock();
  }
  // Relaxed: statistics.
  buckets_written_.fetch_add(staged_buckets_, std::memory_order_relaxed);
  sweeps_.fetch_add(swept, std::memory_order_relaxed);
  rollups_.fetch_add(staged_rollup_.size(), std::memory_order_relaxed);
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

namespace {

// MultiGet of `keys` (sorted) in `view`, each decoded into out[i] (zeros when absent).
Status ReadBuckets(const Db& db, const Db::ReadView& view, const std::vector<std::string>& keys,
                   std::vector<core::Totals>* out) {
  out->assign(keys.size(), core::Totals{});
  if (keys.empty()) {
    return Status::Ok();
  }
  rocksdb::ReadOptions ro;
  ro.snapshot = view.snapshot();
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db.rocks()->MultiGet(ro, db.windows(), keys.size(), slices.data(), values.data(), statuses.data(),
                       /*sorted_input=*/true);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      continue;
    }
    TALLY_RETURN_IF_ERROR(FromRocks(statuses[i], "reading a window bucket"));
    TALLY_RETURN_IF_ERROR(
        DecodeTotals(std::string_view(values[i].data(), values[i].size()), &(*out)[i]));
  }
  return Status::Ok();
}

bool PlanCovers(const core::SummaryPlan& plan, core::UnixSeconds minute) {
  for (const core::Span& span : plan.spans) {
    if (span.start <= minute && minute < span.end) {
      return true;
    }
  }
  return false;
}

}  // namespace

template <typename Covered, typename Add>
void WindowStore::ForPending(std::optional<uint64_t> id, Covered covered, Add add) const {
  for (const auto& [minute, sums] : pending_) {
    if (!covered(minute)) {
      continue;
    }
    if (id) {
      if (auto it = sums.find(*id); it != sums.end()) {
        add(*id, minute, it->second);
      }
      continue;
    }
    for (const auto& [key, totals] : sums) {
      add(key, minute, totals);
    }
  }
}

StatusOr<std::vector<core::Totals>> WindowStore::Series(Scope scope, uint64_t id,
                                                        const core::Window& w) const {
  std::vector<std::string> keys;
  keys.reserve(static_cast<size_t>(w.points()));
  for (core::UnixSeconds t = w.since; t < w.until; t += core::Seconds(w.step)) {
    keys.push_back(core::EncodeBucketKey({w.step, t, scope, id}));
  }
  std::vector<std::pair<size_t, core::Totals>> pending;
  std::shared_lock lock(pending_mu_);  // before the view: see the class comment
  Db::ReadView view = db_.Read();
  TALLY_RETURN_IF_ERROR(db_.CheckOpen());
  if (scope == Scope::kKey) {
    ForPending(
        id, [&](core::UnixSeconds m) { return w.since <= m && m < w.until; },
        [&](uint64_t, core::UnixSeconds m, const core::Totals& t) {
          pending.emplace_back(static_cast<size_t>((m - w.since) / core::Seconds(w.step)), t);
        });
  }
  lock.unlock();
  std::vector<core::Totals> points;
  TALLY_RETURN_IF_ERROR(ReadBuckets(db_, view, keys, &points));
  for (const auto& [i, t] : pending) {
    points[i] = SaturatingSum(points[i], t);
  }
  return points;
}

StatusOr<core::Totals> WindowStore::Sum(Scope scope, uint64_t id,
                                        const core::SummaryPlan& plan) const {
  std::vector<std::string> keys;
  for (const core::Span& span : plan.spans) {
    for (core::UnixSeconds t = span.start; t < span.end; t += core::Seconds(span.resolution)) {
      keys.push_back(core::EncodeBucketKey({span.resolution, t, scope, id}));
    }
  }
  std::sort(keys.begin(), keys.end());  // MultiGet's sorted_input
  core::Totals sum;
  std::shared_lock lock(pending_mu_);  // before the view: see the class comment
  Db::ReadView view = db_.Read();
  TALLY_RETURN_IF_ERROR(db_.CheckOpen());
  if (scope == Scope::kKey) {
    ForPending(
        id, [&](core::UnixSeconds m) { return PlanCovers(plan, m); },
        [&](uint64_t, core::UnixSeconds, const core::Totals& t) { sum = SaturatingSum(sum, t); });
  }
  lock.unlock();
  std::vector<core::Totals> buckets;
  TALLY_RETURN_IF_ERROR(ReadBuckets(db_, view, keys, &buckets));
  for (const core::Totals& t : buckets) {
    sum = SaturatingSum(sum, t);
  }
  return sum;
}

StatusOr<std::vector<KeyWindowTotals>> WindowStore::KeyTotals(const core::SummaryPlan& plan) const {
  KeySums sums;
  std::shared_lock lock(pending_mu_);  // before the view: see the class comment
  Db::ReadView view = db_.Read();
  TALLY_RETURN_IF_ERROR(db_.CheckOpen());
  ForPending(
      std::nullopt, [&](core::UnixSeconds m) { return PlanCovers(plan, m); },
      [&](uint64_t key, core::UnixSeconds, const core::Totals& t) {
        core::Totals& sum = sums[key];
        sum = SaturatingSum(sum, t);
      });
  lock.unlock();
  for (const core::Span& span : plan.spans) {
    for (core::UnixSeconds t = span.start; t < span.end; t += core::Seconds(span.resolution)) {
      const std::string begin = core::EncodeBucketPrefix(span.resolution, t, Scope::kKey);
      std::string end = begin;
      end.back() = static_cast<char>(static_cast<uint8_t>(Scope::kKey) + 1);
      rocksdb::Slice upper(end);
      rocksdb::ReadOptions ro;
      ro.snapshot = view.snapshot();
      ro.iterate_upper_bound = &upper;
      std::unique_ptr<rocksdb::Iterator> it(db_.rocks()->NewIterator(ro, db_.windows()));
      for (it->Seek(begin); it->Valid(); it->Next()) {
        const rocksdb::Slice k = it->key();
        StatusOr<core::BucketKey> bk = core::DecodeBucketKey(std::string_view(k.data(), k.size()));
        if (!bk.ok()) {
          return bk.status();
        }
        core::Totals v;
        TALLY_RETURN_IF_ERROR(
            DecodeTotals(std::string_view(it->value().data(), it->value().size()), &v));
        core::Totals& sum = sums[bk->id];
        sum = SaturatingSum(sum, v);
      }
      TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "scanning window buckets"));
    }
  }
  std::vector<KeyWindowTotals> out;
  out.reserve(sums.size());
  for (const auto& [key, totals] : sums) {
    out.push_back({key, totals});
  }
  std::sort(out.begin(), out.end(),
            [](const KeyWindowTotals& a, const KeyWindowTotals& b) { return a.key < b.key; });
  return out;
}

}  // namespace tally::persistence
