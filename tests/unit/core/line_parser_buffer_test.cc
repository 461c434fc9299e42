// ParseBuffer and IngestBuffer: line splitting, counts per result, one bad line never costing
// the others, long lines, embedded NUL, buffers cut anywhere.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/counter_table.h"
#include "core/ingest.h"
#include "core/line_parser.h"

namespace tally::core {
namespace {

struct Parsed {
  LineCounts counts;
  std::vector<Increment> incs;
};

// Parses a heap copy sized exactly to `buffer`, so a read past its end is a heap overflow
// that AddressSanitizer reports.
Parsed ParseAll(std::string_view buffer, std::string_view prefix = "apikey") {
  std::unique_ptr<char[]> copy(new char[buffer.size() + (buffer.empty() ? 1 : 0)]);
  std::copy(buffer.begin(), buffer.end(), copy.get());
  Parsed p;
  p.counts =
      ParseBuffer(std::string_view(copy.get(), buffer.size()), prefix, [&](const Increment& inc) {
        p.incs.push_back(inc);
        return true;
      });
  return p;
}

LineCounts Counts(uint64_t accepted, uint64_t ignored, uint64_t malformed, uint64_t refused) {
  LineCounts c;
  c.accepted = accepted;
  c.ignored = ignored;
  c.malformed = malformed;
  c.refused = refused;
  return c;
}

TEST(ParseBuffer, CountsEveryLineAndSkipsEmptyOnes) {
  Parsed p = ParseAll(
      "apikey.1.success:1|c\n\nbad\r\nx.y:1|c\napikey.2.failure:2|c\n"
      "apikey.3.success:1|c|@0.5\n\r\n\n");
  EXPECT_EQ(p.counts, Counts(2, 1, 1, 1));
  ASSERT_EQ(p.incs.size(), 2u);
  EXPECT_EQ(p.incs[0].key, 1u);
  EXPECT_EQ(p.incs[0].successes, 1u);
  EXPECT_EQ(p.incs[1].key, 2u);
  EXPECT_EQ(p.incs[1].failures, 2u);
}

TEST(ParseBuffer, EmptyBuffersAndBlankLinesCountNothing) {
  for (const char* buffer : {"", "\n", "\n\n\n", "\r\n", "\r\n\r\n\n", "\r"}) {
    Parsed p = ParseAll(buffer);
    EXPECT_EQ(p.counts, LineCounts{}) << buffer;
    EXPECT_TRUE(p.incs.empty());
  }
}

TEST(ParseBuffer, FinalLineWithoutNewlineCounts) {
  EXPECT_EQ(ParseAll("apikey.1.success:1|c").counts, Counts(1, 0, 0, 0));
  EXPECT_EQ(ParseAll("apikey.1.success:1|c\n").counts, Counts(1, 0, 0, 0));
  EXPECT_EQ(ParseAll("apikey.1.success:1|c\r\n").counts, Counts(1, 0, 0, 0));
  EXPECT_EQ(ParseAll("apikey.1.success:1|c\r").counts, Counts(1, 0, 0, 0));
  Parsed p = ParseAll("apikey.1.success:1|c\napikey.2.failure:4|c");
  EXPECT_EQ(p.counts, Counts(2, 0, 0, 0));
  ASSERT_EQ(p.incs.size(), 2u);
  EXPECT_EQ(p.incs[1].failures, 4u);
}

TEST(ParseBuffer, OneBadLineNeverCostsTheOthers) {
  const std::string good = "apikey.1.success:1|c\n";
  for (std::string bad : {std::string("apikey.1.success:1"), std::string("\0\0\0", 3),
                          std::string("apikey.0.success:1|c"), std::string(":|"),
                          std::string("apikey.1.success:99999999999999999999|c"),
                          std::string("|||"), std::string("apikey.requests:1|c|#key:1")}) {
    Parsed p = ParseAll(good + bad + "\n" + good + bad);
    EXPECT_EQ(p.counts, Counts(2, 0, 2, 0)) << bad;
    EXPECT_EQ(p.incs.size(), 2u);
  }
}

TEST(ParseBuffer, EmbeddedNulSplitsNothingAndCostsOnlyItsLine) {
  std::string buffer("apikey.1.success:1|c\napikey.2.suc\0cess:1|c\napikey.3.failure:1|c", 63);
  ASSERT_EQ(buffer.size(), 63u);
  Parsed p = ParseAll(buffer);
  EXPECT_EQ(p.counts, Counts(2, 0, 1, 0));
  ASSERT_EQ(p.incs.size(), 2u);
  EXPECT_EQ(p.incs[0].key, 1u);
  EXPECT_EQ(p.incs[1].key, 3u);
  // A NUL right after a valid line's type, and a line of one NUL.
  p = ParseAll(std::string("apikey.1.success:1|c\0\n\0\napikey.5.success:1|c", 44));
  EXPECT_EQ(p.counts, Counts(1, 0, 2, 0));
}

TEST(ParseBuffer, SixtyFourKibibyteLines) {
  // Packed: 32768 values of 1 make a 64 KiB line; it is one line, accepted, summed exactly.
  std::string packed = "apikey.9.failure:1";
  while (packed.size() < 65536 - 2) {
    packed += ":1";
  }
  packed += "|c";
  ASSERT_GE(packed.size(), 65536u);
  uint64_t values = (packed.size() - std::string("apikey.9.failure|c").size()) / 2;
  Parsed p = ParseAll("apikey.1.success:1|c\n" + packed + "\napikey.2.success:1|c");
  EXPECT_EQ(p.counts, Counts(3, 0, 0, 0));
  ASSERT_EQ(p.incs.size(), 3u);
  EXPECT_EQ(p.incs[1].key, 9u);
  EXPECT_EQ(p.incs[1].failures, values);

  // A 64 KiB name of someone else's metric is ignored; 64 KiB of garbage is malformed; a
  // 64 KiB tag list still yields its key; the neighbours are unaffected each time.
  std::string long_name = std::string(65536, 'n') + ":1|c";
  std::string garbage(65536, 'x');
  std::string long_tags =
      "apikey.requests:1|c|#" + std::string(65536, 't') + ",key:3,outcome:success";
  p = ParseAll("apikey.1.success:1|c\n" + long_name + "\n" + garbage + "\n" + long_tags +
               "\napikey.2.success:1|c\n");
  EXPECT_EQ(p.counts, Counts(3, 1, 1, 0));
  ASSERT_EQ(p.incs.size(), 3u);
  EXPECT_EQ(p.incs[1].key, 3u);
}

TEST(ParseBuffer, BufferCutAnywhere) {
  // Every cut of a three-line buffer: complete lines keep their result, and the cut line,
  // being a strict prefix of "apikey.2.failure:25|c", is malformed (no "|c" yet).
  const std::string first = "apikey.1.success:3|c\n";
  const std::string second = "x.gauge:1.5|g\n";
  const std::string third = "apikey.2.failure:25|c";
  const std::string whole = first + second + third;
  for (size_t cut = 0; cut <= whole.size(); ++cut) {
    Parsed p = ParseAll(std::string_view(whole).substr(0, cut));
    LineCounts want;
    if (cut >= first.size() - 1) {
      ++want.accepted;  // the first line, '\n' or not
    } else if (cut > 0) {
      ++want.malformed;
    }
    if (cut >= first.size() + second.size() - 1) {
      ++want.ignored;
    } else if (cut > first.size()) {
      // A prefix of "x.gauge:1.5|g": malformed until its type letter arrives.
      ++want.malformed;
    }
    if (cut == whole.size()) {
      ++want.accepted;
    } else if (cut > first.size() + second.size()) {
      ++want.malformed;
    }
    EXPECT_EQ(p.counts, want) << "cut at " << cut;
  }
}

TEST(ParseBuffer, SinkRefusalCountsAsRefused) {
  int calls = 0;
  LineCounts c = ParseBuffer("apikey.1.success:1|c\napikey.2.success:1|c\napikey.3.success:1|c",
                             "apikey", [&](const Increment& inc) {
                               ++calls;
                               return inc.key != 2;
                             });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(c, Counts(2, 0, 0, 1));
}

TEST(IngestBuffer, AddsAcceptedLinesToTheTableAndRefusesPastItsBound) {
  CounterTable table(2);
  LineCounts c = IngestBuffer(
      "apikey.1.success:2|c\napikey.2.failure:3|c\napikey.3.success:1|c\n"
      "apikey.1.failure:1|c\nother:1|g\napikey.1.success:1|c|@0.1\nbad",
      "apikey", table);
  EXPECT_EQ(c, Counts(3, 1, 1, 2));  // key 3 has no room; the sampled line is refused
  EXPECT_EQ(table.refused(), 1u);
  std::vector<KeyDelta> out;
  table.Drain(&out);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (KeyDelta{1, 2, 1}));
  EXPECT_EQ(out[1], (KeyDelta{2, 0, 3}));
}

// IngestBuffer adds in batches of kIngestBatch: a buffer of several batches and a partial
// last one, with refusals in more than one batch, counts every line exactly once.
TEST(IngestBuffer, CountsExactlyAcrossItsBatches) {
  constexpr uint64_t kRoom = 50;
  CounterTable table(kRoom);
  std::string buffer;
  std::map<uint64_t, uint64_t> want;  // key -> successes, for the keys that got room
  const size_t lines = kIngestBatch * 3 + 17;
  uint64_t refused = 0;
  for (size_t i = 0; i < lines; ++i) {
    uint64_t key = 1 + (i * 7) % 160;  // 160 keys, room for 50: later new keys are refused
    buffer += "apikey." + std::to_string(key) + ".success:" + std::to_string(i + 1) + "|c\n";
    if (want.contains(key) || want.size() < kRoom) {
      want[key] += i + 1;
    } else {
      ++refused;
    }
  }
  LineCounts c = IngestBuffer(buffer, "apikey", table);
  EXPECT_EQ(c, Counts(lines - refused, 0, 0, refused));
  ASSERT_GT(refused, kIngestBatch);  // refusals in more than one batch
  std::vector<KeyDelta> out;
  table.Drain(&out);
  std::map<uint64_t, uint64_t> got;
  for (const KeyDelta& d : out) {
    EXPECT_EQ(d.failures, 0u);
    got[d.key] += d.successes;
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace tally::core
