// Time windows (issue 15): the pure arithmetic under the minute/hour/day buckets. Bucket
// starts, query-window rounding, retention, the decomposition of a summary window into
// buckets, the parsers of `since`/`until`/`step` and of the retention options, and the byte
// layout of a bucket's key. No I/O and no clock: `now` is always a parameter.
//
// Time is Unix seconds (int64_t), UTC, leap seconds ignored (as Unix time does), in the
// domain [0, kMaxTime]: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, the range RFC 3339 can
// write. Negative times never occur: the parsers reject them, and the functions below take
// times within the domain as a precondition. Buckets are half-open, [start, start + size), and
// aligned on multiples of their size from the epoch, so a day bucket is a UTC day and every
// hour and minute edge is also an edge of the finer resolutions (the grids nest).
//
// Thread safety: every function is pure; call from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tally::core {

using UnixSeconds = int64_t;

// 9999-12-31T23:59:59Z: the last second RFC 3339 can write, and the bound of Unix seconds too
// (one domain for both forms; a year above 9999 is a typo, not a query).
inline constexpr UnixSeconds kMaxTime = 253402300799;

// A bucket size; the value is its length in seconds (and a valid `step`).
enum class Resolution : int64_t { kMinute = 60, kHour = 3600, kDay = 86400 };
inline constexpr std::array<Resolution, 3> kResolutions = {Resolution::kMinute, Resolution::kHour,
                                                           Resolution::kDay};  // finest first

constexpr int64_t Seconds(Resolution r) { return static_cast<int64_t>(r); }
// "minute", "hour" or "day" (as in --retention-minute).
std::string_view ResolutionName(Resolution r);

// The start of the bucket holding t: t rounded down to an edge. Precondition: 0 <= t.
constexpr UnixSeconds BucketStart(UnixSeconds t, Resolution r) { return t - t % Seconds(r); }
// t rounded up to an edge (t itself when on one). Precondition: 0 <= t <= kMaxTime (so the
// result, at most one day past kMaxTime, cannot overflow).
constexpr UnixSeconds BucketCeil(UnixSeconds t, Resolution r) {
  return BucketStart(t + Seconds(r) - 1, r);
}

// ---- Parsing ---------------------------------------------------------------------------------
//
// Which way a fractional second goes. A window covers what was asked, so a start rounds down
// (kStart: 10:00:00.7 is 10:00:00) and an end rounds up (kEnd: 10:00:00.2 is 10:00:01): the
// same direction as the bucket rounding that follows, so the fraction can never shrink the
// window. A fraction of zero (".000") changes nothing.
enum class Edge { kStart, kEnd };

// A `since`/`until` value, one of:
//   - Unix seconds: canonical decimal (digits only, no sign, no space, no leading zero except
//     "0"), at most kMaxTime;
//   - RFC 3339 as Go's time.Parse(time.RFC3339) reads it: YYYY-MM-DDTHH:MM:SS[.F](Z|+HH:MM|
//     -HH:MM), upper-case 'T' and 'Z', a real calendar date (leap years counted), seconds
//     00..59 (no leap second), an offset of at most 23:59, F one to nine digits (nanoseconds;
//     rounded per `edge`). The resulting instant must lie in [0, kMaxTime].
// InvalidArgument otherwise, its message starting with "<name>: " (the query parameter).
StatusOr<UnixSeconds> ParseTime(std::string_view name, std::string_view text, Edge edge);

// t as RFC 3339 in UTC, "2026-11-30T10:17:00Z". Precondition: 0 <= t <= kMaxTime.
std::string FormatRfc3339(UnixSeconds t);

// A `step`: exactly "60", "3600" or "86400". InvalidArgument naming "step" otherwise.
StatusOr<Resolution> ParseStep(std::string_view text);

// A retention option's value (the daemon's config): "0" (forever) or <count><unit>, the count
// in canonical decimal and at least 1, the unit 'm' (minutes), 'h' (hours) or 'd' (days), in
// total at most kMaxRetention. "0h" is refused ("write 0 for forever": a zero that looks like a
// duration reads as "keep nothing"). Answers seconds. InvalidArgument starting "<name>: ".
inline constexpr int64_t kMaxRetention = int64_t{36500} * 86400;  // 100 years of 365 days
StatusOr<int64_t> ParseDuration(std::string_view name, std::string_view text);
// A form ParseDuration reads back, as operators write it: "0"; whole days from 100 hours up
// ("90d", "7d"); else whole hours ("48h", "72h"); else minutes ("30m"). Seconds that are not
// whole minutes print as "<n>s" (never a value ParseDuration made).
std::string FormatDuration(int64_t seconds);

// ---- Retention -------------------------------------------------------------------------------

// How long each resolution's buckets are kept, in seconds; 0 keeps them forever.
struct Retention {
  int64_t minute = int64_t{48} * 3600;
  int64_t hour = int64_t{90} * 86400;
  int64_t day = 0;

  int64_t For(Resolution r) const;
  // Each value is 0 or within [one bucket, kMaxRetention]: a retention shorter than the
  // bucket would keep a bucket it has already declared expired. InvalidArgument naming
  // "retention-<resolution>" otherwise. Any order between resolutions is accepted (PlanSummary
  // copes); the expected one is minute <= hour <= day.
  Status Validate() const;
};

// The start of the oldest bucket of resolution `r` still held at `now`: the bucket holding
// now - retention (a bucket is held while any second of it is within the retention), 0 when
// that is before 1970 or the retention is forever. Buckets starting before it are expired:
// retention deletes them (ExpiredRange) and queries never read them even where the deletion
// has not run yet, so an answer never depends on when the sweep last ran.
UnixSeconds OldestHeld(Resolution r, const Retention& retention, UnixSeconds now);

// ---- Series windows (GET .../stats?since=&until=&step=) ------------------------------------

inline constexpr int64_t kMaxPoints = 10000;

// An effective window [since, until) of whole `step` buckets, since < until.
struct Window {
  UnixSeconds since = 0;
  UnixSeconds until = 0;
  Resolution step = Resolution::kMinute;

  int64_t points() const { return (until - since) / Seconds(step); }
  bool operator==(const Window&) const = default;
};

// The window a series query answers: since rounded down and until (default: the end of the
// current second, now + 1, so what was counted this second is in) rounded up
// to `step` edges. InvalidArgument, in this order, when since > now ("since: ... is in the
// future"), until <= since as given ("until: ..."), or more than kMaxPoints buckets ("step:
// ..."). An until in the future is fine (its buckets are zeros). Preconditions: the times are
// within [0, kMaxTime] (as ParseTime makes them).
StatusOr<Window> NormaliseSeriesWindow(UnixSeconds since, std::optional<UnixSeconds> until,
                                       Resolution step, UnixSeconds now);

// Ok when every bucket of `w` is held; else InvalidArgument saying how far back the step
// reaches: "step=60 reaches back to 2026-11-28T10:17:00Z (retention-minute 48h)".
Status CheckHeld(const Window& w, const Retention& retention, UnixSeconds now);

// ---- Summary windows (GET /admin/apikey-stats/summary?since=&until=) ---------------------------

// A run of consecutive whole buckets of one resolution: [start, end), both edges of it.
struct Span {
  Resolution resolution = Resolution::kMinute;
  UnixSeconds start = 0;
  UnixSeconds end = 0;

  int64_t buckets() const { return (end - start) / Seconds(resolution); }
  bool operator==(const Span&) const = default;
};

struct SummaryPlan {
  UnixSeconds since = 0;    // effective, <= the since asked
  UnixSeconds until = 0;    // effective, >= the until asked
  std::vector<Span> spans;  // in time order, tiling [since, until) exactly
};

// Decomposes a summary window into the fewest buckets, each held at `now`: the coarsest
// bucket that fits wherever one fits, finer ones only at the ragged edges. A last-24-hours
// summary at a minute edge is 23 hours and 61 minutes (84 reads, not 1,441); 10:17-13:05 is
// 43 minutes, 2 hours, 5 minutes. The buckets are returned as Spans (runs of one resolution;
// at most five: minutes, hours, days, hours, minutes) because the time-ordered key layout
// below reads a run with one range scan, and a "list of buckets" of a ten-year window would
// be thousands of entries; Span::buckets() gives the piece count.
//
// The rounding rule: since goes down to the finest edge whose bucket is still held (a minute
// edge for a recent since, an hour or a day edge for an older one) and until up to the finest
// edge that lets held buckets tile the window; the plan names both. InvalidArgument as
// NormaliseSeriesWindow (since > now, until <= since), or naming "since" with how far back
// each resolution reaches when no held buckets can tile the window (a day retention that has
// removed the days asked for). Preconditions as NormaliseSeriesWindow.
StatusOr<SummaryPlan> PlanSummary(UnixSeconds since, std::optional<UnixSeconds> until,
                                  const Retention& retention, UnixSeconds now);

// ---- Bucket key layout (bytes only; the store owns the column family) -----------------------
//
//   <resolution: 1 byte><bucket start: 8 bytes big-endian><scope: 1 byte><id: 8 bytes BE>
//
// 18 bytes, in their own column family (so no table tag). Time-major: the decision, against
// a key-major layout (<scope><id><resolution><start>) or both:
//   - Retention drops whole time ranges: with time-major keys the expired buckets of one
//     resolution are one contiguous range, removed by one DeleteRange (ExpiredRange) per
//     resolution and sweep, without reading anything. Key-major would need a range per key
//     (100k tombstones a sweep) or a compaction filter that deletes only when compaction
//     happens to run.
//   - Top-N over a window wants every key of each bucket: time-major stores them contiguously
//     (one scan of [prefix(res, start, kKey), ...) per bucket). Key-major would need a seek
//     per key and bucket run.
//   - The whole and the groups sort first in each bucket (scope 0, 1 before 2), so a summary
//     or a group/whole series is one point read per bucket (at most 10,000, MultiGet).
//   - One key's series is the weak case: one point read per bucket (MultiGet of up to 10,000
//     18-byte keys), each in a different block. A second, key-major copy would make it one
//     scan, but every flush writes 3 buckets per changed key for each layout, and the flush
//     budget (windows on at most 1.5x a flush without, 100k changed keys) is the harder and
//     the permanent cost; the series target is measured first and a key-major minute copy is
//     the fallback, added beside this layout without changing it.
// The resolution byte is 1, 2, 3 (minute, hour, day); the start is a non-negative int64, so
// unsigned big-endian bytes sort as the numbers do; the scope byte is 0 (the whole, id 0),
// 1 (a group; id 0 is the unassigned group) or 2 (a key; id >= 1). Ids are at most 2^63-1.
enum class Scope : uint8_t { kWhole = 0, kGroup = 1, kKey = 2 };

struct BucketKey {
  Resolution resolution = Resolution::kMinute;
  UnixSeconds start = 0;  // a bucket start of `resolution`, in [0, kMaxTime]
  Scope scope = Scope::kWhole;
  uint64_t id = 0;

  bool operator==(const BucketKey&) const = default;
};

inline constexpr size_t kBucketKeySize = 18;

// Precondition: `k` is valid as DecodeBucketKey checks (asserted in debug builds).
std::string EncodeBucketKey(const BucketKey& k);
// Corruption unless `bytes` is exactly a key EncodeBucketKey makes: 18 bytes, a known
// resolution and scope, an aligned start within [0, kMaxTime], the id rules above.
StatusOr<BucketKey> DecodeBucketKey(std::string_view bytes);

// The first 9 bytes (one bucket: every scope) or 10 (one bucket and scope, e.g. every key of
// a bucket for top-N): the prefixes to seek to and to bound a scan with.
std::string EncodeBucketPrefix(Resolution r, UnixSeconds start);
std::string EncodeBucketPrefix(Resolution r, UnixSeconds start, Scope scope);

// [begin, end) holding exactly the buckets of `r` expired at `now` (start < OldestHeld), for
// one DeleteRange. Empty (begin == end) when nothing has expired.
struct KeyRange {
  std::string begin;
  std::string end;
};
KeyRange ExpiredRange(Resolution r, const Retention& retention, UnixSeconds now);

}  // namespace tally::core
