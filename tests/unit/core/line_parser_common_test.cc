// ParseBuffer's one-pass path for the common line (detail::ParseCommonLine) against the
// general ParseLine: whatever the fast path accepts, ParseLine accepts with the same
// increment, on every boundary of the form and on every one-byte change of it; and the
// common lines really take the fast path.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/line_parser.h"

namespace tally::core {
namespace {

struct Fast {
  bool matched = false;
  Increment inc;
  size_t consumed = 0;
};

Fast TryFast(std::string_view buffer, std::string_view prefix = "apikey") {
  Fast f;
  const char* next = nullptr;
  f.matched =
      detail::ParseCommonLine(buffer.data(), buffer.data() + buffer.size(), prefix, &f.inc, &next);
  if (f.matched) {
    f.consumed = static_cast<size_t>(next - buffer.data());
  }
  return f;
}

// The fast path may decline anything, but what it accepts must be exactly what ParseLine
// makes of the same line (up to the '\n' it consumed).
void ExpectAgrees(std::string_view buffer, std::string_view prefix = "apikey") {
  Fast f = TryFast(buffer, prefix);
  if (!f.matched) {
    return;
  }
  ASSERT_LE(f.consumed, buffer.size());
  std::string_view line = buffer.substr(0, f.consumed);
  if (line.ends_with('\n')) {
    line.remove_suffix(1);
  } else {
    EXPECT_EQ(f.consumed, buffer.size()) << "stopped inside a line: " << buffer;
  }
  Increment general;
  ASSERT_EQ(ParseLine(line, prefix, &general), LineResult::kAccepted) << buffer;
  EXPECT_EQ(general.key, f.inc.key) << buffer;
  EXPECT_EQ(general.successes, f.inc.successes) << buffer;
  EXPECT_EQ(general.failures, f.inc.failures) << buffer;
}

TEST(ParseCommonLine, TakesTheCommonFormsInOnePass) {
  struct Case {
    std::string_view buffer;
    uint64_t key, successes, failures;
    size_t consumed;
  };
  const Case cases[] = {
      {"apikey.1.success:1|c", 1, 1, 0, 20},
      {"apikey.1.success:1|c\nrest", 1, 1, 0, 21},
      {"apikey.42.failure:7|c\r\n", 42, 0, 7, 23},
      {"apikey.42.failure:7|c\r", 42, 0, 7, 22},
      {"apikey.999999999999999999.success:999999999|c", 999'999'999'999'999'999, 999'999'999, 0,
       45},
  };
  for (const Case& c : cases) {
    Fast f = TryFast(c.buffer);
    ASSERT_TRUE(f.matched) << c.buffer;
    EXPECT_EQ(f.inc.key, c.key) << c.buffer;
    EXPECT_EQ(f.inc.successes, c.successes) << c.buffer;
    EXPECT_EQ(f.inc.failures, c.failures) << c.buffer;
    EXPECT_EQ(f.consumed, c.consumed) << c.buffer;
    ExpectAgrees(c.buffer);
  }
}

TEST(ParseCommonLine, LeavesEverythingElseToParseLine) {
  const std::string_view declined[] = {
      "apikey.1234567890123456789.success:1|c",  // 19 digits: ParseLine checks the range
      "apikey.1.success:1234567890|c",           // 10 digits: ParseLine checks the range
      "apikey.01.success:1|c",
      "apikey.1.success:01|c",
      "apikey.0.success:1|c",
      "apikey.1.success:0|c",
      "apikey.1.success:1|c|@1",
      "apikey.1.success:1:2|c",
      "apikey.1.success:1|ms",
      "apikey.1.success:1|c\r\r\n",
      "apikey.1.success:1|c\rx",
      "apikey.1.success:1|cx",
      "apikey.1.succes:1|c",
      "apikey.1.Success:1|c",
      "apikey.requests:1|c|#key:1,outcome:success",
      "apikeyx.1.success:1|c",
      "other.1.success:1|c",
      "apikey.1.success:|c",
      "apikey..success:1|c",
      "apikey.1.success:1|",
      "apikey.1.success:1",
      "apikey.1",
      "",
      "\n",
      " apikey.1.success:1|c",
  };
  for (std::string_view b : declined) {
    EXPECT_FALSE(TryFast(b).matched) << b;
  }
  EXPECT_FALSE(detail::PrefixIsNameSafe("api key"));
  EXPECT_FALSE(detail::PrefixIsNameSafe("a:b"));
  EXPECT_TRUE(detail::PrefixIsNameSafe("gw.apikey"));
}

// Every one-byte substitution, deletion and insertion at every position of two common
// lines: whenever the fast path still accepts, ParseLine agrees.
TEST(ParseCommonLine, AgreesWithParseLineOnEveryOneByteChange) {
  const std::string bases[] = {"apikey.123.success:45|c\n", "apikey.9.failure:1|c\r\n"};
  const std::string bytes = std::string("019.:|c\r\n sfa\0\x7f", 16);
  size_t accepted = 0;
  for (const std::string& base : bases) {
    for (size_t i = 0; i <= base.size(); ++i) {
      for (char b : bytes) {
        std::vector<std::string> variants;
        if (i < base.size()) {
          std::string sub = base;
          sub[i] = b;
          variants.push_back(sub);
          variants.push_back(base.substr(0, i) + base.substr(i + 1));
        }
        variants.push_back(base.substr(0, i) + b + base.substr(i));
        for (const std::string& v : variants) {
          ExpectAgrees(v);
          accepted += TryFast(v).matched ? 1 : 0;
        }
      }
    }
  }
  EXPECT_GT(accepted, 100u);  // the changes inside digits keep many lines common
}

// ParseBuffer gives the same counts and increments with the fast path as line by line.
TEST(ParseCommonLine, ParseBufferMatchesParseLineLineByLine) {
  const std::string buffer =
      "apikey.1.success:1|c\napikey.2.failure:3|c\r\nbad\n\napikey.3.success:1|c|@0.5\n"
      "apikey.4.success:2|c\rapikey.5.success:1|c\nother.1.success:1|c\napikey.6.failure:9|c";
  std::vector<Increment> fast;
  LineCounts got = ParseBuffer(buffer, "apikey", [&](const Increment& inc) {
    fast.push_back(inc);
    return true;
  });
  std::vector<Increment> slow;
  LineCounts want;
  size_t pos = 0;
  while (pos < buffer.size()) {
    size_t nl = buffer.find('\n', pos);
    size_t end = nl == std::string::npos ? buffer.size() : nl;
    Increment inc;
    LineResult r = ParseLine(std::string_view(buffer).substr(pos, end - pos), "apikey", &inc);
    if (r == LineResult::kAccepted) {
      slow.push_back(inc);
    }
    want.Count(r);
    pos = nl == std::string::npos ? buffer.size() : nl + 1;
  }
  EXPECT_EQ(got, want);
  ASSERT_EQ(fast.size(), slow.size());
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_EQ(fast[i].key, slow[i].key);
    EXPECT_EQ(fast[i].successes, slow[i].successes);
    EXPECT_EQ(fast[i].failures, slow[i].failures);
  }
}

}  // namespace
}  // namespace tally::core
