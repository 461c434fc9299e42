// Issue 13.6 and 13.12 against the real binary: automatic ids survive a huge id sent by
// traffic, and one parsing rule (Boost.URL) for paths and queries on every endpoint.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

HttpResult Admin(const TallydProcess& t, std::string_view method, std::string_view target,
                 std::string_view body = {}) {
  return Http(t.http_port(), method, target, body, kAdmin);
}

int64_t IdOf(const HttpResult& r) { return json::parse(r.body).at("ID").as_int64(); }

TEST(ApiQuery, AutomaticIdsSurviveTheLargestIdFromTraffic) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  // An unauthenticated datagram creates key 2^63-1 in the unassigned group.
  SendUdp(t.udp_port(), "apikey.9223372036854775807.success:1|c");
  ASSERT_NE(WaitForTotal(t.http_port(), 1, 10000, kAdmin).find("\"total_requests\":1"),
            std::string::npos);
  ASSERT_EQ(Admin(t, "POST", "/admin/flush").status, 200);
  ASSERT_EQ(Admin(t, "GET", "/admin/api-keys/9223372036854775807").status, 200);

  HttpResult r = Admin(t, "POST", "/admin/api-keys", R"({"api_key":"sk-a"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(IdOf(r), 1);
  r = Admin(t, "POST", "/admin/api-keys", R"({"api_key":"sk-b"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(IdOf(r), 2);
  // A deleted id is never handed out again, nor one taken by traffic or by an explicit ID.
  ASSERT_EQ(Admin(t, "DELETE", "/admin/api-keys/2").status, 204);
  ASSERT_EQ(Admin(t, "PUT", "/admin/api-keys/3", R"({"api_key":"sk-c"})").status, 201);
  SendUdp(t.udp_port(), "apikey.4.success:1|c");
  ASSERT_NE(WaitForTotal(t.http_port(), 2, 10000, kAdmin).find("\"total_requests\":2"),
            std::string::npos);
  ASSERT_EQ(Admin(t, "POST", "/admin/flush").status, 200);
  r = Admin(t, "POST", "/admin/api-keys", R"({"api_key":"sk-d"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(IdOf(r), 5);

  // Groups: the same rule (an explicit ID 2^63-1 does not exhaust them).
  r = Admin(t, "POST", "/admin/provider-groups",
            R"({"ID":9223372036854775807,"name":"max","type":"t","base_url":"u"})");
  ASSERT_EQ(r.status, 201) << r.body;
  r = Admin(t, "POST", "/admin/provider-groups", R"({"name":"auto","type":"t","base_url":"u"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(IdOf(r), 1);

  // And after a restart: the rule depends on what is stored, not on memory of this run.
  t.Stop();
  TallydProcess again(dir.Sub("data"), Tokens());
  r = Admin(again, "POST", "/admin/api-keys", R"({"api_key":"sk-e"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(IdOf(r), 6);
}

TEST(ApiQuery, OneParsingRuleForPathsAndQueries) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  ASSERT_EQ(Admin(t, "POST", "/admin/provider-groups", R"({"name":"g","type":"t","base_url":"u"})")
                .status,
            201);
  ASSERT_EQ(Admin(t, "PUT", "/admin/api-keys/5", R"({"group_id":1,"api_key":"sk"})").status, 201);

  // Percent-decoding applies to every parameter and to the path.
  for (std::string_view target :
       {"/admin/api-keys?group_id=%31", "/admin/api-keys?status=%61ctive",
        "/admin/api-keys?%67roup_id=1", "/admin/%61pi-keys?group_id=1&status=active"}) {
    HttpResult r = Admin(t, "GET", target);
    ASSERT_EQ(r.status, 200) << target << " " << r.body;
    ASSERT_EQ(json::parse(r.body).as_array().size(), 1u) << target;
  }
  EXPECT_EQ(Admin(t, "GET", "/admin/apikey-stats/summary?group_id=%31").status, 200);
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys/%35").status, 200);
  EXPECT_EQ(Admin(t, "GET", "/admin/provider-groups/%31").status, 200);

  // Ids are canonical decimal everywhere: no leading zero, no sign.
  for (std::string_view target :
       {"/admin/api-keys?group_id=01", "/admin/api-keys?group_id=00",
        "/admin/apikey-stats/summary?group_id=00", "/admin/apikey-stats/summary?group_id=01",
        "/admin/api-keys/005", "/admin/api-keys/+5", "/admin/provider-groups/01",
        "/admin/api-keys?group_id=%2B1", "/admin/api-keys?group_id="}) {
    HttpResult r = Admin(t, "GET", target);
    EXPECT_EQ(r.status, 400) << target << " " << r.body;
    EXPECT_NE(r.body.find("canonical decimal"), std::string::npos) << target << " " << r.body;
  }
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys?group_id=0").status, 200);
  EXPECT_EQ(Admin(t, "GET", "/admin/apikey-stats/summary?group_id=0").status, 200);

  // A bad escape or a parameter given twice is a 400 on any endpoint; unknown ones are ignored.
  for (std::string_view target :
       {"/admin/api-keys?status=%zz", "/admin/api-keys?group_id=1&group_id=1",
        "/admin/apikey-stats/summary?group_id=1&%67roup_id=1", "/admin/api-keys/%zz",
        "/admin/provider-groups?status=a&status=b"}) {
    EXPECT_EQ(Admin(t, "GET", target).status, 400) << target;
  }
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys?unknown=1&x").status, 200);
  // Absolute-form targets follow the same rule; a trailing '/' is an empty segment.
  EXPECT_EQ(Admin(t, "GET", "http://tallyd.example/admin/api-keys/%35").status, 200);
  EXPECT_EQ(Admin(t, "GET", "http://tallyd.example/admin/api-keys/05").status, 400);
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys/").status, 404);
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys/5/").status, 404);
  // A rejected request applies nothing.
  EXPECT_EQ(Admin(t, "DELETE", "/admin/api-keys/05").status, 400);
  EXPECT_EQ(Admin(t, "GET", "/admin/api-keys/5").status, 200);
}

}  // namespace
}  // namespace tally::testing
