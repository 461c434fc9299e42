// The API's small parsing helpers: query parameters (Boost.URL), ids, status mapping.
#include <gtest/gtest.h>

#include "daemon/api/call.h"
#include "daemon/api/query.h"
#include "daemon/api/router.h"

namespace tally::daemon {
namespace {

TEST(ApiUtil, QueryParam) {
  EXPECT_EQ(QueryParam("a=1&group_id=7", "group_id"), "7");
  EXPECT_EQ(QueryParam("wait=flush", "wait"), "flush");
  EXPECT_EQ(QueryParam("wait", "wait"), "");
  EXPECT_FALSE(QueryParam("waiter=1", "wait").has_value());
  EXPECT_FALSE(QueryParam("", "wait").has_value());
}

// One decoding rule for names and values alike (issue 13.12).
TEST(ApiUtil, QueryParamDecodesNamesAndValues) {
  EXPECT_EQ(QueryParam("status=manual_disabled", "status"), "manual_disabled");
  EXPECT_EQ(QueryParam("status=a%20b+c%2F", "status"), "a b c/");
  EXPECT_EQ(QueryParam("status=%61ctive", "status"), "active");
  EXPECT_EQ(QueryParam("group_id=%31", "group_id"), "1");
  EXPECT_EQ(QueryParam("%67roup_id=2", "group_id"), "2");
}

TEST(ApiUtil, CheckQuery) {
  EXPECT_TRUE(CheckQuery("").ok());
  EXPECT_TRUE(CheckQuery("a=1&b=2&&c").ok());
  EXPECT_TRUE(CheckQuery("unknown=1&other").ok());
  EXPECT_FALSE(CheckQuery("a=%2").ok());
  EXPECT_FALSE(CheckQuery("a=%zz").ok());
  EXPECT_FALSE(CheckQuery("%").ok());
  EXPECT_FALSE(CheckQuery("group_id=1&group_id=2").ok());
  EXPECT_FALSE(CheckQuery("group_id=1&%67roup_id=1").ok());  // the same name, decoded
  EXPECT_FALSE(CheckQuery("x&x").ok());
}

TEST(ApiUtil, ParseId) {
  EXPECT_EQ(ParseId("1"), 1u);
  EXPECT_EQ(ParseId("9223372036854775807"), 9223372036854775807u);
  EXPECT_FALSE(ParseId("9223372036854775808").has_value());
  EXPECT_FALSE(ParseId("0").has_value());
  EXPECT_FALSE(ParseId("-1").has_value());
  EXPECT_FALSE(ParseId("1x").has_value());
  EXPECT_FALSE(ParseId("").has_value());
  // Canonical decimal only (issue 13.12).
  EXPECT_FALSE(ParseId("01").has_value());
  EXPECT_FALSE(ParseId("005").has_value());
  EXPECT_FALSE(ParseId("00").has_value());
  EXPECT_FALSE(ParseId("+1").has_value());
  EXPECT_FALSE(ParseId(" 1").has_value());
  EXPECT_FALSE(ParseId("09223372036854775807").has_value());
  EXPECT_FALSE(ParseId("18446744073709551616").has_value());
}

TEST(ApiUtil, IdParam) {
  EXPECT_EQ(IdParam("group_id=0", "group_id", true).value(), std::optional<uint64_t>(0));
  EXPECT_EQ(IdParam("group_id=%31", "group_id", true).value(), std::optional<uint64_t>(1));
  EXPECT_EQ(IdParam("status=x", "group_id", true).value(), std::nullopt);
  EXPECT_FALSE(IdParam("group_id=0", "group_id", false).ok());
  EXPECT_FALSE(IdParam("group_id=00", "group_id", true).ok());
  EXPECT_FALSE(IdParam("group_id=01", "group_id", true).ok());
  EXPECT_FALSE(IdParam("group_id=", "group_id", true).ok());
  EXPECT_FALSE(IdParam("group_id", "group_id", true).ok());
  EXPECT_EQ(IdParam("group_id=01", "group_id", true).status().code(),
            core::Status::Code::kInvalidArgument);
}

TEST(ApiUtil, StatusMapping) {
  EXPECT_EQ(StatusFor(core::Status::InvalidArgument("x")), http::status::bad_request);
  EXPECT_EQ(StatusFor(core::Status::NotFound("x")), http::status::not_found);
  EXPECT_EQ(StatusFor(core::Status::Conflict("x")), http::status::conflict);
  EXPECT_EQ(StatusFor(core::Status::IoError("x")), http::status::service_unavailable);
  EXPECT_EQ(StatusFor(core::Status::Corruption("x")), http::status::internal_server_error);
  Response r = ErrorResponse(core::Status::NotFound("no provider group 4"));
  EXPECT_EQ(r.body(), R"({"error":"no provider group 4"})");
}

TEST(ApiUtil, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
}

}  // namespace
}  // namespace tally::daemon
