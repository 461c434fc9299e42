// The README's "Your gateway as it is" snippets, read from the README as written: each
// gateway's configuration names the statsd address and prefix tallyd expects, and the lines
// that configuration makes the gateway send for its upstream are counted by the preset the
// README names for it; the example rule file loads and counts as described.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <string>

#include "core/line_parser.h"
#include "core/mapping.h"
#include "core/mapping_presets.h"
#include "core/mapping_yaml.h"
#include "tests/support/mapping_fixture.h"

namespace tally::core {
namespace {

// The fenced block after "<!-- snippet: NAME -->" in the README.
std::string Snippet(const std::string& name) {
  static const std::string readme = testing::ReadSourceFile("README.md");
  size_t marker = readme.find("<!-- snippet: " + name + " -->");
  EXPECT_NE(marker, std::string::npos) << name;
  size_t open = readme.find("```", marker);
  size_t body = readme.find('\n', open) + 1;
  size_t close = readme.find("\n```", body);
  return readme.substr(body, close - body + 1);
}

struct Result {
  LineResult result;
  Increment inc;
  MappedCounts counts;
};

Result MapWith(const std::string& preset, const std::string& line) {
  StatusOr<std::shared_ptr<const Mapping>> m = LoadMapping(*MappingPreset(preset), preset);
  EXPECT_TRUE(m.ok());
  Result r{};
  r.result = (*m)->Map(line, &r.inc, &r.counts);
  return r;
}

void ExpectFailure(const Result& r, uint64_t key, uint16_t code) {
  EXPECT_EQ(r.result, LineResult::kAccepted);
  EXPECT_EQ(r.inc.key, key);
  EXPECT_EQ(r.inc.failures, 1u);
  EXPECT_EQ(r.inc.code, code);
}

TEST(MappingDocs, KongSnippetsFeedTheKongPreset) {
  YAML::Node kong = YAML::Load(Snippet("kong-gateway"));
  YAML::Node statsd = kong["plugins"][0];
  EXPECT_EQ(statsd["name"].as<std::string>(), "statsd");
  EXPECT_EQ(statsd["config"]["host"].as<std::string>(), "127.0.0.1");
  EXPECT_EQ(statsd["config"]["port"].as<int>(), 8125);
  const std::string prefix = statsd["config"]["prefix"].as<std::string>();
  const std::string service = kong["services"][0]["name"].as<std::string>();
  ExpectFailure(MapWith("kong", prefix + ".service." + service + ".status.503:1|c"), 42, 503);

  YAML::Node tagged = YAML::Load(Snippet("kong-gateway-tagged"))["plugins"][0]["config"];
  EXPECT_EQ(tagged["tag_style"].as<std::string>(), "dogstatsd");
  ASSERT_EQ(tagged["metrics"].size(), 1u);  // request_count only: nothing counted twice
  EXPECT_EQ(tagged["metrics"][0]["name"].as<std::string>(), "request_count");
  EXPECT_EQ(tagged["metrics"][0]["sample_rate"].as<int>(), 1);
  ExpectFailure(MapWith("kong", "kong.request.count:1|c|#service:" + service +
                                    ",route:r,workspace:default,status:429,node:n"),
                42, 429);
}

TEST(MappingDocs, EnvoySnippetFeedsTheEnvoyPreset) {
  YAML::Node envoy = YAML::Load(Snippet("envoy-gateway"));
  YAML::Node sink = envoy["stats_sinks"][0]["typed_config"];
  EXPECT_EQ(sink["address"]["socket_address"]["address"].as<std::string>(), "127.0.0.1");
  EXPECT_EQ(sink["address"]["socket_address"]["port_value"].as<int>(), 8125);
  const std::string prefix = sink["prefix"].as<std::string>();
  const std::string cluster = envoy["static_resources"]["clusters"][0]["name"].as<std::string>();
  Result r = MapWith("envoy", prefix + ".cluster." + cluster + ".upstream_rq_5xx:1|c");
  EXPECT_EQ(r.result, LineResult::kAccepted);
  EXPECT_EQ(r.inc.key, 42u);
  EXPECT_EQ(r.inc.failures, 1u);
  EXPECT_EQ(MapWith("envoy", prefix + ".cluster." + cluster + ".upstream_rq_503:1|c").result,
            LineResult::kIgnored);
}

TEST(MappingDocs, TraefikSnippetFeedsTheTraefikPreset) {
  YAML::Node datadog = YAML::Load(Snippet("traefik-gateway"))["metrics"]["datadog"];
  EXPECT_EQ(datadog["address"].as<std::string>(), "127.0.0.1:8125");
  EXPECT_TRUE(datadog["addServicesLabels"].as<bool>());
  const std::string prefix = datadog["prefix"].as<std::string>();
  ExpectFailure(MapWith("traefik", prefix + ".service.request.total:1|c|#service:key-42@docker,"
                                            "code:502,method:GET,protocol:http"),
                42, 502);
}

TEST(MappingDocs, NginxSnippetFeedsTheNginxPreset) {
  const std::string conf = Snippet("nginx-gateway");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(conf, m, std::regex(R"re(statsd_server (\S+);)re")));
  EXPECT_EQ(m[1], "127.0.0.1:8125");
  ASSERT_TRUE(std::regex_search(conf, m, std::regex(R"re(statsd_count "([^"]+)" 1;)re")));
  const std::string name = m[1];
  // nginx fills in the variables: the map's id, or "-"; the response status.
  auto line = [&name](const std::string& id, const std::string& status) {
    return std::regex_replace(std::regex_replace(name, std::regex(R"(\$apikey_id)"), id),
                              std::regex(R"(\$status)"), status) +
           ":1|c";
  };
  ExpectFailure(MapWith("nginx", line("42", "404")), 42, 404);
  Result none = MapWith("nginx", line("-", "200"));
  EXPECT_EQ(none.result, LineResult::kIgnored);
  EXPECT_EQ(none.counts.without_key[0], 1u);
  // The map lets through ids of the protocol's canonical form only.
  ASSERT_TRUE(std::regex_search(conf, m, std::regex(R"~("~\^\(\?<id>([^"]+)\)\$")~")));
  EXPECT_EQ(m[1], "[1-9][0-9]{0,17}");
}

TEST(MappingDocs, RuleFileExampleCountsAsDescribed) {
  StatusOr<std::shared_ptr<const Mapping>> m = LoadMapping(Snippet("rule-file"), "README");
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto map = [&](const std::string& line) {
    Result r{};
    r.result = (*m)->Map(line, &r.inc, &r.counts);
    return r;
  };
  Result found = map("proxy.t42.checkout.404:1|c");
  EXPECT_EQ(found.inc.key, 42u);
  EXPECT_EQ(found.inc.successes, 1u);  // 404 is listed in success_status
  ExpectFailure(map("proxy.t42.checkout.500:1|c"), 42, 500);
  Result health = map("proxy.health.db:1|c");
  EXPECT_EQ(health.result, LineResult::kIgnored);
  EXPECT_EQ(health.counts.matched[1], 1u);
}

// The README's example error is what tallyd says for that file.
TEST(MappingDocs, ErrorExampleIsTheRealMessage) {
  const std::string readme = testing::ReadSourceFile("README.md");
  StatusOr<std::shared_ptr<const Mapping>> m = LoadMapping(
      "mappings:\n  - name: a\n    match: x.*\n    key: $2\n    status: $1\n", "rules.yaml");
  ASSERT_FALSE(m.ok());
  const std::string said = "`tallyd: --mapping-file " + m.status().message() + "`";
  const std::string readme_flat = std::regex_replace(readme, std::regex("\n"), " ");
  EXPECT_NE(readme_flat.find(said), std::string::npos) << said;
}

}  // namespace
}  // namespace tally::core
