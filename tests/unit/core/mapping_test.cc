// Mapping rules (core/mapping.h): what a rule matches, what it makes of the line, the order
// rules are tried in, and the errors of a rule file (core/mapping_yaml.h).
#include "core/mapping.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/ingest.h"
#include "core/mapping_presets.h"
#include "core/mapping_yaml.h"

namespace tally::core {
namespace {

std::shared_ptr<const Mapping> Load(const std::string& yaml) {
  StatusOr<std::shared_ptr<const Mapping>> m = LoadMapping(yaml, "rules.yaml");
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? *m : nullptr;
}

std::string LoadError(const std::string& yaml) {
  StatusOr<std::shared_ptr<const Mapping>> m = LoadMapping(yaml, "rules.yaml");
  EXPECT_FALSE(m.ok());
  return m.ok() ? std::string() : m.status().message();
}

struct Mapped {
  LineResult result;
  Increment inc;
  MappedCounts counts;
};

Mapped Map(const Mapping& m, std::string_view line) {
  Mapped out{};
  out.result = m.Map(line, &out.inc, &out.counts);
  return out;
}

const char* kStatusRule = R"(
mappings:
  - name: svc
    match: gw.svc.*.status.*
    key: $1
    key_pattern: 'key-(\d+)'
    status: $2
)";

TEST(Mapping, GlobCapturesKeyAndStatus) {
  auto m = Load(kStatusRule);
  Mapped ok = Map(*m, "gw.svc.key-42.status.200:3|c");
  EXPECT_EQ(ok.result, LineResult::kAccepted);
  EXPECT_EQ(ok.inc.key, 42u);
  EXPECT_EQ(ok.inc.successes, 3u);
  EXPECT_EQ(ok.inc.failures, 0u);
  EXPECT_EQ(ok.inc.code, 0u);
  EXPECT_EQ(ok.counts.matched[0], 1u);
  Mapped fail = Map(*m, "gw.svc.key-42.status.503:1:2|c\r");
  EXPECT_EQ(fail.result, LineResult::kAccepted);
  EXPECT_EQ(fail.inc.failures, 3u);
  EXPECT_EQ(fail.inc.code, 503);
}

TEST(Mapping, AStarIsOneSegmentOfOneByteOrMore) {
  auto m = Load(kStatusRule);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.x.status.200:1|c").result, LineResult::kIgnored);
  EXPECT_EQ(Map(*m, "gw.svc..status.200:1|c").result, LineResult::kIgnored);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200.count:1|c").result, LineResult::kIgnored);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status:1|c").result, LineResult::kIgnored);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:1|c").counts.matched[0], 1u);
}

TEST(Mapping, OnlyCounterLines) {
  auto m = Load(kStatusRule);
  for (const char* line : {"gw.svc.key-42.status.200:1|ms", "gw.svc.key-42.status.200:1|g",
                           "gw.svc.key-42.status.200:1|cc", "gw.svc.key-42.status.200"}) {
    Mapped r = Map(*m, line);
    EXPECT_EQ(r.result, LineResult::kIgnored) << line;
    EXPECT_EQ(r.counts.matched[0], 0u) << line;
  }
}

TEST(Mapping, NoKeyIdIsIgnoredAndCounted) {
  auto m = Load(kStatusRule);
  for (const char* line :
       {"gw.svc.billing.status.200:1|c", "gw.svc.key-.status.200:1|c",
        "gw.svc.key-042.status.200:1|c", "gw.svc.key-0.status.200:1|c",
        "gw.svc.key-42x.status.200:1|c", "gw.svc.key-9223372036854775808.status.200:1|c"}) {
    Mapped r = Map(*m, line);
    EXPECT_EQ(r.result, LineResult::kIgnored) << line;
    EXPECT_EQ(r.counts.matched[0], 1u) << line;
    EXPECT_EQ(r.counts.without_key[0], 1u) << line;
  }
  EXPECT_EQ(Map(*m, "gw.svc.key-9223372036854775807.status.200:1|c").inc.key, 9223372036854775807u);
}

TEST(Mapping, BadValuesStatusesAndRates) {
  auto m = Load(kStatusRule);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:x|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:01|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:00|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:4294967296|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:42949672950|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:4294967295|c").inc.successes, 4294967295u);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:4294967295:1|c").inc.successes, 4294967296u);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:1|c|").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:1|c|@1|@1").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.99:1|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.600:1|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.abc:1|c").result, LineResult::kMalformed);
  // The sample-rate rule: below 1 is refused; exactly 1 counts.
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:1|c|@0.5").result, LineResult::kRefused);
  EXPECT_EQ(Map(*m, "gw.svc.key-42.status.200:1|c|@1.0").result, LineResult::kAccepted);
  // A zero delta counts nothing.
  Mapped zero = Map(*m, "gw.svc.key-42.status.200:0|c");
  EXPECT_EQ(zero.result, LineResult::kIgnored);
  EXPECT_EQ(zero.counts.matched[0], 1u);
}

TEST(Mapping, SuccessStatusDecides) {
  auto m = Load(R"(
mappings:
  - name: svc
    match: gw.*.*
    key: $1
    status: $2
    success_status: [2xx, 404]
)");
  EXPECT_EQ(Map(*m, "gw.7.204:1|c").inc.successes, 1u);
  EXPECT_EQ(Map(*m, "gw.7.404:1|c").inc.successes, 1u);
  Mapped redirect = Map(*m, "gw.7.302:1|c");
  EXPECT_EQ(redirect.inc.failures, 1u);
  EXPECT_EQ(redirect.inc.code, 302);
  EXPECT_EQ(Map(*m, "gw.7.429:1|c").inc.code, 429);
}

TEST(Mapping, StatusClassAndLiteralOutcomes) {
  auto m = Load(R"(
mappings:
  - name: class
    match: env.*.rq_*xx
    key: $1
    status_class: $2
  - name: classword
    match: env.*.class.*
    key: $1
    status_class: $2
  - name: ok
    match: app.*.ok
    key: $1
    outcome: success
  - name: bad
    match: app.*.bad
    key: $1
    outcome: failure
)");
  EXPECT_EQ(Map(*m, "env.7.rq_2xx:4|c").inc.successes, 4u);
  Mapped five = Map(*m, "env.7.rq_5xx:2|c");
  EXPECT_EQ(five.inc.failures, 2u);
  EXPECT_EQ(five.inc.code, 0u);  // a class names no exact status
  EXPECT_EQ(Map(*m, "env.7.rq_503:2|c").result, LineResult::kIgnored);
  EXPECT_EQ(Map(*m, "env.7.rq_9xx:2|c").result, LineResult::kMalformed);
  EXPECT_EQ(Map(*m, "env.7.class.4XX:1|c").inc.failures, 1u);
  EXPECT_EQ(Map(*m, "env.7.class.3:1|c").inc.successes, 1u);
  EXPECT_EQ(Map(*m, "app.9.ok:1|c").inc.successes, 1u);
  EXPECT_EQ(Map(*m, "app.9.bad:1|c").inc.failures, 1u);
}

TEST(Mapping, FirstMatchWinsInFileOrderAcrossDispatchBuckets) {
  auto m = Load(R"(
mappings:
  - name: drop-ones
    match: gw.*.status.1*
    action: drop
  - name: any-first
    match: '*.*.status.5*'
    key: $2
    outcome: failure
  - name: gw
    match: gw.*.status.*
    key: $1
    status: $2
)");
  Mapped info = Map(*m, "gw.7.status.101:1|c");
  EXPECT_EQ(info.result, LineResult::kIgnored);
  EXPECT_EQ(info.counts.matched[0], 1u);
  Mapped five = Map(*m, "gw.7.status.503:1|c");
  EXPECT_EQ(five.counts.matched[1], 1u);  // the general rule stands before "gw"
  EXPECT_EQ(five.inc.failures, 1u);
  EXPECT_EQ(five.inc.code, 0u);
  Mapped ok = Map(*m, "gw.7.status.200:1|c");
  EXPECT_EQ(ok.counts.matched[2], 1u);
  EXPECT_EQ(Map(*m, "other.7.status.503:1|c").counts.matched[1], 1u);
}

TEST(Mapping, TagsMatchedAndRead) {
  auto m = Load(R"(
mappings:
  - name: tagged
    match: gw.request.count
    tags:
      status: '*'
      env: 'prod*'
    key: ${service}
    key_pattern: 'key-(\d+)@.*'
    status: ${status}
  - name: fallback
    match: gw.request.count
    action: drop
)");
  Mapped r = Map(*m, "gw.request.count:1|c|#env:production,service:key-5@docker,status:500");
  EXPECT_EQ(r.result, LineResult::kAccepted);
  EXPECT_EQ(r.inc.key, 5u);
  EXPECT_EQ(r.inc.code, 500);
  // A required tag missing or not matching, or a referenced tag missing: the next rule.
  for (const char* line : {"gw.request.count:1|c|#env:prod,service:key-5@d",
                           "gw.request.count:1|c|#env:staging,service:key-5@d,status:200",
                           "gw.request.count:1|c|#env:prod,status:200", "gw.request.count:1|c"}) {
    Mapped next = Map(*m, line);
    EXPECT_EQ(next.counts.matched[0], 0u) << line;
    EXPECT_EQ(next.counts.matched[1], 1u) << line;
  }
  // Fields that do not parse: malformed, under the tag rule that had to read them.
  Mapped bad = Map(*m, "gw.request.count:1|c|#env:prod|#service:key-5@d");
  EXPECT_EQ(bad.result, LineResult::kMalformed);
  EXPECT_EQ(bad.counts.matched[0], 1u);
  // No provider suffix: the key pattern wants one.
  EXPECT_EQ(
      Map(*m, "gw.request.count:1|c|#env:prod,service:key-5,status:200").counts.without_key[0], 1u);
}

TEST(Mapping, RegexRulesWithNamedGroups) {
  auto m = Load(R"(
mappings:
  - name: re
    match_type: regex
    match: 'app\.(?P<svc>[a-z]+-\d+)\.(?<code>\d{3})'
    key: ${svc}
    key_pattern: '[a-z]+-([0-9]+)'
    status: ${code}
)");
  Mapped r = Map(*m, "app.svc-12.404:1|c");
  EXPECT_EQ(r.result, LineResult::kAccepted);
  EXPECT_EQ(r.inc.key, 12u);
  EXPECT_EQ(r.inc.code, 404);
  EXPECT_EQ(Map(*m, "app.svc-12.404.x:1|c").result, LineResult::kIgnored);  // whole name
}

// The hand-checked key pattern and std::regex agree on the same texts.
TEST(Mapping, FastKeyPatternAgreesWithRegex) {
  auto fast = Load(R"(
mappings:
  - {name: k, match: 'a.*', key: $1, key_pattern: 'key\-(\d+)x', outcome: success}
)");
  auto slow = Load(R"(
mappings:
  - {name: k, match: 'a.*', key: $1, key_pattern: 'key\-([0-9]+)x', outcome: success}
)");
  for (const char* line : {"a.key-1x:1|c", "a.key-12x:1|c", "a.key-x:1|c", "a.key-1:1|c",
                           "a.key-1xx:1|c", "a.key-01x:1|c", "a.kex-1x:1|c", "a.key-1y:1|c"}) {
    Mapped f = Map(*fast, line);
    Mapped s = Map(*slow, line);
    EXPECT_EQ(f.result, s.result) << line;
    EXPECT_EQ(f.inc.key, s.inc.key) << line;
    EXPECT_EQ(f.counts.without_key[0], s.counts.without_key[0]) << line;
  }
}

// Lines of tallyd's own protocol are parsed first: a rule cannot take them over.
TEST(Mapping, OwnProtocolLinesComeFirst) {
  auto m = Load(R"(
mappings:
  - name: greedy
    match: apikey.*.*
    key: $1
    outcome: failure
)");
  CounterTable table(100);
  MappedCounts mapped;
  LineCounts c =
      IngestBuffer("apikey.5.success:2|c\napikey.5.bogus:1|c\n", "apikey", table, m.get(), &mapped);
  EXPECT_EQ(c.accepted, 1u);
  EXPECT_EQ(c.malformed, 1u);
  EXPECT_EQ(mapped.matched[0], 0u);
}

// Every line of every preset's fixture, cut at each byte and with each byte replaced by a
// few others: Map never reads outside the line (ASan builds) and what it accepts is a key in
// range with exactly one non-zero outcome, and a code only on a failure.
TEST(Mapping, MutatedGatewayLinesKeepTheContract) {
  const char* presets[] = {"kong", "envoy", "traefik", "nginx"};
  const char replacements[] = {'.', ':', '|', '#', ',', '@', '0', '9', 'x', '*', '\0', '\r'};
  for (const char* preset : presets) {
    StatusOr<std::shared_ptr<const Mapping>> m = LoadMapping(*MappingPreset(preset), preset);
    ASSERT_TRUE(m.ok());
    std::vector<std::string> lines = {
        "kong.service.key-42.status.503:1|c", "kong.request.count:1|c|#service:key-7,status:200",
        "envoy.cluster.key-42.upstream_rq_5xx:2|c",
        "traefik.service.request.total:1|c|#service:key-4@docker,code:200",
        "nginx.apikey.42.status.404:1|c|@1"};
    for (const std::string& line : lines) {
      for (size_t cut = 0; cut <= line.size(); ++cut) {
        for (char c : replacements) {
          std::string mutated = line.substr(0, cut);
          if (cut < line.size()) {
            mutated += c + line.substr(cut + 1);
          }
          // An exact-size heap copy: a read past its end is an overflow ASan reports.
          std::unique_ptr<char[]> copy(new char[mutated.size() + 1]);
          std::copy(mutated.begin(), mutated.end(), copy.get());
          Increment inc;
          MappedCounts counts;
          LineResult r = (*m)->Map(std::string_view(copy.get(), mutated.size()), &inc, &counts);
          if (r == LineResult::kAccepted) {
            EXPECT_TRUE(inc.key >= 1 && inc.key <= kMaxId) << mutated;
            EXPECT_NE(inc.successes > 0, inc.failures > 0) << mutated;
            EXPECT_TRUE(inc.code == 0 || (inc.failures > 0 && inc.code >= 100 && inc.code <= 599))
                << mutated;
          }
        }
      }
    }
  }
}

TEST(MappingFile, ErrorsNameTheFileLineAndReason) {
  EXPECT_EQ(LoadError("mappings:\n  - name: a\n    match: x.*\n    key: $2\n    status: $1\n"),
            "rules.yaml line 4: rule 'a': key: '$2' is not $1..$9 (within the 1 captures) or "
            "${name}");
  EXPECT_EQ(LoadError("mappings:\n  - name: a\n    match: x.*\n    colour: red\n"),
            "rules.yaml line 4: colour: unknown field (name, match, match_type, tags, key, "
            "key_pattern, status, status_class, outcome, action, success_status)");
  EXPECT_EQ(LoadError("mappings:\n  - name: a\n    match: [x\n"),
            "rules.yaml line 4: end of sequence flow not found");
  EXPECT_EQ(LoadError("rules: []\n"), "rules.yaml line 1: expected a map with `mappings:`");
  EXPECT_EQ(
      LoadError("mappings:\n  - {name: a, match: x.*, key: $1, status: $1, outcome: success}\n"),
      "rules.yaml line 2: outcome: a rule has one of status, status_class, outcome or action");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match: x.*, key: $1}\n"),
            "rules.yaml line 2: rule 'a': one of status, status_class, outcome or action: drop "
            "is needed");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match: x.*, key: $1, outcome: success}\n"
                      "  - {name: a, match: y.*, key: $1, outcome: success}\n"),
            "rules.yaml line 3: rule 'a': name: used by an earlier rule");
  EXPECT_EQ(LoadError("mappings:\n  - {name: 'a b', match: x.*, action: drop}\n"),
            "rules.yaml line 2: rule 'a b': name: 1 to 64 bytes of [A-Za-z0-9_.-] (the rule's "
            "label in /metrics)");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match: 'x..y', action: drop}\n"),
            "rules.yaml line 2: rule 'a': match: empty segment (a leading, trailing or doubled "
            "'.')");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match: x.*, key: $1, key_pattern: '(a)(b)',"
                      " outcome: success}\n"),
            "rules.yaml line 2: rule 'a': key_pattern: a regex with exactly one group, the key "
            "id");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match: x.*.*, key: $1, status: $2, "
                      "success_status: 2x}\n"),
            "rules.yaml line 2: rule 'a': success_status: comma-separated classes (2xx) or "
            "codes (100..599)");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match_type: regex, match: '(', action: drop}\n")
                .substr(0, 46),
            "rules.yaml line 2: rule 'a': match: not a rege");
  EXPECT_EQ(LoadError("mappings:\n  - {name: a, match: x.*, action: drop, key: $1}\n"),
            "rules.yaml line 2: rule 'a': action: drop takes no key, key_pattern or outcome");
}

TEST(MappingFile, AtMost64Rules) {
  std::string yaml = "mappings:\n";
  for (int i = 0; i < 65; ++i) {
    yaml += "  - {name: r" + std::to_string(i) + ", match: x.y" + std::to_string(i) +
            ", action: drop}\n";
  }
  EXPECT_EQ(LoadError(yaml), "rules.yaml: at most 64 rules (there are 65)");
}

}  // namespace
}  // namespace tally::core
