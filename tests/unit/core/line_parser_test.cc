// ParseLine, rule by rule (README "Protocol", core/line_parser.h). Buffer-level behaviour
// (line splitting, NUL, long lines, cuts) is in line_parser_buffer_test.cc.
#include "core/line_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace tally::core {
namespace {

LineResult Parse(std::string_view line, Increment* inc = nullptr,
                 std::string_view prefix = "apikey") {
  Increment scratch;
  return ParseLine(line, prefix, inc != nullptr ? inc : &scratch);
}

// Parses `line`, expecting it accepted, and returns its increment.
Increment Accepted(std::string_view line, std::string_view prefix = "apikey") {
  Increment inc;
  EXPECT_EQ(ParseLine(line, prefix, &inc), LineResult::kAccepted) << line;
  return inc;
}

std::string Success(std::string_view key, std::string_view value) {
  return "apikey." + std::string(key) + ".success:" + std::string(value) + "|c";
}

TEST(LineParser, AcceptsSuccessAndFailure) {
  Increment inc = Accepted("apikey.42.success:3|c");
  EXPECT_EQ(inc.key, 42u);
  EXPECT_EQ(inc.successes, 3u);
  EXPECT_EQ(inc.failures, 0u);
  inc = Accepted("apikey.42.failure:1|c");
  EXPECT_EQ(inc.key, 42u);
  EXPECT_EQ(inc.successes, 0u);
  EXPECT_EQ(inc.failures, 1u);
}

TEST(LineParser, KeyIdBoundaries) {
  EXPECT_EQ(Parse(Success("0", "1")), LineResult::kMalformed);
  EXPECT_EQ(Accepted(Success("1", "1")).key, 1u);
  EXPECT_EQ(Accepted(Success("4294967295", "1")).key, 4294967295u);
  EXPECT_EQ(Accepted(Success("4294967296", "1")).key, 4294967296u);
  EXPECT_EQ(Accepted(Success("9223372036854775807", "1")).key, kMaxId);           // 2^63-1
  EXPECT_EQ(Parse(Success("9223372036854775808", "1")), LineResult::kMalformed);  // 2^63
}

TEST(LineParser, KeyIdTwentyDigitsSignsSpacesAndLeadingZeros) {
  for (const char* key : {
           "18446744073709551615",   // 2^64-1, twenty digits
           "18446744073709551616",   // 2^64, wraps a 64-bit accumulator
           "99999999999999999999",   // largest twenty-digit number
           "00000000000000000001",   // twenty digits, value 1, leading zeros
           "100000000000000000000",  // twenty-one digits
           "01",
           "00",
           "+1",
           "-1",
           " 1",
           "1 ",
           "1 2",
           "0x1",
           "1e3",
           "1.0",
           "",
           "a",
       }) {
    EXPECT_EQ(Parse(Success(key, "1")), LineResult::kMalformed) << key;
  }
}

TEST(LineParser, ValueBoundaries) {
  EXPECT_EQ(Parse(Success("7", "0")), LineResult::kMalformed);
  EXPECT_EQ(Accepted(Success("7", "1")).successes, 1u);
  EXPECT_EQ(Accepted(Success("7", "4294967295")).successes, kMaxLineValue);  // 2^32-1
  EXPECT_EQ(Parse(Success("7", "4294967296")), LineResult::kMalformed);      // 2^32
  EXPECT_EQ(Parse(Success("7", "9223372036854775807")), LineResult::kMalformed);
  EXPECT_EQ(Parse(Success("7", "9223372036854775808")), LineResult::kMalformed);
}

TEST(LineParser, ValueTwentyDigitsSignsSpacesAndOtherNotations) {
  for (const char* value : {
           "18446744073709551615",
           "18446744073709551616",
           "99999999999999999999",
           "00000000000000000001",
           "01",
           "+1",
           "-1",
           " 1",
           "1 ",
           "1.0",
           "1e0",
           "0x1",
           "",
           "one",
       }) {
    EXPECT_EQ(Parse(Success("7", value)), LineResult::kMalformed) << value;
  }
}

TEST(LineParser, SumsPackedValues) {
  EXPECT_EQ(Accepted("apikey.1.success:1:2:3|c").successes, 6u);
  EXPECT_EQ(Accepted("apikey.1.failure:5:5|c").failures, 10u);
  // The sum may pass 2^32-1 even though each value may not.
  EXPECT_EQ(Accepted("apikey.1.success:4294967295:4294967295|c").successes, 8589934590u);
  for (const char* line :
       {"apikey.1.success:1::2|c", "apikey.1.success:1:|c", "apikey.1.success::1|c",
        "apikey.1.success:1:0|c", "apikey.1.success:1:4294967296|c", "apikey.1.success:1:-1|c"}) {
    EXPECT_EQ(Parse(line), LineResult::kMalformed) << line;
  }
}

TEST(LineParser, MissingTypeOrValueIsMalformed) {
  for (const char* line : {
           "apikey.1.success:1",     // missing |c
           "apikey.1.success:1|",    // empty type
           "apikey.1.success:1|c|",  // empty field after the type
           "apikey.1.success:1||c",
           "apikey.1.success|c",
           "apikey.1.success:|c",
           "apikey.1.success",
           "apikey.1.success:1|c2",
           "apikey.1.success:1|c ",
       }) {
    EXPECT_EQ(Parse(line), LineResult::kMalformed) << line;
  }
}

TEST(LineParser, EmptyOrBrokenNameIsMalformed) {
  for (const char* line : {
           ":1|c",
           "apikey.:1|c",
           "apikey..success:1|c",
           "apikey.1.:1|c",
           "apikey.1:1|c",
           "apikey.success:1|c",
           "apikey.1.success.extra:1|c",
           "apikey.1.Success:1|c",
           "apikey.1.successes:1|c",
           "apikey.1.fail:1|c",
           "apikey.1 .success:1|c",
           "apikey .1.success:1|c",
           " apikey.1.success:1|c",
           "apikey.x.success:1|c",
       }) {
    EXPECT_EQ(Parse(line), LineResult::kMalformed) << line;
  }
}

TEST(LineParser, IgnoresOtherNames) {
  for (const char* line : {
           "other.1.success:1|c", "apikeyx.1.success:1|c", "xapikey.1.success:1|c",
           "apikey:1|c",                // the bare prefix is another metric's name
           "APIKEY.1.success:1|c",      // names are case-sensitive
           "other:not-a-number|c",      // someone else's value is their business
           "caf\xc3\xa9.hits:1|c",      // UTF-8 name
           "_e{5,4}:title|text|#a:b",   // DogStatsD event
           "_sc|db.check|0|#env:prod",  // DogStatsD service check
       }) {
    EXPECT_EQ(Parse(line), LineResult::kIgnored) << line;
  }
}

TEST(LineParser, IgnoresOtherTypes) {
  for (const char* line : {
           "apikey.1.success:1|g",
           "apikey.1.success:1.5|ms",
           "apikey.1.success:3|h",
           "apikey.1.success:abc|s",
           "apikey.1.success:7|d",
           "apikey.1.success:1|kv",
           "apikey.1.success:1|C",
           "apikey.0.success:0|g",
           "apikey.1.success:1|g|@0.5",
       }) {
    EXPECT_EQ(Parse(line), LineResult::kIgnored) << line;
  }
}

TEST(LineParser, PrefixIsConfigurable) {
  Increment inc = Accepted("gw.5.failure:2|c", "gw");
  EXPECT_EQ(inc.key, 5u);
  EXPECT_EQ(inc.failures, 2u);
  EXPECT_EQ(Accepted("gw.apikey.5.success:1|c", "gw.apikey").key, 5u);
  EXPECT_EQ(Parse("apikey.5.success:1|c", nullptr, "gw"), LineResult::kIgnored);
  EXPECT_EQ(Parse("gw.apikey.5.success:1|c", nullptr, "gw"), LineResult::kMalformed);
  EXPECT_EQ(Accepted("gw.requests:3|c|#key:9,outcome:success", "gw").successes, 3u);
}

TEST(LineParser, SampleRateOfExactlyOneIsAccepted) {
  for (const char* rate :
       {"1", "1.0", "1.", "1.000000", "01", "10e-1", "0.1e1", "100E-2", "1e0", "1e+0"}) {
    Increment inc = Accepted(std::string("apikey.3.success:4|c|@") + rate);
    EXPECT_EQ(inc.successes, 4u) << rate;  // never scaled
  }
}

TEST(LineParser, SampleRateBelowOneIsRefused) {
  for (const char* rate : {"0.5", ".5", "0.1", "0.999999999999999999999999", "1e-05", "9.99e-1",
                           "0.0000001", "5E-1"}) {
    EXPECT_EQ(Parse(std::string("apikey.3.success:4|c|@") + rate), LineResult::kRefused) << rate;
  }
  EXPECT_EQ(Parse("apikey.requests:1|c|@0.5|#key:3,outcome:failure"), LineResult::kRefused);
  // A line that is malformed for another reason stays malformed.
  EXPECT_EQ(Parse("apikey.0.success:4|c|@0.5"), LineResult::kMalformed);
}

TEST(LineParser, SampleRateOfZeroAboveOneOrGarbageIsMalformed) {
  for (const char* rate : {"0",   "0.0", ".0",   "2",     "1.5", "1.0000000000000000000001",
                           "10",  "-1",  "-0.5", "+1",    "",    ".",
                           "1e",  "e1",  "abc",  "1.0.0", " 1",  "inf",
                           "nan", "1,0"}) {
    EXPECT_EQ(Parse(std::string("apikey.3.success:4|c|@") + rate), LineResult::kMalformed) << rate;
  }
  EXPECT_EQ(Parse("apikey.3.success:4|c|@1|@1"), LineResult::kMalformed);  // twice
}

// Concatenates; `Z(n)` is n zeros. (Building rates with `"1." + std::string(...)` trips
// GCC 12's -Wrestrict false positive.)
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (std::string_view p : parts) {
    s.append(p);
  }
  return s;
}
std::string Z(size_t n) { return std::string(n, '0'); }

// The rate is classified exactly within kMaxRateChars characters, and any longer spelling is
// malformed, whatever its value: no approximation (an exponent cap, a double) decides.
TEST(LineParser, SampleRateIsExactWithinItsLengthBound) {
  auto rate_line = [](const std::string& rate) { return Cat({"apikey.3.success:4|c|@", rate}); };
  // Exactly 1 in exactly kMaxRateChars characters, in several spellings: accepted.
  const std::string longest_one[] = {
      Cat({"1.", Z(kMaxRateChars - 2)}),
      Cat({Z(kMaxRateChars - 1), "1"}),
      Cat({"00.", Z(kMaxRateChars - 7), "1e26"}),
      Cat({"1", Z(kMaxRateChars - 5), "e-27"}),
  };
  for (const std::string& rate : longest_one) {
    ASSERT_EQ(rate.size(), kMaxRateChars);
    EXPECT_EQ(Accepted(rate_line(rate)).successes, 4u) << rate;
  }
  // Just below and just above 1 at full length: refused and malformed, not rounded to 1.
  const std::string below = Cat({"0.", std::string(kMaxRateChars - 2, '9')});
  const std::string above = Cat({"1.", Z(kMaxRateChars - 3), "1"});
  EXPECT_EQ(Parse(rate_line(below)), LineResult::kRefused) << below;
  EXPECT_EQ(Parse(rate_line(above)), LineResult::kMalformed) << above;
  // Exponents far past the mantissa's magnitude decide alone, both ways.
  EXPECT_EQ(Parse(rate_line("1e-999999999999999999999999999")), LineResult::kRefused);
  EXPECT_EQ(Parse(rate_line("0.1e999999999999999999999999999")), LineResult::kMalformed);
  EXPECT_EQ(Parse(rate_line(Cat({"1", Z(20), "e-20"}))), LineResult::kAccepted);
  // One character too many: malformed whatever the value, exactly 1 or below it.
  for (const std::string& rate : {Cat({"1.", Z(kMaxRateChars - 1)}), Cat({Z(kMaxRateChars), "1"}),
                                  Cat({"0.", std::string(kMaxRateChars - 1, '5')})}) {
    ASSERT_EQ(rate.size(), kMaxRateChars + 1);
    EXPECT_EQ(Parse(rate_line(rate)), LineResult::kMalformed) << rate;
  }
  // Issue 23.11: 10^-1000000 spelled as 1, a million zeros and e-2000000 is not a rate of 1,
  // and a long exact spelling of 1 is not a rate below 1.
  EXPECT_EQ(Parse(rate_line(Cat({"1", Z(1'000'000), "e-2000000"}))), LineResult::kMalformed);
  EXPECT_EQ(Parse(rate_line(Cat({"0.", Z(1'000'000), "1e1000001"}))), LineResult::kMalformed);
}

TEST(LineParser, TagForm) {
  Increment inc = Accepted("apikey.requests:2|c|#key:77,outcome:failure");
  EXPECT_EQ(inc.key, 77u);
  EXPECT_EQ(inc.failures, 2u);
  EXPECT_EQ(inc.successes, 0u);
  inc = Accepted("apikey.requests:1:2|c|#env:prod,outcome:success,region:eu,key:5,solo");
  EXPECT_EQ(inc.key, 5u);
  EXPECT_EQ(inc.successes, 3u);
  EXPECT_EQ(Accepted("apikey.requests:1|c|#key:9223372036854775807,outcome:success").key, kMaxId);
  for (const char* line : {
           "apikey.requests:1|c",                                           // no tags
           "apikey.requests:1|c|#",                                         // empty tags
           "apikey.requests:1|c|#key:5",                                    // no outcome
           "apikey.requests:1|c|#outcome:success",                          // no key
           "apikey.requests:1|c|#key:0,outcome:success",                    // key 0
           "apikey.requests:1|c|#key:9223372036854775808,outcome:success",  // 2^63
           "apikey.requests:1|c|#key:05,outcome:success",
           "apikey.requests:1|c|#key:5,outcome:maybe",
           "apikey.requests:1|c|#key:5,key:5,outcome:success",  // key twice
           "apikey.requests:1|c|#key:5,outcome:success,outcome:success",
           "apikey.requests:1|c|#key:5,outcome:success|#a:b",  // tags twice
           "apikey.requests:0|c|#key:5,outcome:success",
       }) {
    EXPECT_EQ(Parse(line), LineResult::kMalformed) << line;
  }
  EXPECT_EQ(Parse("apikey.requests:1|g|#key:5,outcome:success"), LineResult::kIgnored);
}

TEST(LineParser, TagsOnTheNameFormAreIgnored) {
  Increment inc = Accepted("apikey.8.success:1|c|#key:9,outcome:failure,env:prod");
  EXPECT_EQ(inc.key, 8u);
  EXPECT_EQ(inc.successes, 1u);
  EXPECT_EQ(inc.failures, 0u);
}

TEST(LineParser, ContainerAndTimestampFieldsAreIgnored) {
  for (const char* line : {
           "apikey.4.success:1|c|c:83c0a4f5d2b1",
           "apikey.4.success:1|c|T1700000000",
           "apikey.4.success:1|c|c:",
           "apikey.4.success:1|c|#env:prod|c:abc|T1700000000|@1.0",
           "apikey.4.success:1|c|T1700000000|@1|c:abc|#a",
       }) {
    EXPECT_EQ(Accepted(line).successes, 1u) << line;
  }
  for (const char* line : {
           "apikey.4.success:1|c|c",  // container without ':'
           "apikey.4.success:1|c|T",  // timestamp without digits
           "apikey.4.success:1|c|Tabc",
           "apikey.4.success:1|c|T-1",
           "apikey.4.success:1|c|c:a|c:b",
           "apikey.4.success:1|c|T1|T2",
           "apikey.4.success:1|c|x",
           "apikey.4.success:1|c|@1||#a",
       }) {
    EXPECT_EQ(Parse(line), LineResult::kMalformed) << line;
  }
}

TEST(LineParser, TrailingCarriageReturnAndEmptyLines) {
  EXPECT_EQ(Accepted("apikey.1.success:1|c\r").successes, 1u);
  EXPECT_EQ(Accepted("apikey.requests:1|c|#key:2,outcome:success\r").key, 2u);
  EXPECT_EQ(Parse(""), LineResult::kEmpty);
  EXPECT_EQ(Parse("\r"), LineResult::kEmpty);
  EXPECT_EQ(Parse("other:1|g\r"), LineResult::kIgnored);
  EXPECT_EQ(Parse("apikey.1.success:1|c\r\r"), LineResult::kMalformed);
  EXPECT_EQ(Parse("apikey.1.success:1\r|c"), LineResult::kMalformed);
  EXPECT_EQ(Parse("\r\r"), LineResult::kMalformed);
  EXPECT_EQ(Parse(" "), LineResult::kMalformed);
}

TEST(LineParser, ControlBytesAnywhereAreMalformed) {
  const std::string good = "apikey.requests:12|c|#key:5,outcome:success,env:prod";
  ASSERT_EQ(Parse(good), LineResult::kAccepted);
  for (char control : {'\0', '\t', '\x01', '\x1f', '\x7f', '\v'}) {
    for (size_t at = 0; at <= good.size(); ++at) {
      std::string line = good;
      line.insert(at, 1, control);
      EXPECT_EQ(Parse(line), LineResult::kMalformed)
          << "byte " << static_cast<int>(control) << " at " << at;
    }
  }
  // Also in lines that would otherwise be ignored.
  EXPECT_EQ(Parse(std::string("other.metric:1|g\0", 17)), LineResult::kMalformed);
  EXPECT_EQ(Parse(std::string("other\0:1|g", 10)), LineResult::kMalformed);
  EXPECT_EQ(Parse("_sc|x\t|0"), LineResult::kMalformed);
}

TEST(LineParser, AcceptedLineFillsOnlyWhenAccepted) {
  Increment inc{99, 98, 97};
  EXPECT_EQ(Parse("apikey.1.success:1|c|@0.5", &inc), LineResult::kRefused);
  EXPECT_EQ(Parse("garbage", &inc), LineResult::kMalformed);
  EXPECT_EQ(Parse("other:1|c", &inc), LineResult::kIgnored);
  EXPECT_EQ(inc.key, 99u);
  EXPECT_EQ(inc.successes, 98u);
  EXPECT_EQ(inc.failures, 97u);
}

}  // namespace
}  // namespace tally::core
