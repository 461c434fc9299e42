#include "core/line_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tally::core {
namespace {

LineResult Parse(std::string_view line, Increment* inc = nullptr) {
  Increment scratch;
  return ParseLine(line, "apikey", inc != nullptr ? inc : &scratch);
}

TEST(LineParser, AcceptsSuccessAndFailure) {
  Increment inc;
  ASSERT_EQ(Parse("apikey.42.success:3|c", &inc), LineResult::kAccepted);
  EXPECT_EQ(inc.key, 42u);
  EXPECT_EQ(inc.successes, 3u);
  EXPECT_EQ(inc.failures, 0u);
  ASSERT_EQ(Parse("apikey.42.failure:1|c", &inc), LineResult::kAccepted);
  EXPECT_EQ(inc.successes, 0u);
  EXPECT_EQ(inc.failures, 1u);
}

TEST(LineParser, SumsPackedValues) {
  Increment inc;
  ASSERT_EQ(Parse("apikey.1.success:1:2:3|c", &inc), LineResult::kAccepted);
  EXPECT_EQ(inc.successes, 6u);
}

TEST(LineParser, IgnoresOtherPrefixesAndTypes) {
  EXPECT_EQ(Parse("other.1.success:1|c"), LineResult::kIgnored);
  EXPECT_EQ(Parse("apikey.1.success:1|g"), LineResult::kIgnored);
  EXPECT_EQ(Parse("apikey.1.success:1.5|ms"), LineResult::kIgnored);
  EXPECT_EQ(Parse("apikeyx.1.success:1|c"), LineResult::kIgnored);
}

TEST(LineParser, RejectsMalformed) {
  EXPECT_EQ(Parse("not a line"), LineResult::kMalformed);
  EXPECT_EQ(Parse("apikey.1.success:1"), LineResult::kMalformed);
  EXPECT_EQ(Parse("apikey.0.success:1|c"), LineResult::kMalformed);
  EXPECT_EQ(Parse("apikey.1.maybe:1|c"), LineResult::kMalformed);
  EXPECT_EQ(Parse(":1|c"), LineResult::kMalformed);
}

TEST(LineParser, RefusesSampledCounts) {
  EXPECT_EQ(Parse("apikey.1.success:1|c|@0.5"), LineResult::kRefused);
  EXPECT_EQ(Parse("apikey.1.success:1|c|@1"), LineResult::kAccepted);
  EXPECT_EQ(Parse("apikey.1.success:1|c|@1.0"), LineResult::kAccepted);
}

TEST(LineParser, BufferCountsEveryLineAndSkipsEmptyOnes) {
  std::vector<Increment> got;
  LineCounts counts = ParseBuffer("apikey.1.success:1|c\n\nbad\r\nx.y:1|c\napikey.2.failure:2|c",
                                  "apikey", [&](const Increment& i) {
                                    got.push_back(i);
                                    return true;
                                  });
  EXPECT_EQ(counts, (LineCounts{2, 1, 1, 0}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].key, 2u);
  EXPECT_EQ(got[1].failures, 2u);
}

}  // namespace
}  // namespace tally::core
