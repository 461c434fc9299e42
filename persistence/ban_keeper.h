// BanKeeper: the automatic-ban rule (core/ban_policy.h) at every flush, its persisted state,
// and the event log that tells the gateways (issue 16; README "Bans").
//
// What it keeps in memory, loaded at Store::AddKeyObserver and kept current by every flush
// and every admin write of a key (a KeyObserver), so that a flush never reads RocksDB to
// judge a key: each key's group, status, auto_ban, ban deadline and KeyBanState (the
// one-second window and the backoff); each group's count of `active` keys (keep-one); an
// index of the ban deadlines; the ban policy; the last kEventLogSize events.
//
// At each flush (Stage, under the store's write lock): the failures with a code are taken
// from the FailureCodes channel; the keys whose ban_until has passed are judged first (their
// release counts for keep-one), then every key with an applied delta or a code. Each decision
// goes into the flush's own synced batch: a ban or a release rewrites the key record
// (status, ban_reason, ban_until, updated_at) and its ban state ("s" + id: backoff level,
// half-open, cooling), and appends an event ("e" + id; the log keeps the last kEventLogSize).
// So a ban and the flush that decided it are durable together, and a crash at any point
// leaves either neither or both, the record holding its reason and deadline.
//
// Admin writes (StageKeyWrite): an operator's change of a key's status wins: the rule's state
// for the key is reset (and deleted from the store), and a key leaving auto_disabled gets an
// `unban` event. POST /admin/api-keys/{id}/unban is such a PUT (status active, ban fields
// cleared). A key the operator set to auto_disabled with a ban_until is released by the rule
// at that deadline, like a ban of its own.
//
// Memory: after every committed flush a slice of the keys (1/kSweepParts of the map) has its
// window trimmed, so a key silent for a whole window gives its ring back (~260 bytes) within
// kSweepParts flushes; what stays per key is its Entry.
//
// A failed flush (Abort): the decided keys get their backoff state back; a window keeps the
// deltas of the failed flush (they are counted again when the flusher retries them: the only
// inexactness, on a flush that failed to write).
//
// Thread safety: Stage/Commit/Abort, Load and the key-write methods run under the store's
// write lock (one at a time). policy(), EventsAfter(), stats() and the setters of callbacks
// may be called from any thread. SetPolicy takes the store's write lock itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/ban_policy.h"
#include "core/failure_codes.h"
#include "persistence/ban_codec.h"
#include "persistence/flush_participant.h"
#include "persistence/key_observer.h"

namespace tally::persistence {

class Store;

class BanKeeper final : public FlushParticipant, public KeyObserver {
 public:
  static constexpr size_t kEventLogSize = 10'000;

  struct Stats {
    uint64_t bans[5] = {};       // by core::BanRule (index kImmediateCode..kRun)
    uint64_t withheld = 0;       // bans keep_one_active did not make
    uint64_t banned_now = 0;     // live keys with status auto_disabled
    uint64_t codes_dropped = 0;  // failure codes the channel had no room for
  };

  // `defaults` (validated by the caller) is the policy until one is PUT: a stored one wins at
  // Load. `codes` may be null (no code is then carried); not owned.
  BanKeeper(core::BanPolicy defaults, core::FailureCodes* codes);

  // KeyObserver.
  core::Status Load(const Db& db) override;
  void StageKeyWrite(const ApiKey* old, const ApiKey& next, TimeNs now, const Db& db,
                     rocksdb::WriteBatch* batch) override;
  void CommitKeyWrite() override;
  void AbortKeyWrite() override;

  // FlushParticipant.
  core::Status Stage(const FlushView& flush, rocksdb::WriteBatch* batch) override;
  void Commit(const FlushView& flush) override;
  void Abort() override;

  // The policy the next flush applies.
  core::BanPolicy policy() const;
  // Validates `p`, then persists it with a `policy` event whose reason is `json` (the
  // policy as the API renders it), synced, and applies it from the next flush on.
  // InvalidArgument (nothing written) for a bad policy; the store's write errors.
  core::Status SetPolicy(Store& store, const core::BanPolicy& p, std::string json);

  // The held events with an id above `after`, oldest first, at most `max`.
  std::vector<BanEvent> EventsAfter(uint64_t after, size_t max) const;
  // The newest event's id (0: none yet) and the oldest held one's (0: none).
  uint64_t last_event_id() const;
  uint64_t first_event_id() const;
  // Called after each commit that appended events, under the store's write lock: keep it
  // cheap (a notify). Set before the first flush.
  void SetOnEvents(std::function<void()> fn) { on_events_ = std::move(fn); }
  // Called for each withheld ban at its flush's commit, under the store's write lock (the
  // daemon logs it, rate-limited). Set before the first flush.
  void SetOnWithheld(std::function<void(uint64_t key, const std::string& reason)> fn) {
    on_withheld_ = std::move(fn);
  }
  Stats stats() const;
  // Whether `key`'s window holds its ring (core/ban_policy.h). Under the store's lock
  // (tests).
  bool HoldsWindow(uint64_t key) const {
    auto it = keys_.find(key);
    return it != keys_.end() && it->second.state.has_window();
  }
  // Each committed flush frees the rings of idle keys in 1/kSweepParts of the key map
  // (at least kSweepMinBuckets buckets), so a key silent for a whole window gives its ring
  // back within kSweepParts flushes after the window ended.
  static constexpr size_t kSweepParts = 32;
  static constexpr size_t kSweepMinBuckets = 4096;
  // Whether a ban deadline has passed at `now_ns` (a flush is due to release it, even with
  // no delta). Any thread; cheap (one atomic load).
  bool ReleaseDue(int64_t now_ns) const {
    // Relaxed: a hint; the flush itself reads the deadlines under the store's lock.
    return now_ns >= next_deadline_ns_.load(std::memory_order_relaxed);
  }

 private:
  struct Entry {
    uint64_t group = kUnassignedGroup;
    core::KeyStatus status = core::KeyStatus::kActive;
    bool auto_ban = true;
    bool live = true;
    std::optional<int64_t> ban_until_ns;
    core::KeyBanState state;
  };
  // One decision of a staged flush, with what Abort restores.
  struct Change {
    uint64_t key = 0;
    core::Decision decision;
    uint8_t level_before = 0;
    bool half_open_before = false;
    bool cooling_before = false;
  };
  struct KeyWrite {
    uint64_t key = 0;
    Entry next;  // its state is unused
    bool reset_state = false;
  };
  using Deadline = std::pair<int64_t, uint64_t>;  // {ban_until_ns, key}

  // Gives `e` the next id, adds it to `batch` (dropping the one kEventLogSize older) and to
  // pending_events_.
  void StageEvent(BanEvent e, const Db& db, rocksdb::WriteBatch* batch);
  // Appends pending_events_ to the log (memory) and tells on_events_.
  void CommitEvents();
  // Rewrites the key record for a ban or a release.
  core::Status StageRecord(const FlushView& flush, uint64_t key, bool created,
                           const core::Decision& d, rocksdb::WriteBatch* batch);
  void CountActive(const Entry& e, int delta);
  void PublishDeadline();
  // Trim()s the next slice of keys_ (see kSweepParts).
  void SweepWindows(const core::BanPolicy& policy, int64_t now_ns);

  core::FailureCodes* const codes_;

  // Under the store's write lock.
  std::unordered_map<uint64_t, Entry> keys_;
  std::unordered_map<uint64_t, uint64_t> active_;  // group -> its live `active` keys
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  uint64_t next_event_id_ = 1;
  std::vector<Change> changes_;                             // staged by this flush
  std::vector<Deadline> popped_;                            // taken from deadlines_ by this flush
  std::vector<core::FailureCodes::Entry> carried_;          // codes drained, until a commit
  std::vector<BanEvent> pending_events_;                    // staged, flush or key write
  std::vector<std::pair<uint64_t, std::string>> withheld_;  // staged
  std::optional<KeyWrite> key_write_;                       // staged
  size_t sweep_bucket_ = 0;                                 // where SweepWindows goes on
  // deadlines_.top() (INT64_MAX when empty), for ReleaseDue; written under the store's lock.
  std::atomic<int64_t> next_deadline_ns_{std::numeric_limits<int64_t>::max()};
  std::function<void()> on_events_;
  std::function<void(uint64_t, const std::string&)> on_withheld_;

  mutable std::mutex mu_;
  core::BanPolicy policy_;       // guarded by mu_
  std::deque<BanEvent> events_;  // guarded by mu_; the last kEventLogSize
  Stats stats_;                  // guarded by mu_
};

}  // namespace tally::persistence
