// Issue 23.12 against the real binary: a key's times at the ends of Go's RFC 3339 range
// survive a PUT, a restart (the stored value) and a GET, byte for byte as Go renders them.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

TEST(ApiRecordTimes, GoRangeEndsSurvivePutRestartAndGet) {
  TempDir dir;
  const std::string body = R"({"api_key":"sk-times","expires_at":"0001-01-01T00:00:00Z",)"
                           R"("ban_until":"9999-12-31T23:59:59.999999999Z"})";
  std::string put_body;
  {
    TallydProcess t(dir.Sub("data"), Tokens());
    HttpResult put = Http(t.http_port(), "PUT", "/admin/api-keys/7", body, kAdmin);
    ASSERT_EQ(put.status, 201) << put.body;
    put_body = put.body;
    EXPECT_EQ(t.Stop(), 0) << t.Log();
  }
  TallydProcess t(dir.Sub("data"), Tokens());
  HttpResult get = Http(t.http_port(), "GET", "/admin/api-keys/7", {}, kAdmin);
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(get.body, put_body);  // the whole record, equal after the restart
  json::object k = json::parse(get.body).as_object();
  EXPECT_EQ(k.at("expires_at").as_string(), "0001-01-01T00:00:00Z");
  EXPECT_EQ(k.at("ban_until").as_string(), "9999-12-31T23:59:59.999999999Z");
}

}  // namespace
}  // namespace tally::testing
