// Issue 23.12: record JSON reads strings and times as Go's encoding/json and
// time.Parse(time.RFC3339Nano) do. The cases are Go's own: encoding/json's decode_test.go
// ("invalid UTF-8 is coerced to valid UTF-8") and time's parse error cases.
#include <gtest/gtest.h>

#include <optional>
#include <utility>

#include "daemon/api/record_json.h"
#include "daemon/http/json_writer.h"
#include "persistence/record_codec.h"

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
  auto instant = [](std::string_view text) -> std::optional<std::pair<int64_t, uint32_t>> {
    std::optional<core::OffsetTime> t = ParseTime(text);
    if (!t) {
      return std::nullopt;
    }
    return std::pair{t->unix_seconds, t->nanos};
  };
  // Accepted by Go.
  EXPECT_EQ(instant("2006-01-02T15:04:05Z"), std::pair(int64_t{1136214245}, 0u));
  EXPECT_EQ(instant("2006-01-02T15:04:05.999999999Z"), std::pair(int64_t{1136214245}, 999999999u));
  EXPECT_EQ(instant("2006-01-02T15:04:05.1234567891Z"),
            std::pair(int64_t{1136214245}, 123456789u));  // truncated
  EXPECT_EQ(instant("2006-01-02T15:04:05+07:00"), std::pair(int64_t{1136189045}, 0u));
  EXPECT_EQ(instant("2006-01-02T15:04:05-23:59"), std::pair(int64_t{1136300585}, 0u));
  EXPECT_TRUE(ParseTime("2000-02-29T00:00:00Z").has_value());  // a leap year
  // Refused by Go: a leap second ("second out of range"), a day the month lacks, hour 24,
  // lower-case 't' or 'z', an offset hour of 24, a '.' without digits, no zone, a comma.
  for (const char* bad :
       {"2006-01-02T23:59:60Z", "2016-12-31T23:59:60Z", "2006-02-29T00:00:00Z",
        "2006-04-31T00:00:00Z", "2006-01-02T24:00:00Z", "2006-01-02T15:60:00Z",
        "2006-01-02t15:04:05Z", "2006-01-02T15:04:05z", "2006-01-02T15:04:05+24:00",
        "2006-01-02T15:04:05+07:60", "2006-01-02T15:04:05.Z", "2006-01-02T15:04:05",
        "2006-01-02T15:04:05,5Z", "2006-01-02T15:04:05+0700", "2006-01-02 15:04:05Z",
        "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z"}) {
    EXPECT_FALSE(ParseTime(bad).has_value()) << bad;
  }
  // Go's zero time and the ends of its range.
  EXPECT_EQ(instant("0001-01-01T00:00:00Z"), std::pair(int64_t{-62135596800}, 0u));
  EXPECT_EQ(instant("0000-01-01T00:00:00Z"), std::pair(int64_t{-62167219200}, 0u));
  EXPECT_EQ(instant("9999-12-31T23:59:59.999999999Z"),
            std::pair(int64_t{253402300799}, 999999999u));
  EXPECT_EQ(instant("0000-01-01T00:00:00+14:00"), std::pair(int64_t{-62167219200 - 14 * 3600}, 0u));
  EXPECT_EQ(instant("9999-12-31T23:59:59-12:00"), std::pair(int64_t{253402300799 + 12 * 3600}, 0u));
}

// The key a PUT body with these times gives, rendered as a GET answers it, and stored and
// read back on the way (the record codec) as the store does between the two.
std::string PutThenGet(const std::string& expires_at, const std::string& ban_until) {
  auto put = ParseKey(R"({"api_key":"k","expires_at":")" + expires_at + R"(","ban_until":")" +
                      ban_until + R"("})");
  EXPECT_TRUE(put.ok()) << expires_at << " " << ban_until << ": " << put.status().message();
  if (!put.ok()) {
    return "<refused>";
  }
  persistence::ApiKey stored;
  EXPECT_TRUE(persistence::DecodeKey(persistence::EncodeKey(*put), &stored).ok());
  return RenderKey(stored);
}

// Issue 23.12: every time Go's time.Parse(time.RFC3339Nano) accepts round-trips through
// PUT and GET byte for byte as Go's MarshalJSON renders it: years 0000-9999, nanoseconds,
// the offset kept (Go keeps it; "+00:00" and "-00:00" render "Z", as in Go).
TEST(RecordJsonGo, GoTimesRoundTripByteForByte) {
  const std::pair<std::string, std::string> cases[] = {
      {"0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"},
      {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},  // Go's zero time
      {"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"},
      {"0000-01-01T00:00:00+14:00", "0000-01-01T00:00:00+14:00"},  // instant in year -1
      {"0000-01-01T00:00:00-12:00", "0000-01-01T00:00:00-12:00"},
      {"9999-12-31T23:59:59.999999999-12:00", "9999-12-31T23:59:59.999999999-12:00"},
      {"9999-12-31T23:59:59+14:00", "9999-12-31T23:59:59+14:00"},
      {"9999-12-31T23:59:59.999999999-23:59", "9999-12-31T23:59:59.999999999-23:59"},
      {"0000-01-01T00:00:00.000000001+23:59", "0000-01-01T00:00:00.000000001+23:59"},
      {"1677-09-21T00:12:43.145224191Z", "1677-09-21T00:12:43.145224191Z"},
      {"2262-04-11T23:47:16.854775808Z", "2262-04-11T23:47:16.854775808Z"},
      {"1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999999Z"},
      {"2006-01-02T15:04:05.120000000+05:30", "2006-01-02T15:04:05.12+05:30"},
      {"2006-01-02T15:04:05.1234567891Z", "2006-01-02T15:04:05.123456789Z"},
      {"2006-01-02T15:04:05+00:00", "2006-01-02T15:04:05Z"},
      {"2006-01-02T15:04:05-00:00", "2006-01-02T15:04:05Z"},
  };
  for (const auto& [sent, rendered] : cases) {
    const std::string json = PutThenGet(sent, sent);
    EXPECT_NE(json.find(R"("expires_at":")" + rendered + R"(")"), std::string::npos)
        << sent << " -> " << json;
    EXPECT_NE(json.find(R"("ban_until":")" + rendered + R"(")"), std::string::npos)
        << sent << " -> " << json;
  }
}

}  // namespace
}  // namespace tally::daemon
