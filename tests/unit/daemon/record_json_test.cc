#include "daemon/api/record_json.h"

#include <gtest/gtest.h>

namespace tally::daemon {
namespace {

using persistence::ApiKey;
using persistence::ProviderGroup;
using namespace std::string_literals;

TEST(RecordJson, GroupInGoFieldOrderWithOmitempty) {
  // std::string temporaries: GCC 12 warns falsely (-Wrestrict) on assigning short literals.
  ProviderGroup g;
  g.id = 3;
  g.created_at = 1'500'000'000;
  g.updated_at = 2'000'000'000;
  g.name = "g"s;
  g.type = "openai"s;
  g.base_url = "https://x"s;
  g.headers_profile = "p"s;
  g.models = "a,b"s;
  g.totals.Add(7, 2);
  EXPECT_EQ(RenderGroup(g),
            R"({"ID":3,"CreatedAt":"1970-01-01T00:00:01.5Z","UpdatedAt":"1970-01-01T00:00:02Z",)"
            R"("DeletedAt":null,"name":"g","type":"openai","base_url":"https://x",)"
            R"("headers_profile":"p","models":"a,b","status":"active","total_requests":9,)"
            R"("success_requests":7,"failure_requests":2,"success_rate":0.7777777777777778,)"
            R"("failure_rate":0.2222222222222222})");
}

TEST(RecordJson, KeyNeverShowsTheRefreshToken) {
  ApiKey k;
  k.id = 1;
  k.group_id = 2;
  k.api_key = "sk"s;
  k.refresh_token = "very-secret"s;
  k.expires_at = core::OffsetTime{};
  k.totals.Add(3, 2);
  std::string json = RenderKey(k);
  EXPECT_EQ(json.find("very-secret"), std::string::npos);
  EXPECT_EQ(json.find("refresh_token"), std::string::npos);
  EXPECT_EQ(json,
            R"({"ID":1,"CreatedAt":"1970-01-01T00:00:00Z","UpdatedAt":"1970-01-01T00:00:00Z",)"
            R"("DeletedAt":null,"group_id":2,"api_key":"sk","expires_at":"1970-01-01T00:00:00Z",)"
            R"("weight":1,"status":"active","auto_ban":true,"ban_reason":"","ban_until":null,)"
            R"("total_requests":5,"success_requests":3,"failure_requests":2,"success_rate":0.6,)"
            R"("failure_rate":0.4})");
  EXPECT_EQ(RenderKeys({}), "[]");
}

TEST(RecordJson, ParsesLikeEncodingJson) {
  auto k = ParseKey(
      R"({"id":9,"GROUP_ID":4,"api_key":"a","refresh_token":"r","weight":0,"auto_ban":false,)"
      R"("ban_until":"2026-01-02T03:04:05Z","expires_at":null,"total_requests":77,)"
      R"("success_rate":"ignored","CreatedAt":"whatever","unknown":[1]})");
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(k->id, 9u);
  EXPECT_EQ(k->group_id, 4u);
  EXPECT_EQ(k->refresh_token, "r");
  EXPECT_EQ(k->weight, 0);
  EXPECT_FALSE(k->auto_ban);
  EXPECT_TRUE(k->ban_until.has_value());
  EXPECT_FALSE(k->expires_at.has_value());
  EXPECT_EQ(k->totals.total, 0);  // counters in a body are ignored
  EXPECT_EQ(k->status, "active");

  auto defaults = ParseKey("{}");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->weight, 1);
  EXPECT_TRUE(defaults->auto_ban);

  EXPECT_FALSE(ParseKey(R"({"weight":1.5})").ok());
  EXPECT_FALSE(ParseKey(R"({"weight":"1"})").ok());
  EXPECT_FALSE(ParseKey(R"({"group_id":-1})").ok());
  EXPECT_FALSE(ParseKey(R"({"ban_until":"tomorrow"})").ok());
  // Regression (json_body_fuzz): a time past int64 nanoseconds once overflowed; Go takes it.
  auto late = ParseKey(R"({"api_key":"sk-5","expires_at":"7781-01-02T03:04:05Z"})");
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->expires_at, ParseTime("7781-01-02T03:04:05Z"));
  EXPECT_FALSE(ParseKey("[]").ok());
  EXPECT_FALSE(ParseKey("{").ok());

  auto g = ParseGroup(R"({"Name":"n","type":"t","base_url":"u","status":""})");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->name, "n");
  EXPECT_EQ(g->status, "active");
  EXPECT_FALSE(ParseGroup(R"({"name":5})").ok());
}

TEST(RecordJson, FlushBodyIsValidatedAsAWhole) {
  auto d = ParseFlushBody(
      R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},{"api_key_id":2,"requests":4,"success_requests":4}]})");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0], (core::KeyDelta{1, 3, 2}));
  EXPECT_EQ((*d)[1], (core::KeyDelta{2, 4, 0}));
  EXPECT_TRUE(ParseFlushBody(R"({"keys":[]})").ok());
  EXPECT_TRUE(ParseFlushBody(R"({})").ok());

  for (const char* bad : {
           R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":6}]})",
           R"({"keys":[{"api_key_id":0,"requests":5,"success_requests":3}]})",
           R"({"keys":[{"requests":5}]})",
           R"({"keys":[{"api_key_id":1,"requests":-1,"success_requests":0}]})",
           R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":-1}]})",
           R"({"keys":[{"api_key_id":1,"requests":5.5}]})",
           R"({"keys":[{"api_key_id":"1","requests":5}]})",
           R"({"keys":[{"api_key_id":9223372036854775808,"requests":1}]})",
           R"({"keys":[{"api_key_id":1,"requests":1099511627777}]})",
           R"({"keys":{}})",
           R"({"keys":[1]})",
           R"([])",
           "not json",
           "",
       }) {
    EXPECT_FALSE(ParseFlushBody(bad).ok()) << bad;
  }
  // One bad entry refuses the whole body.
  EXPECT_FALSE(
      ParseFlushBody(
          R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},{"api_key_id":0}]})")
          .ok());
}

}  // namespace
}  // namespace tally::daemon
