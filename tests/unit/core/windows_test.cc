// Time windows: bucket edges, parsing, rounding, retention, summary decomposition and the
// bucket key layout (core/windows.h).
#include "core/windows.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace tally::core {
namespace {

constexpr UnixSeconds kMin = 60;
constexpr UnixSeconds kHour = 3600;
constexpr UnixSeconds kDaySecs = 86400;
constexpr UnixSeconds kNov30 = 1795996800;  // 2026-11-30T00:00:00Z (date -u -d ... +%s)

// 2026-11-30 at h:m:s UTC (h may pass 24 into December 1).
constexpr UnixSeconds At(int64_t h, int64_t m, int64_t s = 0) {
  return kNov30 + h * kHour + m * kMin + s;
}

UnixSeconds Parse(std::string_view text, Edge edge = Edge::kStart) {
  auto t = ParseTime("since", text, edge);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status().message();
  return t.ok() ? *t : -1;
}

std::string ParseError(std::string_view text, Edge edge = Edge::kStart) {
  auto t = ParseTime("until", text, edge);
  EXPECT_FALSE(t.ok()) << text << " parsed as " << (t.ok() ? *t : 0);
  return t.ok() ? "" : t.status().message();
}

TEST(Windows, BucketStartAndCeilAtEdgesAndOneSecondEitherSide) {
  const UnixSeconds edge = At(10, 17);
  EXPECT_EQ(BucketStart(edge, Resolution::kMinute), edge);
  EXPECT_EQ(BucketStart(edge - 1, Resolution::kMinute), edge - kMin);
  EXPECT_EQ(BucketStart(edge + 1, Resolution::kMinute), edge);
  EXPECT_EQ(BucketCeil(edge, Resolution::kMinute), edge);
  EXPECT_EQ(BucketCeil(edge - 1, Resolution::kMinute), edge);
  EXPECT_EQ(BucketCeil(edge + 1, Resolution::kMinute), edge + kMin);
  EXPECT_EQ(BucketStart(At(10, 17), Resolution::kHour), At(10, 0));
  EXPECT_EQ(BucketCeil(At(10, 17), Resolution::kHour), At(11, 0));
  EXPECT_EQ(BucketStart(0, Resolution::kDay), 0);
  EXPECT_EQ(BucketCeil(0, Resolution::kDay), 0);
}

TEST(Windows, DaysAreUtcDays) {
  EXPECT_EQ(BucketStart(kNov30, Resolution::kDay), kNov30);
  EXPECT_EQ(BucketStart(kNov30 - 1, Resolution::kDay), kNov30 - kDaySecs);
  EXPECT_EQ(BucketStart(At(23, 59, 59), Resolution::kDay), kNov30);
  EXPECT_EQ(BucketCeil(kNov30 + 1, Resolution::kDay), kNov30 + kDaySecs);
  EXPECT_EQ(FormatRfc3339(BucketStart(At(23, 59, 59), Resolution::kDay)), "2026-11-30T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(At(24, 0)), "2026-12-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(kNov30 - 1), "2026-11-29T23:59:59Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(kMaxTime), "9999-12-31T23:59:59Z");
  EXPECT_EQ(FormatRfc3339(1709208000), "2024-02-29T12:00:00Z");
}

TEST(Windows, ParsesUnixSeconds) {
  EXPECT_EQ(Parse("0"), 0);
  EXPECT_EQ(Parse("1795996800"), kNov30);
  EXPECT_EQ(Parse("253402300799"), kMaxTime);
  for (const char* bad : {"", "-1", "+1", "01", " 1", "1 ", "1.5", "1e3", "253402300800",
                          "9223372036854775807", "99999999999999999999999"}) {
    EXPECT_EQ(ParseError(bad).rfind("until: ", 0), 0u) << bad;
  }
}

TEST(Windows, ParsesRfc3339AsGoDoes) {
  EXPECT_EQ(Parse("2026-11-30T00:00:00Z"), kNov30);
  EXPECT_EQ(Parse("2026-11-30T10:17:00Z"), At(10, 17));
  EXPECT_EQ(Parse("2026-11-30T11:17:00+01:00"), At(10, 17));
  EXPECT_EQ(Parse("2026-11-29T23:47:00-10:30"), At(10, 17));
  EXPECT_EQ(Parse("2024-02-29T12:00:00Z"), 1709208000);  // a leap day
  EXPECT_EQ(Parse("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Parse("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(Parse("9999-12-31T23:59:59Z"), kMaxTime);
  EXPECT_EQ(Parse("2026-11-30T10:17:00.000Z", Edge::kEnd), At(10, 17));
}

TEST(Windows, FractionsRoundTowardTheWindowsOutside) {
  // A start rounds down, an end up: the window never shrinks.
  EXPECT_EQ(Parse("2026-11-30T10:16:59.999999999Z", Edge::kStart), At(10, 16, 59));
  EXPECT_EQ(Parse("2026-11-30T10:16:59.999999999Z", Edge::kEnd), At(10, 17));
  EXPECT_EQ(Parse("2026-11-30T10:17:00.5Z", Edge::kStart), At(10, 17));
  EXPECT_EQ(Parse("2026-11-30T10:17:00.000000001+00:00", Edge::kEnd), At(10, 17, 1));
  ParseError("9999-12-31T23:59:59.5Z", Edge::kEnd);  // would round past kMaxTime
  EXPECT_EQ(Parse("9999-12-31T23:59:59.5Z", Edge::kStart), kMaxTime);
}

TEST(Windows, RejectsBadRfc3339) {
  for (const char* bad : {
           "2026-11-30t10:17:00Z",             // lower-case t
           "2026-11-30T10:17:00z",             // lower-case z
           "2026-11-30 10:17:00Z",             // space
           "2026-11-30T10:17:00",              // no zone
           "2026-11-30T10:17Z",                // no seconds
           "2026-13-01T00:00:00Z",             // month 13
           "2026-00-01T00:00:00Z",             // month 0
           "2026-02-29T00:00:00Z",             // not a leap year
           "2026-11-31T00:00:00Z",             // November has 30 days
           "2026-11-30T24:00:00Z",             // hour 24
           "2026-11-30T23:60:00Z",             // minute 60
           "2026-11-30T23:59:60Z",             // leap second
           "2026-11-30T10:17:00.Z",            // a dot without digits
           "2026-11-30T10:17:00.1234567890Z",  // ten digits
           "2026-11-30T10:17:00+24:00",        // offset hour 24
           "2026-11-30T10:17:00+01:60",        // offset minute 60
           "2026-11-30T10:17:00+0100",         // offset without colon
           "2026-11-30T10:17:00ZZ",            // trailing garbage
           "1970-01-01T00:00:00+00:01",        // one minute before 1970
           "+2026-11-30T10:17:00Z",            // sign
           "2026-1-30T10:17:00Z",              // short month
       }) {
    EXPECT_EQ(ParseError(bad).rfind("until: ", 0), 0u) << bad;
  }
  EXPECT_NE(ParseError("1970-01-01T00:00:00+00:01").find("before 1970"), std::string::npos);
}

TEST(Windows, ParsesStepsAndNothingElse) {
  EXPECT_EQ(ParseStep("60").value(), Resolution::kMinute);
  EXPECT_EQ(ParseStep("3600").value(), Resolution::kHour);
  EXPECT_EQ(ParseStep("86400").value(), Resolution::kDay);
  for (const char* bad : {"", "0", "1", "060", "120", "86401", "1m", " 60"}) {
    auto r = ParseStep(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("step: ", 0), 0u);
  }
}

TEST(Windows, ParsesRetentionDurations) {
  EXPECT_EQ(ParseDuration("retention-minute", "48h").value(), 48 * kHour);
  EXPECT_EQ(ParseDuration("retention-hour", "90d").value(), 90 * kDaySecs);
  EXPECT_EQ(ParseDuration("retention-minute", "30m").value(), 30 * kMin);
  EXPECT_EQ(ParseDuration("retention-day", "0").value(), 0);
  EXPECT_EQ(ParseDuration("retention-day", "36500d").value(), kMaxRetention);
  for (const char* bad : {"", "0h", "00", "48", "h", "-1h", "+1h", "1.5h", "048h", "48H", "1s",
                          "48 h", "36501d", "876001h", "99999999999999999999d"}) {
    auto d = ParseDuration("retention-hour", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().message().rfind("retention-hour: ", 0), 0u) << bad;
  }
  EXPECT_EQ(FormatDuration(48 * kHour), "48h");
  EXPECT_EQ(FormatDuration(90 * kDaySecs), "90d");
  EXPECT_EQ(FormatDuration(30 * kMin), "30m");
  EXPECT_EQ(FormatDuration(0), "0");
  EXPECT_EQ(FormatDuration(72 * kHour), "72h");
  EXPECT_EQ(FormatDuration(7 * kDaySecs), "7d");
}

TEST(Windows, RetentionValidation) {
  EXPECT_TRUE(Retention{}.Validate().ok());
  EXPECT_TRUE((Retention{kMin, kHour, kDaySecs}.Validate().ok()));
  Status s = Retention{kMin, 30 * kMin, 0}.Validate();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("retention-hour: 30m", 0), 0u) << s.message();
}

TEST(Windows, SeriesWindowRoundsOutward) {
  const UnixSeconds now = At(13, 5, 30);
  auto w = NormaliseSeriesWindow(At(10, 17, 20), At(12, 0, 1), Resolution::kMinute, now);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(*w, (Window{At(10, 17), At(12, 1), Resolution::kMinute}));
  // On edges nothing moves; until defaults to now, rounded up.
  w = NormaliseSeriesWindow(At(10, 0), At(12, 0), Resolution::kHour, now);
  EXPECT_EQ(*w, (Window{At(10, 0), At(12, 0), Resolution::kHour}));
  w = NormaliseSeriesWindow(At(10, 0), std::nullopt, Resolution::kHour, now);
  EXPECT_EQ(*w, (Window{At(10, 0), At(14, 0), Resolution::kHour}));
  w = NormaliseSeriesWindow(At(10, 0, 1), At(10, 0, 2), Resolution::kDay, now);
  EXPECT_EQ(*w, (Window{kNov30, kNov30 + kDaySecs, Resolution::kDay}));
  EXPECT_EQ(w->points(), 1);
}

TEST(Windows, SeriesWindowErrorsNameTheParameter) {
  const UnixSeconds now = At(13, 5);
  auto w = NormaliseSeriesWindow(now + 1, now + 100, Resolution::kMinute, now);
  EXPECT_EQ(w.status().message().rfind("since: ", 0), 0u) << w.status().message();
  EXPECT_TRUE(NormaliseSeriesWindow(now, now + 1, Resolution::kMinute, now).ok());
  w = NormaliseSeriesWindow(At(10, 0), At(10, 0), Resolution::kMinute, now);
  EXPECT_EQ(w.status().message(), "until: must be after since");
  w = NormaliseSeriesWindow(At(10, 0, 30), At(10, 0, 10), Resolution::kMinute, now);
  EXPECT_EQ(w.status().message(), "until: must be after since");  // even if both round alike
  // Without until the window ends with the current second, so since = now is a window.
  w = NormaliseSeriesWindow(now, std::nullopt, Resolution::kMinute, now);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(*w, (Window{At(13, 5), At(13, 6), Resolution::kMinute}));
}

// In the first second of a minute, a window that ends now holds that minute: what was
// counted since 13:05:00 is in the 13:05 bucket. (Ending at `now`, a whole second, left the
// bucket out: CI saw every minute-resolution answer of a test read 0 in such a second.)
TEST(Windows, AWindowEndingNowHoldsTheMinuteThatBeganThisSecond) {
  const UnixSeconds now = At(13, 5);
  auto w = NormaliseSeriesWindow(now - 300, std::nullopt, Resolution::kMinute, now);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->until, At(13, 6));
  EXPECT_EQ(w->points(), 6);
  auto p = PlanSummary(now - 300, std::nullopt, Retention{}, now);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->until, At(13, 6));
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(13, 0), At(13, 6)}}));
  // An until given is taken as given: [since, 13:05) stops before the 13:05 bucket.
  p = PlanSummary(now - 300, now, Retention{}, now);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->until, At(13, 5));
}

TEST(Windows, TenThousandPointsExactlyAndNotOneMore) {
  const UnixSeconds now = At(13, 0);
  const UnixSeconds since = now - 10000 * kMin;
  auto w = NormaliseSeriesWindow(since, now, Resolution::kMinute, now);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->points(), 10000);
  w = NormaliseSeriesWindow(since - 1, now, Resolution::kMinute, now);  // rounds to 10,001
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().message().rfind("step: step=60 makes 10001 points", 0), 0u)
      << w.status().message();
  EXPECT_FALSE(NormaliseSeriesWindow(since, now + 1, Resolution::kMinute, now).ok());
  EXPECT_FALSE(NormaliseSeriesWindow(0, kMaxTime, Resolution::kDay, kMaxTime).ok());
}

TEST(Windows, OldestHeldAtRetentionBoundaries) {
  const Retention r;  // minute 48h, hour 90d, day forever
  const UnixSeconds now = At(13, 5);
  EXPECT_EQ(OldestHeld(Resolution::kMinute, r, now), now - 48 * kHour);
  EXPECT_EQ(OldestHeld(Resolution::kMinute, r, now + 1), now - 48 * kHour);  // still held
  EXPECT_EQ(OldestHeld(Resolution::kMinute, r, now + 59), now - 48 * kHour);
  EXPECT_EQ(OldestHeld(Resolution::kMinute, r, now + 60), now - 48 * kHour + kMin);
  EXPECT_EQ(OldestHeld(Resolution::kHour, r, now), At(13, 0) - 90 * kDaySecs);
  EXPECT_EQ(OldestHeld(Resolution::kDay, r, now), 0);    // forever
  EXPECT_EQ(OldestHeld(Resolution::kMinute, r, 10), 0);  // shortly after 1970
}

TEST(Windows, CheckHeldSaysHowFarTheStepReaches) {
  const Retention r;
  const UnixSeconds now = At(10, 17, 30);
  const UnixSeconds oldest = At(10, 17) - 48 * kHour;
  EXPECT_TRUE(CheckHeld(Window{oldest, now, Resolution::kMinute}, r, now).ok());
  Status s = CheckHeld(Window{oldest - kMin, now, Resolution::kMinute}, r, now);
  EXPECT_EQ(s.message(), "step=60 reaches back to 2026-11-28T10:17:00Z (retention-minute 48h)");
  EXPECT_TRUE(CheckHeld(Window{0, kMin, Resolution::kDay}, r, now).ok());
}

// Every plan tiles [since, until) with aligned, held spans in time order.
void ExpectTiles(const SummaryPlan& p, const Retention& r, UnixSeconds now) {
  ASSERT_FALSE(p.spans.empty());
  EXPECT_EQ(p.spans.front().start, p.since);
  EXPECT_EQ(p.spans.back().end, p.until);
  for (size_t i = 0; i < p.spans.size(); ++i) {
    const Span& s = p.spans[i];
    EXPECT_LT(s.start, s.end);
    EXPECT_EQ(s.start % Seconds(s.resolution), 0);
    EXPECT_EQ(s.end % Seconds(s.resolution), 0);
    EXPECT_GE(s.start, OldestHeld(s.resolution, r, now));
    if (i > 0) {
      EXPECT_EQ(p.spans[i - 1].end, s.start);
      EXPECT_NE(p.spans[i - 1].resolution, s.resolution);  // runs are maximal
    }
  }
}

TEST(Windows, SummaryOfARaggedWindowUsesHoursInside) {
  const Retention r;
  const UnixSeconds now = At(14, 0);
  auto p = PlanSummary(At(10, 17), At(13, 5), r, now);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(10, 17), At(11, 0)},
                                         {Resolution::kHour, At(11, 0), At(13, 0)},
                                         {Resolution::kMinute, At(13, 0), At(13, 5)}}));
  ExpectTiles(*p, r, now);
}

TEST(Windows, SummaryOfTheLast24HoursIs23HoursAnd61Minutes) {
  const Retention r;
  const UnixSeconds now = At(13, 5);
  auto p = PlanSummary(now - 24 * kHour, std::nullopt, r, now);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(-11, 5), At(-10, 0)},
                                         {Resolution::kHour, At(-10, 0), At(13, 0)},
                                         {Resolution::kMinute, At(13, 0), At(13, 6)}}));
  int64_t pieces = 0;
  for (const Span& s : p->spans) {
    pieces += s.buckets();
  }
  EXPECT_EQ(pieces, 55 + 23 + 6);  // the last minute is 13:05, begun this second
}

TEST(Windows, SummaryAcrossMidnightAndOverWholeDays) {
  const Retention r;
  UnixSeconds now = At(2, 0);
  auto p = PlanSummary(At(-1, 30), At(1, 10), r, now);  // 23:30 to 01:10 the next day
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(-1, 30), At(0, 0)},
                                         {Resolution::kHour, At(0, 0), At(1, 0)},
                                         {Resolution::kMinute, At(1, 0), At(1, 10)}}));
  now = At(46, 0);  // 47.5 hours after since: its minute is still held
  p = PlanSummary(At(-1, 30, 5), At(47, 10, 1), r, now);  // a whole day in between
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->since, At(-1, 30));
  EXPECT_EQ(p->until, At(47, 11));
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(-1, 30), At(0, 0)},
                                         {Resolution::kDay, At(0, 0), At(48, 0) - kDaySecs},
                                         {Resolution::kHour, At(24, 0), At(47, 0)},
                                         {Resolution::kMinute, At(47, 0), At(47, 11)}}));
  ExpectTiles(*p, r, now);
}

TEST(Windows, SummaryOfLessThanAMinuteIsOneMinute) {
  const Retention r;
  auto p = PlanSummary(At(10, 17, 20), At(10, 17, 40), r, At(10, 18));
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(10, 17), At(10, 18)}}));
  p = PlanSummary(At(10, 59, 59), At(11, 0, 1), r, At(12, 0));  // across an hour edge
  EXPECT_EQ(p->spans, (std::vector<Span>{{Resolution::kMinute, At(10, 59), At(11, 1)}}));
}

TEST(Windows, SummaryBeyondMinuteRetentionRoundsSinceToAnHourOrADay) {
  const Retention r;
  const UnixSeconds now = At(13, 5);
  // Exactly the oldest minute still held keeps minute rounding; one second earlier falls in
  // an expired minute, so since goes down to the hour.
  auto p = PlanSummary(now - 48 * kHour, std::nullopt, r, now);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->since, now - 48 * kHour);
  p = PlanSummary(now - 48 * kHour - 1, std::nullopt, r, now);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->since, At(13, 0) - 48 * kHour);
  ExpectTiles(*p, r, now);
  p = PlanSummary(now - 72 * kHour, std::nullopt, r, now);  // minutes are gone there
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->since, At(13, 0) - 72 * kHour);
  ExpectTiles(*p, r, now);
  p = PlanSummary(now - 100 * kDaySecs, std::nullopt, r, now);  // hours too
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->since, kNov30 - 100 * kDaySecs);
  ExpectTiles(*p, r, now);
  // With days limited too, nothing holds it: the error names since and each reach.
  const Retention short_days{48 * kHour, 90 * kDaySecs, 365 * kDaySecs};
  p = PlanSummary(now - 400 * kDaySecs, std::nullopt, short_days, now);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message().rfind("since: older than retention holds", 0), 0u);
  EXPECT_NE(p.status().message().find("(retention-day 365d)"), std::string::npos);
}

TEST(Windows, SummaryPlansTileRandomWindows) {
  std::mt19937_64 rng(15);
  const Retention orders[] = {Retention{}, Retention{kHour, 2 * kHour, 0},
                              Retention{48 * kHour, kHour, 0}};  // unusual order too
  for (const Retention& r : orders) {
    for (int i = 0; i < 3000; ++i) {
      const UnixSeconds now = At(0, 0) + static_cast<int64_t>(rng() % (400 * kDaySecs));
      const UnixSeconds since = now - static_cast<int64_t>(rng() % (200 * kDaySecs));
      const UnixSeconds until = since + 1 + static_cast<int64_t>(rng() % (100 * kDaySecs));
      auto p = PlanSummary(since, until, r, now);
      ASSERT_TRUE(p.ok()) << since << " " << until << " " << now << p.status().message();
      EXPECT_LE(p->since, since);
      EXPECT_GE(p->until, until);
      ExpectTiles(*p, r, now);
      EXPECT_LE(p->spans.size(), 5u);
    }
  }
}

TEST(Windows, BucketKeysRoundTrip) {
  const std::vector<BucketKey> keys = {
      {Resolution::kMinute, At(10, 17), Scope::kWhole, 0},
      {Resolution::kHour, At(10, 0), Scope::kGroup, 0},
      {Resolution::kDay, kNov30, Scope::kKey, (uint64_t{1} << 63) - 1},
      {Resolution::kDay, BucketStart(kMaxTime, Resolution::kDay), Scope::kKey, 1},
      {Resolution::kMinute, 0, Scope::kGroup, 258},
  };
  for (const BucketKey& k : keys) {
    const std::string bytes = EncodeBucketKey(k);
    ASSERT_EQ(bytes.size(), kBucketKeySize);
    auto back = DecodeBucketKey(bytes);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, k);
  }
  // Big-endian bytes: 256 minutes is 0x3C00 seconds.
  EXPECT_EQ(EncodeBucketKey({Resolution::kMinute, 256 * kMin, Scope::kKey, 0x1122334455667788}),
            std::string("\x01\0\0\0\0\0\0\x3C\0\x02\x11\x22\x33\x44\x55\x66\x77\x88", 18));
}

TEST(Windows, BucketKeysSortByResolutionTimeScopeId) {
  auto key = [](Resolution r, UnixSeconds t, Scope s, uint64_t id) {
    return EncodeBucketKey({r, t, s, id});
  };
  const auto m = Resolution::kMinute;
  // Time order across a byte carry (255 and 256 minutes), before scope and id.
  EXPECT_LT(key(m, 255 * kMin, Scope::kKey, 99), key(m, 256 * kMin, Scope::kWhole, 0));
  EXPECT_LT(key(m, 4 * kMin, Scope::kKey, 1), key(m, 260 * kMin, Scope::kKey, 1));
  // In a bucket: the whole, then groups, then keys, each in id order.
  EXPECT_LT(key(m, 0, Scope::kWhole, 0), key(m, 0, Scope::kGroup, 0));
  EXPECT_LT(key(m, 0, Scope::kGroup, 300), key(m, 0, Scope::kKey, 1));
  EXPECT_LT(key(m, 0, Scope::kKey, 255), key(m, 0, Scope::kKey, 256));
  EXPECT_LT(key(m, 0, Scope::kKey, 1), key(m, 0, Scope::kKey, uint64_t{1} << 62));
  // Resolutions never interleave: every minute before any hour.
  EXPECT_LT(key(m, BucketStart(kMaxTime, m), Scope::kKey, 9),
            key(Resolution::kHour, 0, Scope::kWhole, 0));
  // A bucket's keys lie within its 10-byte prefix.
  const std::string p = EncodeBucketPrefix(m, kMin, Scope::kKey);
  EXPECT_EQ(key(m, kMin, Scope::kKey, 7).rfind(p, 0), 0u);
}

TEST(Windows, ExpiredRangeHoldsExactlyTheExpiredBuckets) {
  const Retention r;
  const UnixSeconds now = At(13, 5, 30);
  const UnixSeconds oldest = OldestHeld(Resolution::kMinute, r, now);
  const KeyRange range = ExpiredRange(Resolution::kMinute, r, now);
  auto in = [&](const std::string& k) { return range.begin <= k && k < range.end; };
  EXPECT_TRUE(in(EncodeBucketKey({Resolution::kMinute, 0, Scope::kWhole, 0})));
  EXPECT_TRUE(in(EncodeBucketKey({Resolution::kMinute, oldest - kMin, Scope::kKey, 1u << 30})));
  EXPECT_FALSE(in(EncodeBucketKey({Resolution::kMinute, oldest, Scope::kWhole, 0})));
  EXPECT_FALSE(in(EncodeBucketKey({Resolution::kHour, 0, Scope::kWhole, 0})));
  const KeyRange days = ExpiredRange(Resolution::kDay, r, now);
  EXPECT_EQ(days.begin, days.end);  // forever: nothing expires
}

TEST(Windows, DecodeRejectsWhatEncodeNeverMakes) {
  std::string good = EncodeBucketKey({Resolution::kHour, At(10, 0), Scope::kKey, 5});
  EXPECT_TRUE(DecodeBucketKey(good).ok());
  auto corrupt = [](std::string s) {
    auto k = DecodeBucketKey(s);
    return !k.ok() && k.status().code() == Status::Code::kCorruption;
  };
  EXPECT_TRUE(corrupt(good.substr(0, 17)));
  EXPECT_TRUE(corrupt(good + "x"));
  std::string s = good;
  s[0] = 4;  // no such resolution
  EXPECT_TRUE(corrupt(s));
  s = good;
  s[8] = static_cast<char>(s[8] + 1);  // start one second off the hour edge
  EXPECT_TRUE(corrupt(s));
  s = good;
  s[9] = 3;  // no such scope
  EXPECT_TRUE(corrupt(s));
  s = good;
  s[10] = static_cast<char>(0x80);  // id above 2^63-1
  EXPECT_TRUE(corrupt(s));
  EXPECT_TRUE(corrupt(EncodeBucketPrefix(Resolution::kHour, 0, Scope::kKey) +
                      std::string(8, '\0')));  // key id 0
  EXPECT_TRUE(corrupt(EncodeBucketPrefix(Resolution::kHour, 0, Scope::kWhole) +
                      std::string(7, '\0') + "\x01"));  // the whole with an id
  EXPECT_TRUE(corrupt(EncodeBucketPrefix(Resolution::kDay, kMaxTime + 1) +
                      std::string(9, '\0')));  // past 9999
}

}  // namespace
}  // namespace tally::core
