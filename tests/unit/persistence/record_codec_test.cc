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

TEST(RecordCodec, IdsSortBigEndian) {
  EXPECT_LT(IdKey(1), IdKey(256));
  EXPECT_EQ(IdFromKey(IdKey(0x0102030405060708ull)), 0x0102030405060708ull);
}

}  // namespace
}  // namespace tally::persistence
