// BanKeeper at each flush: the rule's decisions staged into the flush's batch (ban_keeper.h).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <limits>

#include "persistence/ban_keeper.h"
#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"

namespace tally::persistence {
namespace {

using core::Status;

void PutState(const core::KeyBanState& s, uint64_t key, const Db& db, rocksdb::WriteBatch* batch) {
  if (s.backoff_level() == 0 && !s.half_open() && !s.cooling()) {
    batch->Delete(db.bans(), BanStateKey(key));
  } else {
    batch->Put(db.bans(), BanStateKey(key),
               EncodeBanState(s.backoff_level(), s.half_open(), s.cooling()));
  }
}

}  // namespace

Status BanKeeper::StageRecord(const FlushView& flush, uint64_t key, bool created,
                              const core::Decision& d, rocksdb::WriteBatch* batch) {
  ApiKey k;
  std::string value;
  rocksdb::Status rs =
      flush.db->rocks()->Get(rocksdb::ReadOptions(), flush.db->keys(), IdKey(key), &value);
  if (rs.IsNotFound() && created) {
    // Created by this flush (its record is earlier in the same batch): the same record.
    k.id = key;
    k.created_at = flush.now;
  } else if (!rs.ok()) {
    return FromRocks(rs, "reading api key " + std::to_string(key) + " for the ban rule");
  } else {
    TALLY_RETURN_IF_ERROR(DecodeKey(value, &k));
  }
  if (d.verdict == core::Verdict::kBan) {
    k.status = "auto_disabled";
    k.ban_reason = d.reason;
    k.ban_until = core::OffsetTime::FromUnixNs(d.ban_until_ns);
  } else {
    k.status = "active";
    k.ban_reason.clear();
    k.ban_until.reset();
  }
  k.updated_at = flush.now;
  batch->Put(flush.db->keys(), IdKey(key), EncodeKey(k));
  return Status::Ok();
}

Status BanKeeper::Stage(const FlushView& flush, rocksdb::WriteBatch* batch) {
  changes_.clear();
  popped_.clear();
  pending_events_.clear();
  withheld_.clear();
  const core::BanPolicy policy = this->policy();
  const Db& db = *flush.db;
  const int64_t now = flush.now;

  // The failures with a code, by key (carried_ keeps them through a failed flush).
  if (codes_ != nullptr) {
    std::vector<core::FailureCodes::Entry> fresh = codes_->Drain();
    carried_.insert(carried_.end(), fresh.begin(), fresh.end());
    std::sort(carried_.begin(), carried_.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
  }
  std::vector<core::CodeCount> codes;
  size_t next_code = 0;
  // The codes of `key` (keys asked in increasing order), into `codes`.
  auto codes_of = [&](uint64_t key) {
    codes.clear();
    while (next_code < carried_.size() && carried_[next_code].key < key) {
      ++next_code;
    }
    for (size_t i = next_code; i < carried_.size() && carried_[i].key == key; ++i) {
      codes.push_back({carried_[i].code, carried_[i].count});
    }
  };

  core::GroupActive unassigned(std::numeric_limits<uint64_t>::max());
  std::unordered_map<uint64_t, core::GroupActive> groups;
  auto group_of = [&](uint64_t gid) -> core::GroupActive& {
    if (gid == kUnassignedGroup) {
      return unassigned;
    }
    auto it = groups.find(gid);
    if (it == groups.end()) {
      auto a = active_.find(gid);
      it = groups.emplace(gid, core::GroupActive(a == active_.end() ? 0 : a->second)).first;
    }
    return it->second;
  };

  std::vector<uint64_t> released;
  auto judge = [&](uint64_t key, Entry& e, const core::KeyInput& in, bool created) -> Status {
    const uint8_t level = e.state.backoff_level();
    const bool half_open = e.state.half_open();
    const bool cooling = e.state.cooling();
    core::Decision d = core::Evaluate(policy, now, in, e.state, group_of(e.group));
    switch (d.verdict) {
      case core::Verdict::kNone:
        return Status::Ok();
      case core::Verdict::kWithheld:
        withheld_.emplace_back(key, d.reason);
        return Status::Ok();
      case core::Verdict::kBan:
      case core::Verdict::kUnban: {
        TALLY_RETURN_IF_ERROR(StageRecord(flush, key, created, d, batch));
        BanEvent ev;
        ev.type = d.verdict == core::Verdict::kBan ? BanEvent::Type::kBan : BanEvent::Type::kUnban;
        ev.at = now;
        ev.key = key;
        ev.group_id = e.group;
        if (d.verdict == core::Verdict::kBan) {
          ev.ban_until_ns = d.ban_until_ns;
          ev.backoff_level = d.backoff_level;
          ev.rule = std::string(core::BanRuleName(d.rule));
          ev.reason = d.reason;
        } else {
          ev.rule = "expired";
          released.push_back(key);
        }
        StageEvent(std::move(ev), db, batch);
        break;
      }
      case core::Verdict::kBackoffReset:
        break;
    }
    PutState(e.state, key, db, batch);
    changes_.push_back({key, std::move(d), level, half_open, cooling});
    return Status::Ok();
  };

  // 1. Bans whose deadline has passed, before any other key (keep-one counts them active).
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const Deadline top = deadlines_.top();
    deadlines_.pop();
    popped_.push_back(top);
    auto it = keys_.find(top.second);
    if (it == keys_.end() || !it->second.live ||
        it->second.status != core::KeyStatus::kAutoDisabled ||
        it->second.ban_until_ns != top.first) {
      continue;  // unbanned or changed since: a stale entry
    }
    core::KeyInput in;
    in.successes = 0;
    in.failures = 0;
    in.status = core::KeyStatus::kAutoDisabled;
    in.auto_ban = it->second.auto_ban;
    in.ban_until_ns = top.first;
    TALLY_RETURN_IF_ERROR(judge(top.second, it->second, in, false));
  }
  std::sort(released.begin(), released.end());

  // 2. Every key with an applied delta or a code, in key order (both lists are sorted).
  size_t c = 0;
  auto judge_key = [&](uint64_t key, uint64_t group, const core::Totals* delta,
                       bool created) -> Status {
    if (std::binary_search(released.begin(), released.end(), key)) {
      return Status::Ok();  // released in this flush: judged on what follows
    }
    auto it = keys_.find(key);
    if (it == keys_.end()) {
      if (delta == nullptr) {
        return Status::Ok();  // a code for a key no record holds (dropped or deleted)
      }
      it = keys_.emplace(key, Entry{}).first;
      it->second.group = group;
    }
    Entry& e = it->second;
    if (!e.live) {
      return Status::Ok();
    }
    codes_of(key);
    core::KeyInput in;
    if (delta != nullptr) {
      in.successes = static_cast<uint64_t>(delta->success);
      in.failures = static_cast<uint64_t>(delta->failure);
    }
    in.codes = codes;
    in.status = e.status;
    in.auto_ban = e.auto_ban;
    in.ban_until_ns = e.ban_until_ns;
    return judge(key, e, in, created);
  };
  for (const AppliedDelta& a : flush.applied) {
    while (c < carried_.size() && carried_[c].key < a.key) {
      TALLY_RETURN_IF_ERROR(judge_key(carried_[c].key, 0, nullptr, false));
      const uint64_t done = carried_[c].key;
      while (c < carried_.size() && carried_[c].key == done) {
        ++c;
      }
    }
    TALLY_RETURN_IF_ERROR(judge_key(a.key, a.group_id, &a.delta, a.created));
    while (c < carried_.size() && carried_[c].key == a.key) {
      ++c;
    }
  }
  while (c < carried_.size()) {
    const uint64_t key = carried_[c].key;
    TALLY_RETURN_IF_ERROR(judge_key(key, 0, nullptr, false));
    while (c < carried_.size() && carried_[c].key == key) {
      ++c;
    }
  }
  return Status::Ok();
}

void BanKeeper::SweepWindows(const core::BanPolicy& policy, int64_t now_ns) {
  const size_t buckets = keys_.bucket_count();
  if (buckets == 0) {
    return;
  }
  const size_t slice = std::min(buckets, std::max(kSweepMinBuckets, buckets / kSweepParts));
  for (size_t i = 0; i < slice; ++i) {
    sweep_bucket_ = (sweep_bucket_ + 1) % buckets;  // a rehash only moves where it goes on
    for (auto it = keys_.begin(sweep_bucket_); it != keys_.end(sweep_bucket_); ++it) {
      it->second.state.Trim(policy, now_ns);
    }
  }
}

void BanKeeper::Commit(const FlushView& flush) {
  SweepWindows(policy(), flush.now);
  uint64_t banned_delta_up = 0;
  uint64_t banned_delta_down = 0;
  uint64_t bans[5] = {};
  for (const Change& ch : changes_) {
    Entry& e = keys_[ch.key];
    if (ch.decision.verdict == core::Verdict::kBan) {
      CountActive(e, -1);
      e.status = core::KeyStatus::kAutoDisabled;
      e.ban_until_ns = ch.decision.ban_until_ns;
      deadlines_.push({ch.decision.ban_until_ns, ch.key});
      ++banned_delta_up;
      ++bans[static_cast<size_t>(ch.decision.rule)];
    } else if (ch.decision.verdict == core::Verdict::kUnban) {
      e.status = core::KeyStatus::kActive;
      e.ban_until_ns.reset();
      CountActive(e, 1);
      ++banned_delta_down;
    }
  }
  {
    std::lock_guard lock(mu_);
    stats_.banned_now += banned_delta_up;
    stats_.banned_now -= std::min(stats_.banned_now, banned_delta_down);
    for (size_t i = 0; i < 5; ++i) {
      stats_.bans[i] += bans[i];
    }
    stats_.withheld += withheld_.size();
  }
  if (on_withheld_) {
    for (const auto& [key, reason] : withheld_) {
      on_withheld_(key, reason);
    }
  }
  changes_.clear();
  popped_.clear();
  carried_.clear();
  withheld_.clear();
  PublishDeadline();
  CommitEvents();
}

void BanKeeper::Abort() {
  for (const Change& ch : changes_) {
    keys_[ch.key].state =
        core::KeyBanState(ch.level_before, ch.half_open_before, ch.cooling_before);
  }
  for (const Deadline& d : popped_) {
    deadlines_.push(d);
  }
  PublishDeadline();
  changes_.clear();
  popped_.clear();
  withheld_.clear();
  pending_events_.clear();
  // carried_ stays: the next flush judges those codes.
}

}  // namespace tally::persistence
