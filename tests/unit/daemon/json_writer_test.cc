#include "daemon/http/json_writer.h"

#include <gtest/gtest.h>

namespace tally::daemon {
namespace {

TEST(JsonWriter, WritesLikeGo) {
  JsonWriter w;
  w.BeginObject()
      .Key("a")
      .Double(0.8)
      .Key("b")
      .Double(1.0)
      .Key("c")
      .Double(7.0 / 9.0)
      .Key("d")
      .String("<x&y>\"")
      .Key("e")
      .Null()
      .Key("f")
      .BeginArray()
      .Int(-1)
      .Uint(2)
      .EndArray()
      .EndObject();
  EXPECT_EQ(w.str(),
            R"({"a":0.8,"b":1,"c":0.7777777777777778,"d":"\u003cx\u0026y\u003e\"","e":null,)"
            R"("f":[-1,2]})");
}

TEST(JsonWriter, TimesRoundTrip) {
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(1'500'000'000), "1970-01-01T00:00:01.5Z");
  auto t = ParseTime("2026-11-26T08:53:40.25+01:00");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatTime(*t), "2026-11-26T08:53:40.25+01:00");  // the offset kept, as in Go
  EXPECT_EQ(FormatTime(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_FALSE(ParseTime("yesterday").has_value());
}

TEST(JsonWriter, FloatsLikeGo) {
  auto render = [](double v) {
    JsonWriter w;
    w.Double(v);
    return w.Take();
  };
  EXPECT_EQ(render(0), "0");
  EXPECT_EQ(render(0.2), "0.2");
  EXPECT_EQ(render(1e-7), "1e-7");  // Go drops the exponent's leading zero
  EXPECT_EQ(render(1.5e-10), "1.5e-10");
  EXPECT_EQ(render(1e21), "1e+21");
  EXPECT_EQ(render(123456789.0), "123456789");
  EXPECT_EQ(render(0.000001), "0.000001");
}

TEST(JsonWriter, StringsLikeGo) {
  auto render = [](std::string_view v) {
    JsonWriter w;
    w.String(v);
    return w.Take();
  };
  EXPECT_EQ(render("a\bc\b\f\x01"), R"("a\bc\b\f\u0001")");
  EXPECT_EQ(render("caf\xc3\xa9"), "\"caf\xc3\xa9\"");                 // valid UTF-8 passes
  EXPECT_EQ(render("x\xff\xc3y"), R"("x\ufffd\ufffdy")");              // invalid bytes replaced
  EXPECT_EQ(render("\xe2\x80\xa8\xe2\x80\xa9"), R"("\u2028\u2029")");  // JS line separators
  EXPECT_EQ(render("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");        // a surrogate is invalid
}

}  // namespace
}  // namespace tally::daemon

namespace tally::daemon {
namespace {

// Regression (json_body_fuzz): a year past 2262 overflowed int64 nanoseconds. Times are no
// longer int64 nanoseconds (issue 23.12): such years are kept whole.
TEST(JsonWriter, TimesOutsideInt64NanosecondsAreKept) {
  auto far = ParseTime("7781-01-02T03:04:05Z");
  ASSERT_TRUE(far.has_value());
  EXPECT_EQ(FormatTime(*far), "7781-01-02T03:04:05Z");
  auto old = ParseTime("1000-01-01T00:00:00Z");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(FormatTime(*old), "1000-01-01T00:00:00Z");
  auto late = ParseTime("2262-04-10T00:00:00Z");
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(FormatTime(*late), "2262-04-10T00:00:00Z");
  auto early = ParseTime("1677-09-22T00:00:00Z");
  ASSERT_TRUE(early.has_value());
  EXPECT_EQ(FormatTime(*early), "1677-09-22T00:00:00Z");
}

}  // namespace
}  // namespace tally::daemon
