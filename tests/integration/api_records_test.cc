// Provider-group and API-key endpoints against the real binary: shapes, order, filters,
// validation statuses, auth, and totals moving with a key.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

json::value Parse(const HttpResult& r) { return json::parse(r.body); }

std::vector<std::string> Keys(const json::object& o) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : o) {
    keys.emplace_back(k);
  }
  return keys;
}

HttpResult Admin(const TallydProcess& t, std::string_view method, std::string_view target,
                 std::string_view body = {}) {
  return Http(t.http_port(), method, target, body, kAdmin);
}

TEST(ApiRecords, GroupLifecycleAndGoShape) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  HttpResult r =
      Admin(t, "POST", "/admin/provider-groups",
            R"({"name":"openai-main","type":"openai","base_url":"https://api",)"
            R"("total_requests":99,"success_rate":0.5,"CreatedAt":"2001-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 201) << r.body;
  json::object g = Parse(r).as_object();
  EXPECT_EQ(Keys(g), (std::vector<std::string>{
                         "ID", "CreatedAt", "UpdatedAt", "DeletedAt", "name", "type", "base_url",
                         "models", "status", "total_requests", "success_requests",
                         "failure_requests", "success_rate", "failure_rate"}));
  EXPECT_EQ(g.at("ID").as_int64(), 1);
  EXPECT_TRUE(g.at("DeletedAt").is_null());
  EXPECT_NE(g.at("CreatedAt").as_string(), "2001-01-01T00:00:00Z");  // ignored on write
  EXPECT_EQ(g.at("total_requests").as_int64(), 0);                   // ignored on write
  EXPECT_EQ(g.at("status").as_string(), "active");

  // Validation: name, type and base_url required; a taken name or id conflicts.
  EXPECT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"type":"t","base_url":"u"})").status,
            400);
  EXPECT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"name":"x","base_url":"u"})").status,
            400);
  EXPECT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"name":"x","type":"t"})").status, 400);
  EXPECT_EQ(Admin(t, "POST", "/admin/provider-groups",
                  R"({"name":"openai-main","type":"t","base_url":"u"})")
                .status,
            409);
  EXPECT_EQ(
      Admin(t, "POST", "/admin/provider-groups", R"({"ID":1,"name":"y","type":"t","base_url":"u"})")
          .status,
      409);
  EXPECT_EQ(Admin(t, "POST", "/admin/provider-groups", "not json").status, 400);
  EXPECT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"name":7})").status, 400);

  // POST with an explicit ID, then one without takes the lowest id never used.
  r = Admin(t, "POST", "/admin/provider-groups",
            R"({"ID":10,"name":"ten","type":"gemini","base_url":"u","google_project":"p"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Parse(r).at("google_project").as_string(), "p");
  r = Admin(t, "POST", "/admin/provider-groups", R"({"name":"next","type":"t","base_url":"u"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Parse(r).at("ID").as_int64(), 2);

  // PUT upserts: 201 at a new id, 200 when replacing; the body's ID must agree.
  r = Admin(t, "PUT", "/admin/provider-groups/5", R"({"name":"five","type":"t","base_url":"u"})");
  EXPECT_EQ(r.status, 201) << r.body;
  r = Admin(t, "PUT", "/admin/provider-groups/5",
            R"({"name":"five","type":"t2","base_url":"u","status":"disabled"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r).at("type").as_string(), "t2");
  EXPECT_EQ(Admin(t, "PUT", "/admin/provider-groups/5",
                  R"({"ID":6,"name":"five","type":"t","base_url":"u"})")
                .status,
            400);
  EXPECT_EQ(
      Admin(t, "PUT", "/admin/provider-groups/5", R"({"name":"ten","type":"t","base_url":"u"})")
          .status,
      409);

  // Lists are in id order and filter by status.
  r = Admin(t, "GET", "/admin/provider-groups");
  ASSERT_EQ(r.status, 200);
  std::vector<int64_t> ids;
  json::value list = Parse(r);
  for (const json::value& v : list.as_array()) {
    ids.push_back(v.at("ID").as_int64());
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 5, 10}));
  r = Admin(t, "GET", "/admin/provider-groups?status=disabled");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(Parse(r).as_array().size(), 1u);

  // GET and DELETE by id.
  EXPECT_EQ(Admin(t, "GET", "/admin/provider-groups/5").status, 200);
  EXPECT_EQ(Admin(t, "GET", "/admin/provider-groups/4").status, 404);
  EXPECT_EQ(Admin(t, "GET", "/admin/provider-groups/abc").status, 400);
  EXPECT_EQ(Admin(t, "DELETE", "/admin/provider-groups/5").status, 204);
  EXPECT_EQ(Admin(t, "GET", "/admin/provider-groups/5").status, 404);
  EXPECT_EQ(Admin(t, "DELETE", "/admin/provider-groups/5").status, 404);
  EXPECT_EQ(Admin(t, "PATCH", "/admin/provider-groups/1").status, 405);
  EXPECT_EQ(Admin(t, "GET", "/admin/provider-groups/1/x").status, 404);
}

TEST(ApiRecords, KeysTotalsMoveWithTheKeyAndRefreshTokenStaysHidden) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  ASSERT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"name":"a","type":"t","base_url":"u"})")
                .status,
            201);
  ASSERT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"name":"b","type":"t","base_url":"u"})")
                .status,
            201);
  HttpResult r = Admin(t, "POST", "/admin/api-keys",
                       R"({"group_id":1,"api_key":"sk-1","refresh_token":"rt-secret-1",)"
                       R"("access_token":"at","status":"active"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body.find("rt-secret-1"), std::string::npos);
  EXPECT_EQ(r.body.find("refresh_token"), std::string::npos);
  json::object k = Parse(r).as_object();
  EXPECT_EQ(Keys(k),
            (std::vector<std::string>{
                "ID", "CreatedAt", "UpdatedAt", "DeletedAt", "group_id", "api_key", "access_token",
                "weight", "status", "auto_ban", "ban_reason", "ban_until", "total_requests",
                "success_requests", "failure_requests", "success_rate", "failure_rate"}));
  EXPECT_EQ(k.at("weight").as_int64(), 1);
  EXPECT_TRUE(k.at("auto_ban").as_bool());
  EXPECT_TRUE(k.at("ban_until").is_null());
  r = Admin(t, "POST", "/admin/api-keys",
            R"({"group_id":1,"api_key":"sk-2","status":"suspended","weight":3})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Admin(t, "POST", "/admin/api-keys", R"({"group_id":9,"api_key":"x"})").status, 400);
  EXPECT_EQ(Admin(t, "POST", "/admin/api-keys", R"({"ID":1,"group_id":1,"api_key":"x"})").status,
            409);

  // Count into key 1 and check the group.
  ASSERT_EQ(Http(t.http_port(), "POST", "/internal/apikey-stats/flush",
                 R"({"keys":[{"api_key_id":1,"requests":10,"success_requests":7}]})", kInternal)
                .status,
            200);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/provider-groups/1")).at("total_requests").as_int64(), 10);

  // Filters.
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/api-keys?group_id=1")).as_array().size(), 2u);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/api-keys?group_id=2")).as_array().size(), 0u);
  json::array suspended = Parse(Admin(t, "GET", "/admin/api-keys?status=suspended")).as_array();
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(suspended[0].at("ID").as_int64(), 2);
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys?group_id=x").status, 400);

  // Moving key 1 to group 2 moves its totals; the refresh token survives a PUT without it
  // being shown.
  r = Admin(t, "PUT", "/admin/api-keys/1",
            R"({"group_id":2,"api_key":"sk-1","refresh_token":"rt-secret-2"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("rt-secret"), std::string::npos);
  EXPECT_EQ(Parse(r).at("total_requests").as_int64(), 10);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/provider-groups/1")).at("total_requests").as_int64(), 0);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/provider-groups/2")).at("total_requests").as_int64(), 10);
  json::object summary =
      Parse(Admin(t, "GET", "/admin/apikey-stats/summary?group_id=2")).as_object();
  EXPECT_EQ(summary.at("success_requests").as_int64(), 7);

  // A group with live keys cannot be deleted; a deleted key leaves its group's totals.
  EXPECT_EQ(Admin(t, "DELETE", "/admin/provider-groups/2").status, 409);
  EXPECT_EQ(Admin(t, "DELETE", "/admin/api-keys/1").status, 204);
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys/1").status, 404);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/provider-groups/2")).at("total_requests").as_int64(), 0);
  EXPECT_EQ(Admin(t, "DELETE", "/admin/provider-groups/2").status, 204);

  // PUT creates a key at a chosen id (a control plane syncing its ids).
  r = Admin(t, "PUT", "/admin/api-keys/500", R"({"group_id":1,"api_key":"sk-500"})");
  EXPECT_EQ(r.status, 201) << r.body;
  std::vector<int64_t> ids;
  json::value list = Parse(Admin(t, "GET", "/admin/api-keys"));
  for (const json::value& v : list.as_array()) {
    ids.push_back(v.at("ID").as_int64());
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 500}));
  EXPECT_EQ(t.Log().find("rt-secret"), std::string::npos);
  EXPECT_EQ(t.Log().find("adm-token"), std::string::npos);
}

TEST(ApiRecords, AdminEndpointsNeedTheBearerToken) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  for (const char* target :
       {"/admin/provider-groups", "/admin/provider-groups/1", "/admin/api-keys",
        "/admin/api-keys/1", "/admin/apikey-stats/summary"}) {
    HttpResult none = Http(t.http_port(), "GET", target);
    EXPECT_EQ(none.status, 401) << target;
    EXPECT_EQ(none.headers["WWW-Authenticate"], "Bearer");
    EXPECT_EQ(Http(t.http_port(), "GET", target, {}, {{"Authorization", "Bearer wrong"}}).status,
              401)
        << target;
    EXPECT_EQ(Http(t.http_port(), "GET", target, {}, {{"Authorization", "adm-token"}}).status, 401)
        << target;
    // The internal token is not the admin token.
    EXPECT_EQ(Http(t.http_port(), "GET", target, {}, kInternal).status, 401) << target;
  }
  EXPECT_EQ(Http(t.http_port(), "POST", "/admin/flush").status, 401);
  EXPECT_EQ(
      Http(t.http_port(), "GET", "/admin/api-keys", {}, {{"Authorization", "bearer adm-token"}})
          .status,
      200);
  // Health and metrics need no token.
  EXPECT_EQ(Http(t.http_port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(Http(t.http_port(), "GET", "/metrics").status, 200);
}

}  // namespace
}  // namespace tally::testing

namespace tally::testing {
namespace {

// An automatic key id skips ids that traffic has counted but no flush has written yet: the
// new key must not inherit counts sent for another (README, "ID", keys first seen through
// traffic included).
TEST(ApiRecords, AnAutomaticKeyIdSkipsIdsCountedButNotYetFlushed) {
  TempDir dir;
  std::vector<std::string> args = Tokens();
  args.insert(args.end(), {"--flush-interval-ms", "3600000"});
  TallydProcess t(dir.Sub("data"), args);
  ASSERT_EQ(Http(t.http_port(), "POST", "/v1/ingest", "apikey.1.success:3|c\napikey.2.success:1|c",
                 kInternal)
                .status,
            202);
  HttpResult r = Admin(t, "POST", "/admin/api-keys", R"({"api_key":"new"})");
  ASSERT_EQ(r.status, 201) << r.body;
  const int64_t id = Parse(r).at("ID").as_int64();
  EXPECT_EQ(id, 3);
  ASSERT_EQ(Admin(t, "POST", "/admin/flush").status, 200);
  json::object created =
      Parse(Admin(t, "GET", "/admin/api-keys/" + std::to_string(id))).as_object();
  EXPECT_EQ(created.at("api_key").as_string(), "new");
  EXPECT_EQ(created.at("total_requests").as_int64(), 0);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/api-keys/1")).at("total_requests").as_int64(), 3);
  EXPECT_EQ(Parse(Admin(t, "GET", "/admin/api-keys/2")).at("total_requests").as_int64(), 1);
  // The next automatic id goes on past them.
  r = Admin(t, "POST", "/admin/api-keys", R"({"api_key":"next"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Parse(r).at("ID").as_int64(), 4);
}

}  // namespace
}  // namespace tally::testing
