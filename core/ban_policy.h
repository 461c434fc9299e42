// BanPolicy and Evaluate: the automatic-ban rule of issue 16, as a pure function.
//
// No I/O, no clock, no logging: the caller passes `now` (Unix nanoseconds, as the records'
// times) and holds one KeyBanState per key. Evaluate() answers what to do with the key's record;
// the caller writes it (status, ban_reason, ban_until, the backoff level), logs and counts.
//
// The rule, for a key with auto_ban true and status `active`, over a sliding window of the last
// window_seconds at one-second resolution (checked in this order; the first that fires is the
// ban's reason):
//   1. Immediate code: a failure of this delta carries a code of immediate_codes -> ban
//      ("code 401").
//   2. Cooldown code: a failure of this delta carries a code of cooldown_codes -> cool for
//      cooldown_seconds, backoff level unchanged ("code 429 cooldown"). It outranks the rate
//      and the run: a throttled key fails because it is throttled, and throttling must not
//      grow its backoff.
//   3. Rate: at least min_requests in the window and failures / total >= failure_rate
//      ("failure_rate 0.63 (38/60) over 60s").
//   4. Run: at least consecutive_failures failures in the window after the newest second that
//      holds a success, even below min_requests ("consecutive_failures 10"). Outcomes of one
//      second are not ordered, so a second holding a success ends the run and its own failures
//      do not count (the reading that never bans on a guess).
// A ban (1, 3, 4) lasts cooldown_seconds << level, at most max_cooldown_seconds. The level
// grows by one at a ban of a half-open key, stays at a ban of a key that is not, and returns
// to 0 when a half-open key passes.
// Half-open: when ban_until has passed, an `auto_disabled` key is released (kUnban: back to
// `active`) with an empty window; it is judged on what follows: a ban -> the level grows; a
// window of at least min_requests under the rate (no ban) -> kBackoffReset. It stays half-open
// until one of the two happens, however long that takes. A cooldown (2) is no verdict on the
// key: it keeps the key's half-open state through the cooldown and its release.
// Never judged: auto_ban false, or a status other than `active` / `auto_disabled` (the
// operator's), or `auto_disabled` without a ban_until (set by hand). A key the rule banned is
// still released at its deadline when auto_ban has been turned off since: auto_ban false stops
// new bans, and a deadline the gateways were told is kept rather than turned into a ban with
// no end (POST .../unban is for the rest).
// Keep one: with keep_one_active, a ban that would leave the key's group with no `active` key
// is not made (kWithheld, with the rule that fired). GroupActive counts the group's active keys
// through one flush: a ban takes one, a release gives one back, so two keys of a two-key group
// failing in the same flush give one kBan (the first judged) and one kWithheld. Keys of no
// provider group (group 0) have no group to keep alive: give them a GroupActive of their own
// holding UINT64_MAX.
//
// Only new outcomes judge a key: Evaluate is called for the keys with deltas at this flush and
// for the keys whose ban has expired. A window whose old successes age out while nothing new
// arrives does not ban by itself (no request was affected); the key's next outcome is judged
// on the window as it then stands. Cost per flush: O(keys with deltas + bans expiring), each
// O(1) amortised plus the seconds skipped since the key's last evaluation (at most
// window_seconds) and the codes of its delta. To find expiring bans without a scan, the caller
// keeps an index ordered by ban_until (a min-heap or a std::multimap of {ban_until, key}
// filled at each kBan and at start-up from the stored bans), pops the entries <= now at each
// flush, and skips an entry whose record no longer holds that ban (unbanned by an operator).
//
// Thread safety: none inside; a KeyBanState and a GroupActive belong to one thread (the
// flusher). BanPolicy is a value: copy it to change it between flushes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tally::core {

// The rule's settings, with issue 16's defaults. Validate() gives the ranges.
struct BanPolicy {
  static constexpr int64_t kMaxWindowSeconds = 3600;
  static constexpr int64_t kMaxCount = 1'000'000'000;      // min_requests, consecutive_failures
  static constexpr int64_t kMaxCooldownSeconds = 604'800;  // one week
  static constexpr size_t kMaxCodes = 16;                  // per list

  int64_t window_seconds = 60;                    // 1..3600
  int64_t min_requests = 20;                      // 1..1e9
  double failure_rate = 0.5;                      // (0, 1]
  int64_t consecutive_failures = 10;              // 1..1e9
  std::vector<int> immediate_codes = {401, 403};  // each 100..599, at most 16, no repeats,
  std::vector<int> cooldown_codes = {429};        // and no code in both lists
  int64_t cooldown_seconds = 60;                  // 1..604800, at most max_cooldown_seconds
  int64_t max_cooldown_seconds = 3600;            // 1..604800
  bool keep_one_active = true;

  // Ok, or InvalidArgument naming the first bad field, its range and the value given.
  Status Validate() const;
  // The length of a ban at backoff `level`: cooldown_seconds doubled `level` times, at most
  // max_cooldown_seconds. For any level (no overflow).
  int64_t BanSeconds(unsigned level) const;

  bool operator==(const BanPolicy&) const = default;
};

// A record's status as the rule sees it.
enum class KeyStatus : uint8_t {
  kActive,        // "active"
  kAutoDisabled,  // "auto_disabled"
  kOther,         // "manual_disabled", "suspended", anything else: the operator's, untouched
};
KeyStatus ClassifyStatus(std::string_view status);

// Failures of one delta that carried an HTTP status code: `count` of them had `code`. They are
// also counted in KeyInput::failures.
struct CodeCount {
  int code = 0;
  uint64_t count = 0;
};

// One key at one flush: what arrived since its previous evaluation, and its record.
struct KeyInput {
  uint64_t successes = 0;
  uint64_t failures = 0;
  std::span<const CodeCount> codes;
  KeyStatus status = KeyStatus::kActive;
  bool auto_ban = true;
  std::optional<int64_t> ban_until_ns;
};

// The group's `active` keys through one flush. The caller makes one per group at the start of
// a flush, from the group's count of active keys (the judged ones included), and passes it to
// Evaluate for each of the group's keys in that flush.
class GroupActive {
 public:
  explicit GroupActive(uint64_t active) : active_(active) {}
  uint64_t active() const { return active_; }

 private:
  friend class BanJudge;
  uint64_t active_;
};

// A key's memory between flushes, held by the caller (one per key that has ever been judged).
//
// Bytes: sizeof(KeyBanState) (56 on 64-bit targets) while the key has had no outcome within
// its window, plus a ring of window_seconds buckets while it has: 4 bytes each (two 16-bit
// counts; 240 at the default 60 s, and the allocator's header) as long as no second of the
// window holds more than 65,535 successes or failures, 8 bytes each (two 32-bit counts) from
// the first second that does until the ring is freed. So ~310 bytes per key heard from in the
// last minute at the defaults, 31 MB for 100k such keys. A wide bucket holds up to 2^32-1
// successes and as many failures of one second (more saturate: far beyond what one key can
// send). The ring is freed at a ban, at a release, and by Trim() once every second in it has
// aged out (persistence::BanKeeper sweeps every key with Trim() within 32 flushes).
//
// Persist backoff_level(), half_open() and cooling() with the record (a byte and two bits;
// issue 16 names only the level, but a restart that forgot half_open would not grow the next
// ban) and rebuild the state from them at start-up with the second constructor; the window is
// not persisted (a restart starts it empty).
class KeyBanState {
 public:
  KeyBanState() = default;
  // A key read back from the store.
  KeyBanState(uint8_t backoff_level, bool half_open, bool cooling);

  uint8_t backoff_level() const { return level_; }
  // Released from a ban and not yet judged.
  bool half_open() const { return (flags_ & kHalfOpen) != 0; }
  // Serving a cooldown-code ban (which keeps half_open as it was).
  bool cooling() const { return (flags_ & kCooling) != 0; }

  // The window as of its newest second (no aging is applied here).
  uint64_t window_successes() const { return successes_; }
  uint64_t window_failures() const { return failures_; }
  uint64_t run() const { return run_; }
  // Whether the window holds its ring (the memory above).
  bool has_window() const { return ring_ != nullptr; }

  // Frees the ring if every second in it is older than the window ending at `now_ns`. For a
  // sweep over idle keys; never changes a decision.
  void Trim(const BanPolicy& policy, int64_t now_ns);
  // Back to a key never judged (operator unban, or an operator's change of the status).
  void Reset() { *this = KeyBanState(); }

 private:
  friend class BanJudge;
  struct Bucket {
    uint32_t successes;
    uint32_t failures;
  };
  static constexpr uint32_t kNarrowMax = 0xffff;
  static constexpr uint8_t kHalfOpen = 1;
  static constexpr uint8_t kCooling = 2;

  // Moves the window's end to second `s` (never back) and adds the outcomes to that second.
  void Record(const BanPolicy& policy, int64_t s, uint64_t successes, uint64_t failures);
  void Advance(int64_t s);
  void ClearWindow();
  // Slot i of the ring, in whichever width it has.
  Bucket Get(size_t i) const;
  void Set(size_t i, Bucket b);
  // Rewrites a narrow ring with 32-bit counts.
  void Widen();

  // null: an empty window. Narrow: size_ words, successes in the low 16 bits and failures in
  // the high 16. Wide (wide_): 2 * size_ words, successes then failures.
  std::unique_ptr<uint32_t[]> ring_;
  uint64_t successes_ = 0;  // sums over the ring
  uint64_t failures_ = 0;
  uint64_t run_ = 0;                 // failures in seconds after last_success_second_
  int64_t newest_second_ = 0;        // the ring's newest second (when ring_ is set)
  int64_t last_success_second_ = 0;  // newest second with a success, or one before the window
  uint16_t size_ = 0;                // the ring's length (window_seconds when it was made)
  uint8_t level_ = 0;
  uint8_t flags_ = 0;
  bool wide_ = false;  // the ring holds 32-bit counts
};

enum class Verdict : uint8_t {
  kNone,          // nothing to write
  kBan,           // status auto_disabled, ban_reason = reason, ban_until = ban_until_ns
  kUnban,         // ban_until passed: status active, ban_reason and ban_until cleared
  kWithheld,      // a ban keep_one_active did not make: count it, log it rate-limited; the
                  // key stays active, keeps its window, and is withheld again at each flush
                  // while the rule still fires and its group has no other active key
  kBackoffReset,  // a half-open key passed: persist backoff_level 0
};

enum class BanRule : uint8_t { kNone, kImmediateCode, kCooldownCode, kFailureRate, kRun };
std::string_view BanRuleName(BanRule rule);  // "immediate_code", ..., for metric labels

struct Decision {
  Verdict verdict = Verdict::kNone;
  BanRule rule = BanRule::kNone;  // kBan, kWithheld: the rule that fired
  std::string reason;             // kBan, kWithheld: "code 401", "failure_rate 0.63 (38/60)..."
  int64_t ban_until_ns = 0;       // kBan
  uint8_t backoff_level = 0;      // the key's level after this decision (always)
};

// Judges one key at one flush: records the delta in `state` (only while the key is judged:
// active with auto_ban) and decides. Precondition: policy.Validate() is ok; 0 <= now_ns;
// `group` is the key's group's counter for this flush. Call it at most once per key per flush,
// and for a group's keys whose ban has expired before its other keys, so that a key released
// in this flush counts as active for keep-one. Do not call it again in the same flush for a
// key it released (that key's deltas arrived while it was banned). A flush's delta is counted in
// the second of `now_ns`; a `now_ns` earlier than the key's newest second (the clock stepped back)
// counts in that newest second. O(1) amortised, plus the codes.
[[nodiscard]] Decision Evaluate(const BanPolicy& policy, int64_t now_ns, const KeyInput& input,
                                KeyBanState& state, GroupActive& group);

}  // namespace tally::core
