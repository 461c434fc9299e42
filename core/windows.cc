#include "core/windows.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

#include "core/limits.h"

namespace tally::core {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Canonical decimal of at most 18 digits (so no overflow): digits only, no leading zero
// except "0" itself. nullopt otherwise.
std::optional<int64_t> ParseCanonical(std::string_view s) {
  if (s.empty() || s.size() > 18 || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) {
      return std::nullopt;
    }
    v = v * 10 + (c - '0');
  }
  return v;
}

// Exactly `n` digits at s[pos..pos+n).
std::optional<int> Fixed(std::string_view s, size_t pos, size_t n) {
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!IsDigit(s[i])) {
      return std::nullopt;
    }
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

Status Bad(std::string_view name, std::string_view why) {
  return Status::InvalidArgument(std::string(name) + ": " + std::string(why));
}

StatusOr<UnixSeconds> ParseRfc3339(std::string_view name, std::string_view s, Edge edge) {
  // YYYY-MM-DDTHH:MM:SS is 19 bytes; the shortest zone is "Z".
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') {
    return Bad(name, "not Unix seconds nor an RFC 3339 time (2026-11-30T10:17:00Z)");
  }
  const auto year = Fixed(s, 0, 4), month = Fixed(s, 5, 2), day = Fixed(s, 8, 2);
  const auto hour = Fixed(s, 11, 2), minute = Fixed(s, 14, 2), second = Fixed(s, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second) {
    return Bad(name, "an RFC 3339 field is not all digits");
  }
  if (*month < 1 || *month > 12) {
    return Bad(name, "month out of range");
  }
  if (*day < 1 || *day > DaysInMonth(*year, *month)) {
    return Bad(name, "day out of range");
  }
  if (*hour > 23 || *minute > 59 || *second > 59) {
    return Bad(name, "hour, minute or second out of range");
  }
  size_t pos = 19;
  bool fraction = false;  // a non-zero fraction of a second
  if (s[pos] == '.') {
    size_t digits = 0;
    for (++pos; pos < s.size() && IsDigit(s[pos]); ++pos, ++digits) {
      fraction = fraction || s[pos] != '0';
    }
    if (digits < 1 || digits > 9) {
      return Bad(name, "fractional seconds need 1 to 9 digits");
    }
  }
  int64_t offset = 0;
  const std::string_view zone = s.substr(std::min(pos, s.size()));
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    const auto oh = Fixed(zone, 1, 2), om = Fixed(zone, 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) {
      return Bad(name, "time zone offset out of range");
    }
    offset = (zone[0] == '+' ? 1 : -1) * (int64_t{*oh} * 3600 + *om * 60);
  } else if (zone != "Z") {
    return Bad(name, "an RFC 3339 time ends with Z or +HH:MM / -HH:MM");
  }
  int64_t t = DaysFromCivil(*year, *month, *day) * 86400 + int64_t{*hour} * 3600 + *minute * 60 +
              *second - offset;
  if (fraction && edge == Edge::kEnd) {
    ++t;
  }
  if (t < 0) {
    return Bad(name, "before 1970-01-01T00:00:00Z");
  }
  if (t > kMaxTime) {
    return Bad(name, "after 9999-12-31T23:59:59Z");
  }
  return t;
}

std::string RetentionOption(Resolution r) { return "retention-" + std::string(ResolutionName(r)); }

}  // namespace

std::string_view ResolutionName(Resolution r) {
  switch (r) {
    case Resolution::kMinute:
      return "minute";
    case Resolution::kHour:
      return "hour";
    case Resolution::kDay:
      return "day";
  }
  return "?";
}

StatusOr<UnixSeconds> ParseTime(std::string_view name, std::string_view text, Edge edge) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), IsDigit)) {
    const auto v = ParseCanonical(text);
    if (!v) {
      return text.size() > 1 && text[0] == '0'
                 ? Bad(name, "Unix seconds are written without a leading zero")
                 : Bad(name, "after 9999-12-31T23:59:59Z (253402300799)");
    }
    if (*v > kMaxTime) {
      return Bad(name, "after 9999-12-31T23:59:59Z (253402300799)");
    }
    return *v;
  }
  return ParseRfc3339(name, text, edge);
}

std::string FormatRfc3339(UnixSeconds t) {
  assert(t >= 0 && t <= kMaxTime);
  // Civil from days (H. Hinnant), days since 1970-01-01 >= 0.
  const int64_t z = t / 86400 + 719468;
  const int64_t secs = t % 86400;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[128];  // ample for any int, so the compiler can prove no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", static_cast<int>(y),
                static_cast<int>(m), static_cast<int>(d), static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

StatusOr<Resolution> ParseStep(std::string_view text) {
  for (Resolution r : kResolutions) {
    if (text == std::to_string(Seconds(r))) {
      return r;
    }
  }
  return Status::InvalidArgument("step: must be 60, 3600 or 86400");
}

StatusOr<int64_t> ParseDuration(std::string_view name, std::string_view text) {
  if (text == "0") {
    return int64_t{0};
  }
  if (text.size() < 2) {
    return Bad(name, "a duration is 0 (forever) or <count>m, <count>h or <count>d");
  }
  int64_t unit = 0;
  switch (text.back()) {
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return Bad(name, "a duration is 0 (forever) or <count>m, <count>h or <count>d");
  }
  const std::string_view digits = text.substr(0, text.size() - 1);
  if (digits == "0") {
    return Bad(name, "write 0 for forever");
  }
  const auto count = ParseCanonical(digits);
  if (!count) {
    return Bad(name, "the count is digits without a sign or a leading zero");
  }
  if (*count > kMaxRetention / unit) {
    return Bad(name, "more than 100 years (36500d)");
  }
  return *count * unit;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds == 0) {
    return "0";
  }
  if (seconds % 86400 == 0 && seconds >= 100 * 3600) {
    return std::to_string(seconds / 86400) + "d";
  }
  if (seconds % 3600 == 0) {
    return std::to_string(seconds / 3600) + "h";
  }
  if (seconds % 60 == 0) {
    return std::to_string(seconds / 60) + "m";
  }
  return std::to_string(seconds) + "s";
}

int64_t Retention::For(Resolution r) const {
  switch (r) {
    case Resolution::kMinute:
      return minute;
    case Resolution::kHour:
      return hour;
    case Resolution::kDay:
      return day;
  }
  return 0;
}

Status Retention::Validate() const {
  for (Resolution r : kResolutions) {
    const int64_t v = For(r);
    if (v != 0 && (v < Seconds(r) || v > kMaxRetention)) {
      return Status::InvalidArgument(RetentionOption(r) + ": " + FormatDuration(v) +
                                     " must be 0 (forever) or from one " +
                                     std::string(ResolutionName(r)) + " to 36500d");
    }
  }
  return Status::Ok();
}

UnixSeconds OldestHeld(Resolution r, const Retention& retention, UnixSeconds now) {
  const int64_t keep = retention.For(r);
  if (keep == 0 || now - keep <= 0) {
    return 0;
  }
  return BucketStart(now - keep, r);
}

// The window's end as asked, after the checks every query shares: since not in the future,
// until after since. Without an until the window ends with the current second (now + 1):
// `now` is a whole second, so ending at it would leave out what was counted since that
// second began, and in the first second of a minute the whole of that minute's bucket.
static StatusOr<UnixSeconds> CheckedEnd(UnixSeconds since, std::optional<UnixSeconds> until,
                                        UnixSeconds now) {
  const UnixSeconds end = until.value_or(now + 1);
  if (since > now) {
    return Bad("since",
               FormatRfc3339(since) + " is in the future (now is " + FormatRfc3339(now) + ")");
  }
  if (end <= since) {
    return Bad("until", "must be after since");
  }
  return end;
}

StatusOr<Window> NormaliseSeriesWindow(UnixSeconds since, std::optional<UnixSeconds> until,
                                       Resolution step, UnixSeconds now) {
  StatusOr<UnixSeconds> checked = CheckedEnd(since, until, now);
  if (!checked.ok()) {
    return checked.status();
  }
  const UnixSeconds end = *checked;
  Window w{BucketStart(since, step), BucketCeil(end, step), step};
  if (w.points() > kMaxPoints) {
    return Bad("step", "step=" + std::to_string(Seconds(step)) + " makes " +
                           std::to_string(w.points()) + " points, more than " +
                           std::to_string(kMaxPoints) + "; use a larger step or a shorter window");
  }
  return w;
}

Status CheckHeld(const Window& w, const Retention& retention, UnixSeconds now) {
  const UnixSeconds oldest = OldestHeld(w.step, retention, now);
  if (w.since >= oldest) {
    return Status::Ok();
  }
  return Status::InvalidArgument("step=" + std::to_string(Seconds(w.step)) + " reaches back to " +
                                 FormatRfc3339(oldest) + " (" + RetentionOption(w.step) + " " +
                                 FormatDuration(retention.For(w.step)) + ")");
}

namespace {

// Appends the fewest held buckets of resolution kResolutions[level] or finer tiling [a, b)
// (both edges of the finest resolution), as spans; false when some part is not held.
bool Cover(size_t level, UnixSeconds a, UnixSeconds b, const Retention& retention, UnixSeconds now,
           std::vector<Span>& out) {
  if (a >= b) {
    return true;
  }
  const Resolution r = kResolutions[level];
  const UnixSeconds oldest = OldestHeld(r, retention, now);
  if (level == 0) {
    if (a < oldest) {
      return false;
    }
    out.push_back({r, a, b});
    return true;
  }
  const UnixSeconds lo = std::max(BucketCeil(a, r), oldest);  // first whole held bucket
  const UnixSeconds hi = BucketStart(b, r);                   // end of the last whole one
  if (lo >= hi) {
    return Cover(level - 1, a, b, retention, now, out);
  }
  if (!Cover(level - 1, a, lo, retention, now, out)) {
    return false;
  }
  out.push_back({r, lo, hi});
  return Cover(level - 1, hi, b, retention, now, out);
}

}  // namespace

StatusOr<SummaryPlan> PlanSummary(UnixSeconds since, std::optional<UnixSeconds> until,
                                  const Retention& retention, UnixSeconds now) {
  StatusOr<UnixSeconds> checked = CheckedEnd(since, until, now);
  if (!checked.ok()) {
    return checked.status();
  }
  const UnixSeconds end = *checked;
  // The finest rounding first: since down, then until up, each to a minute, hour or day
  // edge. With ordered retentions (minute <= hour <= day) the first pair succeeds: since's
  // finest held edge and until's minute edge; the other pairs serve unusual orders.
  for (Resolution rs : kResolutions) {
    for (Resolution ru : kResolutions) {
      SummaryPlan plan{BucketStart(since, rs), BucketCeil(end, ru), {}};
      if (Cover(kResolutions.size() - 1, plan.since, plan.until, retention, now, plan.spans)) {
        return plan;
      }
    }
  }
  std::string reach;
  for (Resolution r : kResolutions) {
    reach += std::string(reach.empty() ? "" : ", ") + std::string(ResolutionName(r)) +
             " buckets reach back to " + FormatRfc3339(OldestHeld(r, retention, now)) + " (" +
             RetentionOption(r) + " " + FormatDuration(retention.For(r)) + ")";
  }
  return Bad("since", "older than retention holds: " + reach);
}

namespace {

void PutBigEndian(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint64_t GetBigEndian(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<uint8_t>(s[i]);
  }
  return v;
}

char ResolutionByte(Resolution r) {
  switch (r) {
    case Resolution::kMinute:
      return 1;
    case Resolution::kHour:
      return 2;
    case Resolution::kDay:
      return 3;
  }
  return 0;
}

}  // namespace

std::string EncodeBucketPrefix(Resolution r, UnixSeconds start) {
  assert(start >= 0 && start <= kMaxTime + Seconds(r));
  std::string out;
  out.reserve(kBucketKeySize);
  out.push_back(ResolutionByte(r));
  PutBigEndian(out, static_cast<uint64_t>(start));
  return out;
}

std::string EncodeBucketPrefix(Resolution r, UnixSeconds start, Scope scope) {
  std::string out = EncodeBucketPrefix(r, start);
  out.push_back(static_cast<char>(scope));
  return out;
}

std::string EncodeBucketKey(const BucketKey& k) {
  assert(k.start % Seconds(k.resolution) == 0 && k.start <= kMaxTime);
  assert(k.id <= kMaxId && (k.scope != Scope::kWhole || k.id == 0) &&
         (k.scope != Scope::kKey || k.id != 0));
  std::string out = EncodeBucketPrefix(k.resolution, k.start, k.scope);
  PutBigEndian(out, k.id);
  return out;
}

StatusOr<BucketKey> DecodeBucketKey(std::string_view bytes) {
  if (bytes.size() != kBucketKeySize) {
    return Status::Corruption("bucket key: " + std::to_string(bytes.size()) +
                              " bytes, expected 18");
  }
  BucketKey k;
  switch (bytes[0]) {
    case 1:
      k.resolution = Resolution::kMinute;
      break;
    case 2:
      k.resolution = Resolution::kHour;
      break;
    case 3:
      k.resolution = Resolution::kDay;
      break;
    default:
      return Status::Corruption("bucket key: unknown resolution byte");
  }
  const uint64_t start = GetBigEndian(bytes.substr(1, 8));
  if (start > static_cast<uint64_t>(kMaxTime) ||
      static_cast<int64_t>(start) % Seconds(k.resolution) != 0) {
    return Status::Corruption("bucket key: start out of range or not on a bucket edge");
  }
  k.start = static_cast<int64_t>(start);
  const auto scope = static_cast<uint8_t>(bytes[9]);
  if (scope > static_cast<uint8_t>(Scope::kKey)) {
    return Status::Corruption("bucket key: unknown scope byte");
  }
  k.scope = static_cast<Scope>(scope);
  k.id = GetBigEndian(bytes.substr(10, 8));
  if (k.id > kMaxId || (k.scope == Scope::kWhole && k.id != 0) ||
      (k.scope == Scope::kKey && k.id == 0)) {
    return Status::Corruption("bucket key: id not valid for its scope");
  }
  return k;
}

KeyRange ExpiredRange(Resolution r, const Retention& retention, UnixSeconds now) {
  return {EncodeBucketPrefix(r, 0), EncodeBucketPrefix(r, OldestHeld(r, retention, now))};
}

}  // namespace tally::core
