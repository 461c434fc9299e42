#include "daemon/json_writer.h"

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
  EXPECT_EQ(FormatTime(*t), "2026-11-26T07:53:40.25Z");
  EXPECT_FALSE(ParseTime("yesterday").has_value());
}

}  // namespace
}  // namespace tally::daemon
