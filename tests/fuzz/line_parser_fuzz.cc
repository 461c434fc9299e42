// libFuzzer target: the statsd line protocol (core::ParseBuffer / core::IngestBuffer).
//
// Beyond "no crash, no out-of-bounds read" (ASan) and "no undefined behaviour" (UBSan), it
// checks the parser's contract on every input:
//   - ParseBuffer gives every '\n'-separated line exactly one result, the same one ParseLine
//     gives that line alone (so its one-pass path for common lines, ParseCommonLine, never
//     disagrees with ParseLine);
//   - an accepted line names a key in 1..2^63-1 and exactly one non-zero outcome;
//   - an accepted line, written back in canonical form, parses to the same increment;
//   - what IngestBuffer puts in a small CounterTable is exactly what it reports accepted:
//     the drain sums to the accepted increments, refusals included in `refused`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/counter_table.h"
#include "core/ingest.h"
#include "core/line_parser.h"

namespace {

using tally::core::Increment;
using tally::core::LineCounts;
using tally::core::LineResult;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "line_parser_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

void CheckAccepted(const Increment& inc, std::string_view prefix) {
  Check(inc.key >= 1 && inc.key <= tally::core::kMaxId, "accepted key out of range");
  Check((inc.successes > 0) != (inc.failures > 0), "accepted line without exactly one outcome");
  uint64_t value = inc.successes + inc.failures;
  if (value > tally::core::kMaxLineValue) {
    return;  // a packed sum; its canonical form would need packing too
  }
  std::string canonical = std::string(prefix) + "." + std::to_string(inc.key) +
                          (inc.successes > 0 ? ".success:" : ".failure:") + std::to_string(value) +
                          "|c";
  Increment again;
  Check(tally::core::ParseLine(canonical, prefix, &again) == LineResult::kAccepted,
        "canonical form of an accepted line not accepted");
  Check(again.key == inc.key && again.successes == inc.successes && again.failures == inc.failures,
        "canonical form parses to another increment");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the prefix, so configured prefixes other than the default are
  // covered too (including one that is a prefix of the default).
  static constexpr std::string_view kPrefixes[] = {"apikey", "api", "k", "gw.apikey"};
  std::string_view prefix = kPrefixes[0];
  if (size > 0 && (data[0] & 0x80) != 0) {
    prefix = kPrefixes[data[0] & 3];
    ++data;
    --size;
  }
  std::string_view buffer(reinterpret_cast<const char*>(data), size);

  // Line by line, the reference the buffer parse must agree with.
  std::vector<LineResult> expected;
  std::vector<Increment> expected_incs;
  size_t pos = 0;
  while (pos < buffer.size()) {
    size_t nl = buffer.find('\n', pos);
    size_t end = nl == std::string_view::npos ? buffer.size() : nl;
    Increment inc;
    LineResult r = tally::core::ParseLine(buffer.substr(pos, end - pos), prefix, &inc);
    expected.push_back(r);
    if (r == LineResult::kAccepted) {
      CheckAccepted(inc, prefix);
      expected_incs.push_back(inc);
    }
    if (nl == std::string_view::npos) {
      break;
    }
    pos = nl + 1;
  }

  LineCounts want;
  for (LineResult r : expected) {
    want.Count(r);
  }
  std::vector<Increment> got_incs;
  LineCounts got = tally::core::ParseBuffer(buffer, prefix, [&](const Increment& inc) {
    got_incs.push_back(inc);
    return true;
  });
  Check(got == want, "ParseBuffer counts differ from line-by-line ParseLine");
  Check(got_incs.size() == expected_incs.size(), "ParseBuffer increments differ in number");
  for (size_t i = 0; i < got_incs.size(); ++i) {
    Check(got_incs[i].key == expected_incs[i].key &&
              got_incs[i].successes == expected_incs[i].successes &&
              got_incs[i].failures == expected_incs[i].failures,
          "ParseBuffer increment differs from ParseLine's");
  }

  // Into a table with room for 4 keys: what it takes is exactly what the drain gives back.
  tally::core::CounterTable table(4);
  LineCounts ingested = tally::core::IngestBuffer(buffer, prefix, table);
  Check(ingested.lines() == want.lines(), "IngestBuffer saw another number of lines");
  Check(ingested.accepted + ingested.refused == want.accepted + want.refused,
        "IngestBuffer lost or invented accepted lines");
  std::vector<tally::core::KeyDelta> deltas;
  table.Drain(&deltas);
  Check(deltas.size() <= 4, "table holds more keys than its bound");
  uint64_t drained = 0;
  for (const auto& d : deltas) {
    drained += d.successes + d.failures;
  }
  // Re-run the sink decision: a line is taken iff its key fits (first 4 distinct keys).
  std::vector<uint64_t> keys;
  uint64_t taken = 0;
  uint64_t taken_lines = 0;
  for (const Increment& inc : expected_incs) {
    bool known = false;
    for (uint64_t k : keys) {
      known = known || k == inc.key;
    }
    if (!known && keys.size() < 4) {
      keys.push_back(inc.key);
      known = true;
    }
    if (known) {
      taken += inc.successes + inc.failures;
      ++taken_lines;
    }
  }
  Check(drained == taken, "drained counts differ from the accepted increments");
  Check(ingested.accepted == taken_lines, "accepted count differs from the lines the table took");
  return 0;
}
