#include "persistence/ban_keeper.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <limits>

#include "core/clock.h"
#include "persistence/db.h"
#include "persistence/db_internal.h"
#include "persistence/record_codec.h"
#include "persistence/store.h"

namespace tally::persistence {
namespace {

using core::Status;

constexpr char kAutoDisabled[] = "auto_disabled";

// A record's ban_until as Unix nanoseconds, saturating past int64's range.
int64_t ToNs(const core::OffsetTime& t) {
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / core::kNanosPerSecond - 1;
  if (t.unix_seconds > kMaxSeconds) {
    return std::numeric_limits<int64_t>::max();
  }
  if (t.unix_seconds < -kMaxSeconds) {
    return std::numeric_limits<int64_t>::min();
  }
  return t.unix_seconds * core::kNanosPerSecond + t.nanos;
}

std::optional<int64_t> BanUntilNs(const ApiKey& k) {
  if (!k.ban_until) {
    return std::nullopt;
  }
  return ToNs(*k.ban_until);
}

}  // namespace

BanKeeper::BanKeeper(core::BanPolicy defaults, core::FailureCodes* codes)
    : codes_(codes), policy_(std::move(defaults)) {}

core::BanPolicy BanKeeper::policy() const {
  std::lock_guard lock(mu_);
  return policy_;
}

BanKeeper::Stats BanKeeper::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.codes_dropped = codes_ != nullptr ? codes_->dropped() : 0;
  return s;
}

uint64_t BanKeeper::last_event_id() const {
  std::lock_guard lock(mu_);
  return events_.empty() ? 0 : events_.back().id;
}

uint64_t BanKeeper::first_event_id() const {
  std::lock_guard lock(mu_);
  return events_.empty() ? 0 : events_.front().id;
}

std::vector<BanEvent> BanKeeper::EventsAfter(uint64_t after, size_t max) const {
  std::lock_guard lock(mu_);
  std::vector<BanEvent> out;
  if (events_.empty() || after >= events_.back().id) {
    return out;
  }
  // Ids are consecutive in the log: index by subtraction.
  size_t i = after < events_.front().id ? 0 : static_cast<size_t>(after - events_.front().id + 1);
  for (; i < events_.size() && out.size() < max; ++i) {
    out.push_back(events_[i]);
  }
  return out;
}

void BanKeeper::CountActive(const Entry& e, int delta) {
  if (!e.live || e.status != core::KeyStatus::kActive || e.group == kUnassignedGroup) {
    return;
  }
  uint64_t& n = active_[e.group];
  n = delta > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
}

void BanKeeper::PublishDeadline() {
  // Relaxed: read as a hint by ReleaseDue.
  next_deadline_ns_.store(
      deadlines_.empty() ? std::numeric_limits<int64_t>::max() : deadlines_.top().first,
      std::memory_order_relaxed);
}

Status BanKeeper::Load(const Db& db) {
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  uint64_t banned = 0;
  // One table of the right size, instead of a rehash of every entry each time it doubles.
  if (uint64_t estimate = 0;
      db.rocks()->GetIntProperty(db.keys(), "rocksdb.estimate-num-keys", &estimate)) {
    keys_.reserve(keys_.size() + estimate);
  }
  std::unique_ptr<rocksdb::Iterator> it(db.rocks()->NewIterator(scan, db.keys()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ApiKey k;
    if (Status s = DecodeKey(it->value().ToStringView(), &k); !s.ok()) {
      return Status::Corruption("key " + std::to_string(IdFromKey(it->key().ToStringView())) +
                                ": " + s.message());
    }
    Entry& e = keys_[k.id];
    e.group = k.group_id;
    e.status = core::ClassifyStatus(k.status);
    e.auto_ban = k.auto_ban;
    e.live = k.live();
    e.ban_until_ns = BanUntilNs(k);
    CountActive(e, 1);
    if (e.live && e.status == core::KeyStatus::kAutoDisabled) {
      ++banned;
      if (e.ban_until_ns) {
        deadlines_.push({*e.ban_until_ns, k.id});
      }
    }
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "reading keys for the ban rule"));

  std::deque<BanEvent> events;
  std::optional<core::BanPolicy> stored;
  it.reset(db.rocks()->NewIterator(scan, db.bans()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    std::string_view value = it->value().ToStringView();
    if (key == kBanPolicyKey) {
      core::BanPolicy p;
      TALLY_RETURN_IF_ERROR(DecodeBanPolicy(value, &p));
      stored = std::move(p);
    } else if (!key.empty() && key[0] == kBanStatePrefix) {
      uint8_t level = 0;
      bool half_open = false;
      bool cooling = false;
      TALLY_RETURN_IF_ERROR(DecodeBanState(value, &level, &half_open, &cooling));
      keys_[BanKeyId(key)].state = core::KeyBanState(level, half_open, cooling);
    } else if (!key.empty() && key[0] == kBanEventPrefix) {
      BanEvent e;
      TALLY_RETURN_IF_ERROR(DecodeBanEvent(value, &e));
      events.push_back(std::move(e));
      if (events.size() > kEventLogSize) {
        events.pop_front();
      }
    }
  }
  TALLY_RETURN_IF_ERROR(FromRocks(it->status(), "reading the ban state"));
  next_event_id_ = events.empty() ? 1 : events.back().id + 1;
  PublishDeadline();
  std::lock_guard lock(mu_);
  if (stored) {
    policy_ = std::move(*stored);
  }
  if (codes_ != nullptr) {
    std::vector<int> wanted = policy_.immediate_codes;
    wanted.insert(wanted.end(), policy_.cooldown_codes.begin(), policy_.cooldown_codes.end());
    codes_->SetCodes(wanted);
  }
  events_ = std::move(events);
  stats_.banned_now = banned;
  return Status::Ok();
}

void BanKeeper::StageEvent(BanEvent e, const Db& db, rocksdb::WriteBatch* batch) {
  e.id = next_event_id_ + pending_events_.size();
  batch->Put(db.bans(), BanEventKey(e.id), EncodeBanEvent(e));
  if (e.id > kEventLogSize) {
    batch->Delete(db.bans(), BanEventKey(e.id - kEventLogSize));
  }
  pending_events_.push_back(std::move(e));
}

void BanKeeper::CommitEvents() {
  if (pending_events_.empty()) {
    return;
  }
  next_event_id_ += pending_events_.size();
  {
    std::lock_guard lock(mu_);
    for (BanEvent& e : pending_events_) {
      events_.push_back(std::move(e));
      if (events_.size() > kEventLogSize) {
        events_.pop_front();
      }
    }
  }
  pending_events_.clear();
  if (on_events_) {
    on_events_();
  }
}

// ---- Admin writes of keys ----

void BanKeeper::StageKeyWrite(const ApiKey* old, const ApiKey& next, TimeNs now, const Db& db,
                              rocksdb::WriteBatch* batch) {
  pending_events_.clear();
  KeyWrite w;
  w.key = next.id;
  w.next.group = next.group_id;
  w.next.status = core::ClassifyStatus(next.status);
  w.next.auto_ban = next.auto_ban;
  w.next.live = next.live();
  w.next.ban_until_ns = BanUntilNs(next);
  // An operator's status wins: the rule starts over for this key.
  w.reset_state = old == nullptr || old->status != next.status || !next.live();
  if (old != nullptr && old->live() && old->status == kAutoDisabled &&
      (next.status != kAutoDisabled || !next.live())) {
    BanEvent e;
    e.type = BanEvent::Type::kUnban;
    e.at = now;
    e.key = next.id;
    e.group_id = next.group_id;
    e.rule = "operator";
    StageEvent(std::move(e), db, batch);
  }
  if (w.reset_state) {
    batch->Delete(db.bans(), BanStateKey(next.id));
  }
  key_write_ = std::move(w);
}

void BanKeeper::CommitKeyWrite() {
  if (!key_write_) {
    return;
  }
  KeyWrite& w = *key_write_;
  Entry& e = keys_[w.key];
  const bool was_banned = e.live && e.status == core::KeyStatus::kAutoDisabled;
  CountActive(e, -1);
  e.group = w.next.group;
  e.status = w.next.status;
  e.auto_ban = w.next.auto_ban;
  e.live = w.next.live;
  e.ban_until_ns = w.next.ban_until_ns;
  CountActive(e, 1);
  if (w.reset_state) {
    e.state.Reset();
  }
  const bool banned = e.live && e.status == core::KeyStatus::kAutoDisabled;
  if (banned && e.ban_until_ns) {
    deadlines_.push({*e.ban_until_ns, w.key});
    PublishDeadline();
  }
  {
    std::lock_guard lock(mu_);
    stats_.banned_now = stats_.banned_now + (banned ? 1 : 0) - (was_banned ? 1 : 0);
  }
  key_write_.reset();
  CommitEvents();
}

void BanKeeper::AbortKeyWrite() {
  key_write_.reset();
  pending_events_.clear();
}

// ---- The policy ----

Status BanKeeper::SetPolicy(Store& store, const core::BanPolicy& p, std::string json) {
  TALLY_RETURN_IF_ERROR(p.Validate());
  BanEvent e;
  e.type = BanEvent::Type::kPolicy;
  e.reason = std::move(json);
  // A failed write leaves its staged event in pending_events_: every stage clears it first.
  return store.WriteAside(
      [&](const Db& db, rocksdb::WriteBatch* batch) {
        pending_events_.clear();
        batch->Put(db.bans(), kBanPolicyKey, EncodeBanPolicy(p));
        e.at = core::UnixNowNs();
        StageEvent(std::move(e), db, batch);
        return Status::Ok();
      },
      [&] {
        {
          std::lock_guard lock(mu_);
          policy_ = p;
        }
        if (codes_ != nullptr) {
          std::vector<int> wanted = p.immediate_codes;
          wanted.insert(wanted.end(), p.cooldown_codes.begin(), p.cooldown_codes.end());
          codes_->SetCodes(wanted);
        }
        CommitEvents();
      });
}

}  // namespace tally::persistence
