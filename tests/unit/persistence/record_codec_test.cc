#include "persistence/record_codec.h"

#include <gtest/gtest.h>

namespace tally::persistence {
namespace {

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
  k.expires_at = 123;
  k.weight = 3;
  k.auto_ban = false;
  ApiKey back;
  ASSERT_TRUE(DecodeKey(EncodeKey(k), &back).ok());
  EXPECT_EQ(back, k);
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

TEST(RecordCodec, IdsSortBigEndian) {
  EXPECT_LT(IdKey(1), IdKey(256));
  EXPECT_EQ(IdFromKey(IdKey(0x0102030405060708ull)), 0x0102030405060708ull);
}

}  // namespace
}  // namespace tally::persistence
