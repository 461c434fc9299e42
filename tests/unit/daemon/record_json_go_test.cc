// Issue 23.12: record JSON reads strings and times as Go's encoding/json and
// time.Parse(time.RFC3339Nano) do. The cases are Go's own: encoding/json's decode_test.go
// ("invalid UTF-8 is coerced to valid UTF-8") and time's parse error cases.
#include <gtest/gtest.h>

#include <limits>

#include "daemon/api/record_json.h"
#include "daemon/http/json_writer.h"

namespace tally::daemon {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// The api_key a key body with `json_string` (a JSON string literal, quotes included) gives.
std::string ApiKeyOf(const std::string& json_string) {
  auto k = ParseKey("{\"api_key\":" + json_string + "}");
  EXPECT_TRUE(k.ok()) << json_string << ": " << k.status().message();
  return k.ok() ? k->api_key : "<error>";
}

TEST(RecordJsonGo, InvalidUtf8AndLoneSurrogatesBecomeReplacementCharacters) {
  EXPECT_EQ(ApiKeyOf("\"hello\xffworld\""), "hello" + kFffd + "world");
  EXPECT_EQ(ApiKeyOf("\"hello\xc2\xc2world\""), "hello" + kFffd + kFffd + "world");
  EXPECT_EQ(ApiKeyOf("\"hello\xc2\xffworld\""), "hello" + kFffd + kFffd + "world");
  EXPECT_EQ(ApiKeyOf("\"hello\\ud800world\""), "hello" + kFffd + "world");
  EXPECT_EQ(ApiKeyOf("\"hello\\ud800\\ud800world\""), "hello" + kFffd + kFffd + "world");
  EXPECT_EQ(ApiKeyOf("\"hello\xed\xa0\x80\xed\xb0\x80world\""),
            "hello" + kFffd + kFffd + kFffd + kFffd + kFffd + kFffd + "world");
  EXPECT_EQ(ApiKeyOf(R"("invalid: \uD834x\uDD1E")"), "invalid: " + kFffd + "x" + kFffd);
  // Valid text is untouched: a surrogate pair, a BMP escape, raw UTF-8, escaped quotes.
  EXPECT_EQ(ApiKeyOf(R"("g-clef: \uD834\uDD1E")"), "g-clef: \xF0\x9D\x84\x9E");
  EXPECT_EQ(ApiKeyOf(R"("a\u1234")"), "a\xE1\x88\xB4");
  EXPECT_EQ(ApiKeyOf("\"caf\xC3\xA9 \\\"\\\\ \\ud800\""), "caf\xC3\xA9 \"\\ " + kFffd);
  // A lone surrogate in a field name too: it then matches no field, and is ignored.
  EXPECT_TRUE(ParseKey("{\"api_key\":\"k\",\"\\udc00\":1}").ok());
  // Outside strings, bad bytes stay a syntax error, as in Go; so do bad escapes.
  EXPECT_FALSE(ParseKey("{\"api_key\":\"k\"}\xff").ok());
  EXPECT_FALSE(ParseKey("{\"api_key\":\"k\\ud8\"}").ok());
  EXPECT_FALSE(ParseKey("{\"api_key\":\"k\\x\"}").ok());
  // The internal flush body is read the same way.
  EXPECT_TRUE(ParseFlushBody("{\"keys\":[],\"note\":\"\xff\\udfff\"}").ok());
}

TEST(RecordJsonGo, TimesFollowGoRfc3339) {
  // Accepted by Go.
  EXPECT_EQ(ParseTime("2006-01-02T15:04:05Z"), 1136214245'000000000);
  EXPECT_EQ(ParseTime("2006-01-02T15:04:05.999999999Z"), 1136214245'999999999);
  EXPECT_EQ(ParseTime("2006-01-02T15:04:05.1234567891Z"), 1136214245'123456789);  // truncated
  EXPECT_EQ(ParseTime("2006-01-02T15:04:05+07:00"), 1136189045'000000000);
  EXPECT_EQ(ParseTime("2006-01-02T15:04:05-23:59"), 1136300585'000000000);
  EXPECT_TRUE(ParseTime("2000-02-29T00:00:00Z").has_value());  // a leap year
  // Refused by Go: a leap second ("second out of range"), a day the month lacks, hour 24,
  // lower-case 't' or 'z', an offset hour of 24, a '.' without digits, no zone, a comma.
  for (const char* bad :
       {"2006-01-02T23:59:60Z", "2016-12-31T23:59:60Z", "2006-02-29T00:00:00Z",
        "2006-04-31T00:00:00Z", "2006-01-02T24:00:00Z", "2006-01-02T15:60:00Z",
        "2006-01-02t15:04:05Z", "2006-01-02T15:04:05z", "2006-01-02T15:04:05+24:00",
        "2006-01-02T15:04:05+07:60", "2006-01-02T15:04:05.Z", "2006-01-02T15:04:05",
        "2006-01-02T15:04:05,5Z", "2006-01-02T15:04:05+0700", "2006-01-02 15:04:05Z"}) {
    EXPECT_FALSE(ParseTime(bad).has_value()) << bad;
  }
  // The edges of int64 nanoseconds, which is what tallyd stores.
  EXPECT_EQ(ParseTime(kMinTime), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(ParseTime(kMaxTime), std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(ParseTime("1677-09-21T00:12:43.145224191Z").has_value());
  EXPECT_FALSE(ParseTime("2262-04-11T23:47:16.854775808Z").has_value());
}

TEST(RecordJsonGo, GoTimesOutsideTheStoredRangeAreRefusedWithTheRange) {
  // Go accepts years 0000-9999 (its zero time is 0001-01-01T00:00:00Z); tallyd stores int64
  // nanoseconds, so it refuses these with a message naming the range, never wraps them.
  for (const char* t : {"0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    auto k = ParseKey(std::string(R"({"api_key":"k","expires_at":")") + t + "\"}");
    ASSERT_FALSE(k.ok()) << t;
    EXPECT_NE(k.status().message().find(kMinTime), std::string::npos) << k.status().message();
  }
  auto k = ParseKey(R"({"api_key":"k","ban_until":"2262-04-11T23:47:16.854775807Z"})");
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(k->ban_until, std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace tally::daemon
