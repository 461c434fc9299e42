#include "core/ban_policy.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/limits.h"

namespace tally::core {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

Status OutOfRange(std::string_view field, std::string_view range, std::string_view got) {
  std::string m = "ban policy: ";
  m.append(field).append(" must be ").append(range).append(", got ").append(got);
  return Status::InvalidArgument(std::move(m));
}

Status CheckRange(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value >= lo && value <= hi) {
    return Status::Ok();
  }
  return OutOfRange(field, std::to_string(lo) + ".." + std::to_string(hi), std::to_string(value));
}

Status CheckCodes(std::string_view field, const std::vector<int>& codes) {
  if (codes.size() > BanPolicy::kMaxCodes) {
    return OutOfRange(field, "at most 16 codes", std::to_string(codes.size()));
  }
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < 100 || codes[i] > 599) {
      return OutOfRange(field, "HTTP status codes 100..599", std::to_string(codes[i]));
    }
    if (std::find(codes.begin(), codes.begin() + static_cast<ptrdiff_t>(i), codes[i]) !=
        codes.begin() + static_cast<ptrdiff_t>(i)) {
      return OutOfRange(field, "codes without repeats", std::to_string(codes[i]) + " twice");
    }
  }
  return Status::Ok();
}

bool Contains(const std::vector<int>& codes, int code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// now + seconds, in nanoseconds, at most INT64_MAX.
int64_t Deadline(int64_t now_ns, int64_t seconds) {
  const int64_t span = seconds * kNanosPerSecond;  // seconds <= one week: no overflow
  return now_ns > kMaxInt64 - span ? kMaxInt64 : now_ns + span;
}

uint32_t SaturatingAdd32(uint32_t a, uint64_t b) {
  const uint64_t room = std::numeric_limits<uint32_t>::max() - a;
  return b >= room ? std::numeric_limits<uint32_t>::max() : a + static_cast<uint32_t>(b);
}

void AppendNumber(std::string& out, uint64_t v) { out += std::to_string(v); }

std::string RateReason(uint64_t failures, uint64_t total, int64_t window_seconds) {
  char rate[32];
  const double r = static_cast<double>(failures) / static_cast<double>(total);
  auto [end, ec] = std::to_chars(rate, rate + sizeof(rate), r, std::chars_format::fixed, 2);
  std::string out = "failure_rate ";
  out.append(rate, ec == std::errc() ? end : rate);
  out += " (";
  AppendNumber(out, failures);
  out += '/';
  AppendNumber(out, total);
  out += ") over ";
  AppendNumber(out, static_cast<uint64_t>(window_seconds));
  out += 's';
  return out;
}

}  // namespace

Status BanPolicy::Validate() const {
  if (Status s = CheckRange("window_seconds", window_seconds, 1, kMaxWindowSeconds); !s.ok()) {
    return s;
  }
  if (Status s = CheckRange("min_requests", min_requests, 1, kMaxCount); !s.ok()) {
    return s;
  }
  // Written so that NaN fails too.
  if (!(failure_rate > 0.0 && failure_rate <= 1.0)) {
    return OutOfRange("failure_rate", "in (0, 1]", std::to_string(failure_rate));
  }
  if (Status s = CheckRange("consecutive_failures", consecutive_failures, 1, kMaxCount); !s.ok()) {
    return s;
  }
  if (Status s = CheckCodes("immediate_codes", immediate_codes); !s.ok()) {
    return s;
  }
  if (Status s = CheckCodes("cooldown_codes", cooldown_codes); !s.ok()) {
    return s;
  }
  for (int code : cooldown_codes) {
    if (Contains(immediate_codes, code)) {
      return OutOfRange("cooldown_codes", "disjoint from immediate_codes",
                        std::to_string(code) + " in both");
    }
  }
  if (Status s = CheckRange("cooldown_seconds", cooldown_seconds, 1, kMaxCooldownSeconds);
      !s.ok()) {
    return s;
  }
  if (Status s = CheckRange("max_cooldown_seconds", max_cooldown_seconds, 1, kMaxCooldownSeconds);
      !s.ok()) {
    return s;
  }
  if (cooldown_seconds > max_cooldown_seconds) {
    return Status::InvalidArgument(
        "ban policy: cooldown_seconds (" + std::to_string(cooldown_seconds) +
        ") must not exceed max_cooldown_seconds (" + std::to_string(max_cooldown_seconds) + ")");
  }
  return Status::Ok();
}

int64_t BanPolicy::BanSeconds(unsigned level) const {
  int64_t seconds = cooldown_seconds;
  for (unsigned i = 0; i < level && seconds < max_cooldown_seconds; ++i) {
    seconds *= 2;  // seconds < max <= one week before each doubling: no overflow
  }
  return std::min(seconds, max_cooldown_seconds);
}

KeyStatus ClassifyStatus(std::string_view status) {
  if (status == "active") {
    return KeyStatus::kActive;
  }
  if (status == "auto_disabled") {
    return KeyStatus::kAutoDisabled;
  }
  return KeyStatus::kOther;
}

std::string_view BanRuleName(BanRule rule) {
  switch (rule) {
    case BanRule::kNone:
      return "none";
    case BanRule::kImmediateCode:
      return "immediate_code";
    case BanRule::kCooldownCode:
      return "cooldown_code";
    case BanRule::kFailureRate:
      return "failure_rate";
    case BanRule::kRun:
      return "consecutive_failures";
  }
  return "none";
}

KeyBanState::KeyBanState(uint8_t backoff_level, bool half_open, bool cooling)
    : level_(backoff_level),
      flags_(static_cast<uint8_t>((half_open ? kHalfOpen : 0) | (cooling ? kCooling : 0))) {}

KeyBanState::Bucket KeyBanState::Get(size_t i) const {
  if (wide_) {
    return Bucket{ring_[2 * i], ring_[2 * i + 1]};
  }
  const uint32_t w = ring_[i];
  return Bucket{w & kNarrowMax, w >> 16};
}

void KeyBanState::Set(size_t i, Bucket b) {
  if (wide_) {
    ring_[2 * i] = b.successes;
    ring_[2 * i + 1] = b.failures;
  } else {
    ring_[i] = b.successes | (b.failures << 16);  // the caller widened a ring they overflow
  }
}

void KeyBanState::Widen() {
  auto wide = std::make_unique<uint32_t[]>(2 * size_t{size_});
  for (size_t i = 0; i < size_; ++i) {
    const Bucket b = Get(i);
    wide[2 * i] = b.successes;
    wide[2 * i + 1] = b.failures;
  }
  ring_ = std::move(wide);
  wide_ = true;
}

void KeyBanState::ClearWindow() {
  ring_.reset();
  wide_ = false;
  successes_ = 0;
  failures_ = 0;
  run_ = 0;
  size_ = 0;
}

void KeyBanState::Trim(const BanPolicy& policy, int64_t now_ns) {
  if (ring_ != nullptr &&
      (now_ns / kNanosPerSecond - newest_second_ >= size_ || size_ != policy.window_seconds)) {
    ClearWindow();
  }
}

void KeyBanState::Advance(int64_t s) {
  if (s <= newest_second_) {
    return;
  }
  if (s - newest_second_ >= size_) {  // every second in the ring ages out
    std::fill(ring_.get(), ring_.get() + (wide_ ? 2 * size_t{size_} : size_t{size_}), 0U);
    successes_ = 0;
    failures_ = 0;
    run_ = 0;
  } else {
    for (int64_t d = newest_second_ + 1; d <= s; ++d) {
      // Slot d % size_ held second d - size_, which leaves the window ending at d.
      const auto slot = static_cast<size_t>(d % size_);
      const Bucket b = Get(slot);
      successes_ -= b.successes;
      failures_ -= b.failures;
      if (d - size_ > last_success_second_) {
        run_ -= b.failures;
      }
      Set(slot, Bucket{0, 0});
    }
  }
  newest_second_ = s;
}

void KeyBanState::Record(const BanPolicy& policy, int64_t s, uint64_t successes,
                         uint64_t failures) {
  if (ring_ != nullptr && size_ != policy.window_seconds) {
    ClearWindow();  // the window's length changed: start it again
  }
  if (ring_ == nullptr) {
    if (successes == 0 && failures == 0) {
      return;  // an empty window stays without a ring
    }
    size_ = static_cast<uint16_t>(policy.window_seconds);
    ring_ = std::make_unique<uint32_t[]>(size_);  // zeroed, narrow
    newest_second_ = s;
    last_success_second_ = s - size_;  // none in the window
  }
  Advance(s);  // an earlier second (the clock stepped back) is taken as the newest one
  const auto slot = static_cast<size_t>(newest_second_ % size_);
  Bucket b = Get(slot);
  const uint32_t old_s = b.successes;
  const uint32_t old_f = b.failures;
  b.successes = SaturatingAdd32(b.successes, successes);
  b.failures = SaturatingAdd32(b.failures, failures);
  if (!wide_ && (b.successes > kNarrowMax || b.failures > kNarrowMax)) {
    Widen();
  }
  Set(slot, b);
  successes_ += b.successes - old_s;
  failures_ += b.failures - old_f;
  if (successes > 0) {
    last_success_second_ = newest_second_;  // this second's failures leave the run
    run_ = 0;
  } else if (newest_second_ > last_success_second_) {
    run_ += b.failures - old_f;
  }
}

// The size the header states (bytes per key).
static_assert(sizeof(void*) != 8 || sizeof(KeyBanState) == 56);

// The rule's steps; a class so that it may reach the private parts of the state.
class BanJudge {
 public:
  static Decision Judge(const BanPolicy& policy, int64_t now_ns, const KeyInput& input,
                        KeyBanState& state, GroupActive& group) {
    Decision d;
    if (input.status == KeyStatus::kAutoDisabled && input.ban_until_ns.has_value()) {
      if (now_ns >= *input.ban_until_ns) {
        d.verdict = Verdict::kUnban;
        state.ClearWindow();
        if (!state.cooling()) {
          state.flags_ |= KeyBanState::kHalfOpen;
        }
        state.flags_ &= static_cast<uint8_t>(~KeyBanState::kCooling);
        ++group.active_;
      }
      d.backoff_level = state.level_;
      return d;
    }
    if (input.status != KeyStatus::kActive || !input.auto_ban) {
      state.ClearWindow();  // not judged: keep no window
      d.backoff_level = state.level_;
      return d;
    }

    state.Record(policy, now_ns / kNanosPerSecond, input.successes, input.failures);
    const uint64_t total = state.successes_ + state.failures_;
    for (const CodeCount& c : input.codes) {
      if (c.count > 0 && Contains(policy.immediate_codes, c.code)) {
        d.rule = BanRule::kImmediateCode;
        d.reason = "code " + std::to_string(c.code);
        break;
      }
    }
    if (d.rule == BanRule::kNone) {
      for (const CodeCount& c : input.codes) {
        if (c.count > 0 && Contains(policy.cooldown_codes, c.code)) {
          d.rule = BanRule::kCooldownCode;
          d.reason = "code " + std::to_string(c.code) + " cooldown";
          break;
        }
      }
    }
    const bool enough = total >= static_cast<uint64_t>(policy.min_requests);
    const bool over_rate =
        enough &&
        static_cast<double>(state.failures_) / static_cast<double>(total) >= policy.failure_rate;
    if (d.rule == BanRule::kNone && over_rate) {
      d.rule = BanRule::kFailureRate;
      d.reason = RateReason(state.failures_, total, policy.window_seconds);
    }
    if (d.rule == BanRule::kNone &&
        state.run_ >= static_cast<uint64_t>(policy.consecutive_failures)) {
      d.rule = BanRule::kRun;
      d.reason = "consecutive_failures " + std::to_string(state.run_);
    }

    if (d.rule == BanRule::kNone) {
      if (state.half_open() && enough) {  // enough, under the rate, no run: passed
        d.verdict = Verdict::kBackoffReset;
        state.level_ = 0;
        state.flags_ &= static_cast<uint8_t>(~KeyBanState::kHalfOpen);
      }
      d.backoff_level = state.level_;
      return d;
    }
    if (policy.keep_one_active && group.active_ <= 1) {
      d.verdict = Verdict::kWithheld;
      d.backoff_level = state.level_;
      return d;
    }

    --group.active_;
    d.verdict = Verdict::kBan;
    state.ClearWindow();
    if (d.rule == BanRule::kCooldownCode) {
      d.ban_until_ns = Deadline(now_ns, policy.cooldown_seconds);
      state.flags_ |= KeyBanState::kCooling;  // half-open as it was
    } else {
      if (state.half_open() && policy.BanSeconds(state.level_) < policy.max_cooldown_seconds) {
        ++state.level_;
      }
      d.ban_until_ns = Deadline(now_ns, policy.BanSeconds(state.level_));
      state.flags_ = 0;
    }
    d.backoff_level = state.level_;
    return d;
  }
};

Decision Evaluate(const BanPolicy& policy, int64_t now_ns, const KeyInput& input,
                  KeyBanState& state, GroupActive& group) {
  return BanJudge::Judge(policy, now_ns, input, state, group);
}

}  // namespace tally::core
