// WindowStore's reads (window_store.h): series, sums and every key's sums over a window,
// from one RocksDB snapshot and the pending sums taken with it.
#include <rocksdb/db.h>

#include <algorithm>
#include <string>
#include <unordered_map>

#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/window_journal.h"
#include "persistence/window_store.h"

namespace tally::persistence {

using core::Scope;
using core::Status;
using core::StatusOr;

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
  if (open_minute_ && covered(*open_minute_)) {
    if (!id) {
      for (const auto& [key, totals] : open_) {
        add(key, *open_minute_, totals);
      }
    } else if (auto it = open_.find(*id); it != open_.end()) {
      add(*id, *open_minute_, it->second);
    }
  }
  for (const auto& [minute, c] : closed_) {
    if (!covered(minute)) {
      continue;
    }
    const auto first = c.keys.begin() + static_cast<std::ptrdiff_t>(c.next);
    if (!id) {
      for (auto it = first; it != c.keys.end(); ++it) {
        add(it->first, minute, it->second);
      }
      continue;
    }
    auto it = std::lower_bound(first, c.keys.end(), *id,
                               [](const auto& e, uint64_t k) { return e.first < k; });
    if (it != c.keys.end() && it->first == *id) {
      add(*id, minute, it->second);
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

namespace {

// `into` += `more`, both sorted by key, equal keys summed: one linear merge (a bucket's keys
// come from RocksDB in key order, so merging beats a hash map's random access per entry).
void MergeSorted(std::vector<KeyWindowTotals>& into, const std::vector<KeyWindowTotals>& more,
                 std::vector<KeyWindowTotals>& scratch) {
  scratch.clear();
  scratch.reserve(into.size() + more.size());
  size_t i = 0, j = 0;
  while (i < into.size() || j < more.size()) {
    if (j == more.size() || (i < into.size() && into[i].key < more[j].key)) {
      scratch.push_back(into[i++]);
    } else if (i == into.size() || more[j].key < into[i].key) {
      scratch.push_back(more[j++]);
    } else {
      scratch.push_back({into[i].key, SaturatingSum(into[i].totals, more[j].totals)});
      ++i;
      ++j;
    }
  }
  into.swap(scratch);
}

}  // namespace

StatusOr<std::vector<KeyWindowTotals>> WindowStore::KeyTotals(const core::SummaryPlan& plan) const {
  KeySums pending;
  std::shared_lock lock(pending_mu_);  // before the view: see the class comment
  Db::ReadView view = db_.Read();
  TALLY_RETURN_IF_ERROR(db_.CheckOpen());
  ForPending(
      std::nullopt, [&](core::UnixSeconds m) { return PlanCovers(plan, m); },
      [&](uint64_t key, core::UnixSeconds, const core::Totals& t) {
        core::Totals& sum = pending[key];
        sum = SaturatingSum(sum, t);
      });
  lock.unlock();
  std::vector<KeyWindowTotals> out, bucket, scratch;
  for (const auto& [key, totals] : pending) {
    out.push_back({key, totals});
  }
  std::sort(out.begin(), out.end(),
            [](const KeyWindowTotals& a, const KeyWindowTotals& b) { return a.key < b.key; });
  std::string begin, end;
  rocksdb::Slice upper;
  rocksdb::ReadOptions ro;
  ro.snapshot = view.snapshot();
  ro.iterate_upper_bound = &upper;
  for (const core::Span& span : plan.spans) {
    for (core::UnixSeconds t = span.start; t < span.end; t += core::Seconds(span.resolution)) {
      begin = core::EncodeBucketPrefix(span.resolution, t, Scope::kKey);
      end = begin;
      end.back() = static_cast<char>(static_cast<uint8_t>(Scope::kKey) + 1);
      upper = rocksdb::Slice(end);
      std::unique_ptr<rocksdb::Iterator> it(db_.rocks()->NewIterator(ro, db_.windows()));
      bucket.clear();
      for (it->Seek(begin); it->Valid(); it->Next()) {
        // Within [begin, end) a key is the 10-byte prefix and an 8-byte id (DecodeBucketKey's
        // rules, checked here without building a BucketKey per entry).
        const rocksdb::Slice k = it->key();
        uint64_t id = 0;
        for (size_t i = 10; i < k.size(); ++i) {
          id = (id << 8) | static_cast<uint8_t>(k[i]);
        }
        if (k.size() != core::kBucketKeySize || id == 0 || id > core::kMaxId) {
          return Status::Corruption("bucket key: not a key's bucket in a key range");
        }
        core::Totals v;
        TALLY_RETURN_IF_ERROR(
            DecodeTotals(std::string_view(it->value().data(), it->value().size()), &v));
        bucket.push_back({id, v});
      }
      TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "scanning window buckets"));
      MergeSorted(out, bucket, scratch);
    }
  }
  return out;
}

}  // namespace tally::persistence
