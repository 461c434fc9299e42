#include "persistence/record_codec.h"

#include <gtest/gtest.h>

#include <limits>

#include "core/offset_time.h"

namespace tally::persistence {
namespace {

// Bytes from hex ("01ff" -> "\x01\xff").
std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(RecordCodec, GroupRoundTrips) {
  ProviderGroup g;
  g.id = 7;
  g.created_at = 1;
  g.updated_at = 2;
  g.deleted_at = 3;
  g.name = "openai-main";
  g.type = "openai";
  g.base_url = "https://api.example";
  g.models = "gpt-4o,gpt-4o-mini";
  g.totals.Add(7, 2);
  ProviderGroup back;
  ASSERT_TRUE(DecodeGroup(EncodeGroup(g), &back).ok());
  EXPECT_EQ(back, g);
}

TEST(RecordCodec, KeyRoundTripsWithoutTotals) {
  ApiKey k;
  k.id = 9;
  k.group_id = 7;
  k.api_key = "sk-secret";
  k.refresh_token = std::string("refresh-token-value");
  k.expires_at = core::OffsetTime{123, 4, 0};
  k.weight = 3;
  k.auto_ban = false;
  ApiKey back;
  ASSERT_TRUE(DecodeKey(EncodeKey(k), &back).ok());
  EXPECT_EQ(back, k);
}

// Issue 23.12: expires_at and ban_until hold Go's whole RFC 3339 range, offset included.
TEST(RecordCodec, KeyTimesKeepGosWholeRangeAndTheOffset) {
  const core::OffsetTime cases[] = {
      {core::kMinLocalSeconds, 0, 0},                    // 0000-01-01T00:00:00Z
      {-62'135'596'800, 0, 0},                           // 0001-01-01T00:00:00Z, Go's zero
      {core::kMaxLocalSeconds, 999'999'999, 0},          // 9999-12-31T23:59:59.999999999Z
      {core::kMinLocalSeconds - 14 * 3600, 0, 14 * 60},  // 0000-01-01T00:00:00+14:00
      {core::kMaxLocalSeconds + 12 * 3600, 999'999'999, -12 * 60},  // ...59.999999999-12:00
      {-1, 999'999'999, 0},                                         // just before 1970
  };
  for (const core::OffsetTime& t : cases) {
    ASSERT_TRUE(t.Valid()) << t.unix_seconds;
    ApiKey k;
    k.id = 1;
    k.expires_at = t;
    k.ban_until = t;
    ApiKey back;
    ASSERT_TRUE(DecodeKey(EncodeKey(k), &back).ok()) << t.unix_seconds;
    EXPECT_EQ(back, k) << t.unix_seconds;
  }
}

// A stored time Go could not render is Corruption, never rendered as garbage.
TEST(RecordCodec, KeyTimesOutOfRangeAreCorruption) {
  const core::OffsetTime bad[] = {
      {0, 1'000'000'000, 0},               // nanos past a second
      {0, 0, 24 * 60},                     // offset +24:00
      {0, 0, -24 * 60},                    // offset -24:00
      {core::kMinLocalSeconds - 1, 0, 0},  // year -1
      {core::kMaxLocalSeconds + 1, 0, 0},  // year 10000
      {core::kMaxLocalSeconds, 0, 1},      // year 10000 at +00:01
  };
  for (const core::OffsetTime& t : bad) {
    EXPECT_FALSE(t.Valid());
    ApiKey k;
    k.ban_until = t;
    ApiKey back;
    EXPECT_EQ(DecodeKey(EncodeKey(k), &back).code(), core::Status::Code::kCorruption)
        << t.unix_seconds << " " << t.nanos << " " << t.offset_minutes;
  }
  std::string v = EncodeKey(ApiKey{});
  v[v.size() - 1] = 2;  // ban_until's presence byte: neither 0 nor 1
  ApiKey back;
  EXPECT_EQ(DecodeKey(v, &back).code(), core::Status::Code::kCorruption);
}

TEST(RecordCodec, UnknownVersionIsCorruption) {
  std::string v = EncodeGroup(ProviderGroup{});
  v[0] = 99;
  ProviderGroup g;
  core::Status s = DecodeGroup(v, &g);
  EXPECT_EQ(s.code(), core::Status::Code::kCorruption);
  EXPECT_NE(s.message().find("version 99"), std::string::npos) << s.message();
}

TEST(RecordCodec, TruncatedValueIsCorruption) {
  std::string v = EncodeKey(ApiKey{});
  v.pop_back();
  ApiKey k;
  EXPECT_EQ(DecodeKey(v, &k).code(), core::Status::Code::kCorruption);
}

TEST(RecordCodec, TotalsRoundTripInVarintsAndVersion1StillDecodes) {
  for (auto [success, failure] : {std::pair<int64_t, int64_t>{0, 0},
                                  {127, 128},
                                  {int64_t{1} << 40, 3},
                                  {(int64_t{1} << 62) + 5, 1}}) {
    core::Totals t;
    t.Add(success, failure);
    std::string v;
    EncodeTotals(t, &v);
    EXPECT_EQ(v[0], 2);
    core::Totals back;
    ASSERT_TRUE(DecodeTotals(v, &back).ok());
    EXPECT_EQ(back, t);
  }
  core::Totals small;
  small.Add(5, 1);
  std::string v;
  EncodeTotals(small, &v);
  EXPECT_EQ(v.size(), 3u);
  // Version 1: fixed-width little-endian total, success, failure.
  std::string v1(1, '\x01');
  for (int64_t x : {int64_t{9}, int64_t{7}, int64_t{2}}) {
    for (int i = 0; i < 8; ++i) {
      v1.push_back(static_cast<char>(x >> (8 * i)));
    }
  }
  core::Totals old;
  ASSERT_TRUE(DecodeTotals(v1, &old).ok());
  EXPECT_EQ(old.total, 9);
  EXPECT_EQ(old.success, 7);
  EXPECT_EQ(old.failure, 2);
  v[0] = 3;
  EXPECT_EQ(DecodeTotals(v, &old).code(), core::Status::Code::kCorruption);
  EXPECT_EQ(DecodeTotals(std::string("\x02\xff", 2), &old).code(),
            core::Status::Code::kCorruption);  // truncated varint
}

// Golden bytes: the stored encodings, fixed, so that a change of format is a deliberate act
// (a new version byte, and the old version still decoded), never a silent one.
TEST(RecordCodecGolden, Group) {
  ProviderGroup g;
  g.id = 7;
  g.created_at = 1;
  g.updated_at = 2;
  g.deleted_at = 3;
  g.name = "n";
  g.type = "t";
  g.base_url = "u";
  g.models = "m";
  g.totals.Add(5, 2);
  const std::string golden = Unhex(
      "01"                // version
      "0700000000000000"  // id
      "0100000000000000"  // created_at
      "0200000000000000"  // updated_at
      "01"
      "0300000000000000"  // deleted_at: set, 3
      "010000006e"
      "0100000074"
      "0100000075"  // name, type, base_url
      "00000000"
      "00000000"
      "00000000"
      "00000000"              // google_project .. headers_profile
      "010000006d"            // models
      "06000000616374697665"  // status "active"
      "0700000000000000"
      "0500000000000000"
      "0200000000000000");  // total, success, failure
  EXPECT_EQ(EncodeGroup(g), golden);
  ProviderGroup back;
  ASSERT_TRUE(DecodeGroup(golden, &back).ok());
  EXPECT_EQ(back, g);
}

// Version 1 keys (written by builds before issue 23.12) still decode: their times were
// Unix nanoseconds, read as the same instant at UTC.
TEST(RecordCodecGolden, KeyVersion1) {
  ApiKey k;
  k.id = 9;
  k.created_at = 1;
  k.updated_at = 2;
  k.group_id = 7;
  k.api_key = "a";
  k.refresh_token = "r";
  k.expires_at = core::OffsetTime{0, 4, 0};
  k.weight = 3;
  k.auto_ban = false;
  k.ban_reason = "b";
  const std::string golden = Unhex(
      "01"                // version
      "0900000000000000"  // id
      "0100000000000000"  // created_at
      "0200000000000000"  // updated_at
      "00"
      "0000000000000000"  // deleted_at: unset
      "0700000000000000"  // group_id
      "0100000061"
      "00000000"
      "0100000072"  // api_key, access_token, refresh_token
      "01"
      "0400000000000000"  // expires_at: set, 4
      "00000000"
      "00000000"              // account_id, project_id
      "0300000000000000"      // weight
      "06000000616374697665"  // status "active"
      "00"                    // auto_ban
      "0100000062"            // ban_reason
      "00"
      "0000000000000000");  // ban_until: unset
  ApiKey back;
  ASSERT_TRUE(DecodeKey(golden, &back).ok());
  EXPECT_EQ(back, k);
  uint64_t id = 0;
  bool live = false;
  uint64_t group_id = 0;
  ASSERT_TRUE(DecodeKeyHead(golden, &id, &live, &group_id).ok());
  EXPECT_EQ(id, 9u);
  EXPECT_TRUE(live);
  EXPECT_EQ(group_id, 7u);
  // Negative nanoseconds (before 1970) floor to whole seconds.
  std::string before = golden;
  before.replace(57, 8, Unhex("ffffffffffffffff"));  // expires_at's nanoseconds: -1
  ASSERT_TRUE(DecodeKey(before, &back).ok());
  EXPECT_EQ(back.expires_at, (core::OffsetTime{-1, 999'999'999, 0}));
}

TEST(RecordCodecGolden, KeyVersion2) {
  ApiKey k;
  k.id = 9;
  k.created_at = 1;
  k.updated_at = 2;
  k.group_id = 7;
  k.api_key = "a";
  k.refresh_token = "r";
  k.expires_at = core::OffsetTime{-62'135'596'800, 0, 0};  // 0001-01-01T00:00:00Z
  k.weight = 3;
  k.auto_ban = false;
  k.ban_reason = "b";
  k.ban_until = core::OffsetTime{253'402'300'799 + 12 * 3600, 999'999'999, -12 * 60};
  const std::string golden = Unhex(
      "02"                // version
      "0900000000000000"  // id
      "0100000000000000"  // created_at
      "0200000000000000"  // updated_at
      "00"
      "0000000000000000"  // deleted_at: unset (Unix nanoseconds, as in version 1)
      "0700000000000000"  // group_id
      "0100000061"
      "00000000"
      "0100000072"  // api_key, access_token, refresh_token
      "01"
      "00096e88f1ffffff"
      "00000000"
      "0000"  // expires_at: set, -62135596800 s, 0 ns, offset 0
      "00000000"
      "00000000"              // account_id, project_id
      "0300000000000000"      // weight
      "06000000616374697665"  // status "active"
      "00"                    // auto_ban
      "0100000062"            // ban_reason
      "01"
      "3feaf4ff3a000000"
      "ffc99a3b"
      "30fd");  // ban_until: set, 253402343999 s, 999999999 ns, offset -720 minutes
  EXPECT_EQ(EncodeKey(k), golden);
  ApiKey back;
  ASSERT_TRUE(DecodeKey(golden, &back).ok());
  EXPECT_EQ(back, k);
  k.ban_until.reset();
  EXPECT_EQ(EncodeKey(k), golden.substr(0, golden.size() - 15) + Unhex("00"));
}

TEST(RecordCodecGolden, Totals) {
  core::Totals t;
  t.Add(300, 1);
  std::string v;
  EncodeTotals(t, &v);
  EXPECT_EQ(v, Unhex("02"
                     "ac02"
                     "01"));  // version 2, varint 300, varint 1
  core::Totals back;
  ASSERT_TRUE(DecodeTotals(v, &back).ok());
  EXPECT_EQ(back, t);
  // Version 1 (no longer written): fixed-width total, success, failure.
  ASSERT_TRUE(DecodeTotals(Unhex("01"
                                 "2d01000000000000"
                                 "2c01000000000000"
                                 "0100000000000000"),
                           &back)
                  .ok());
  EXPECT_EQ(back, t);
}

TEST(RecordCodecGolden, IdempotentAnswer) {
  const std::string digest(32, '\xab');
  const std::string golden = Unhex(
      "02"                // version
      "0500000000000000"  // written_at
      "20000000"
      "abababababababababababababababababababababababababababababababab"  // digest
      "020000007b7d");                                                    // response "{}"
  EXPECT_EQ(EncodeIdempotent(5, digest, "{}"), golden);
  TimeNs written_at = 0;
  std::string got_digest;
  std::string response;
  ASSERT_TRUE(DecodeIdempotent(golden, &written_at, &got_digest, &response).ok());
  EXPECT_EQ(written_at, 5);
  EXPECT_EQ(got_digest, digest);
  EXPECT_EQ(response, "{}");
  // Version 1, written by builds before SHA-256: a u64 FNV-1a hash, read as its 8 bytes.
  ASSERT_TRUE(DecodeIdempotent(Unhex("01"
                                     "0500000000000000"
                                     "0807060504030201"
                                     "020000007b7d"),
                               &written_at, &got_digest, &response)
                  .ok());
  EXPECT_EQ(got_digest, Unhex("0807060504030201"));
  EXPECT_EQ(response, "{}");
  EXPECT_EQ(DecodeIdempotent(Unhex("03"
                                   "0500000000000000"),
                             &written_at, &got_digest, &response)
                .code(),
            core::Status::Code::kCorruption);
}

TEST(RecordCodecGolden, IdKeyIsBigEndian) { EXPECT_EQ(IdKey(0x0102), Unhex("0000000000000102")); }

// Totals past 2^63-1 cannot be stored by this build; one read from disk is Corruption, never
// a negative number.
TEST(RecordCodec, TotalsPastTheMaximumAreCorruption) {
  core::Totals t;
  // 2^63 successes: varint of 2^63 is nine 0x80 bytes then 0x01.
  EXPECT_EQ(DecodeTotals(Unhex("02"
                               "80808080808080808001"
                               "00"),
                         &t)
                .code(),
            core::Status::Code::kCorruption);
  // 2^62 + 2^62: each fits, the total does not.
  EXPECT_EQ(DecodeTotals(Unhex("02"
                               "808080808080808040"
                               "808080808080808040"),
                         &t)
                .code(),
            core::Status::Code::kCorruption);
  // Exactly 2^63-1 is fine.
  ASSERT_TRUE(DecodeTotals(Unhex("02"
                                 "ffffffffffffffff7f"
                                 "00"),
                           &t)
                  .ok());
  EXPECT_EQ(t.total, std::numeric_limits<int64_t>::max());
  // Version 1 with a negative total (what an overflowed earlier build wrote).
  EXPECT_EQ(DecodeTotals(Unhex("01"
                               "0000000000000080"
                               "0000000000000080"
                               "0000000000000000"),
                         &t)
                .code(),
            core::Status::Code::kCorruption);
  ProviderGroup g;
  g.totals.total = -1;
  g.totals.success = -1;
  EXPECT_EQ(DecodeGroup(EncodeGroup(g), &g).code(), core::Status::Code::kCorruption);
}

TEST(RecordCodec, IdsSortBigEndian) {
  EXPECT_LT(IdKey(1), IdKey(256));
  EXPECT_EQ(IdFromKey(IdKey(0x0102030405060708ull)), 0x0102030405060708ull);
}

}  // namespace
}  // namespace tally::persistence
