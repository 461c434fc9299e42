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
