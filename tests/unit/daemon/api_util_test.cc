// The API's small parsing helpers: query parameters, percent-decoding, ids, status mapping.
#include <gtest/gtest.h>

#include "daemon/api.h"

namespace tally::daemon {
namespace {

TEST(ApiUtil, QueryParam) {
  EXPECT_EQ(QueryParam("a=1&group_id=7", "group_id"), "7");
  EXPECT_EQ(QueryParam("wait=flush", "wait"), "flush");
  EXPECT_EQ(QueryParam("wait", "wait"), "");
  EXPECT_FALSE(QueryParam("waiter=1", "wait").has_value());
  EXPECT_FALSE(QueryParam("", "wait").has_value());
}

TEST(ApiUtil, PercentDecode) {
  EXPECT_EQ(PercentDecode("manual_disabled"), "manual_disabled");
  EXPECT_EQ(PercentDecode("a%20b+c%2F"), "a b c/");
  EXPECT_FALSE(PercentDecode("a%2").has_value());
  EXPECT_FALSE(PercentDecode("a%zz").has_value());
  EXPECT_FALSE(PercentDecode("%").has_value());
}

TEST(ApiUtil, ParseId) {
  EXPECT_EQ(ParseId("1"), 1u);
  EXPECT_EQ(ParseId("9223372036854775807"), 9223372036854775807u);
  EXPECT_FALSE(ParseId("9223372036854775808").has_value());
  EXPECT_FALSE(ParseId("0").has_value());
  EXPECT_FALSE(ParseId("-1").has_value());
  EXPECT_FALSE(ParseId("1x").has_value());
  EXPECT_FALSE(ParseId("").has_value());
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
