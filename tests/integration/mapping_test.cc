// Mapping rules against the real binary (issue 20): each preset's fixture over UDP, whole in
// one datagram and one line per datagram, gives per-key totals equal to the fixture's
// requests and per-rule counts in /metrics; the Unix socket and /v1/ingest apply the same
// rules; a bad rule file stops start-up with one line; --print-mapping-preset prints the
// repository's file.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>

#include "tests/support/mapping_fixture.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

std::optional<double> Series(uint16_t port, const std::string& name, const std::string& labels) {
  return ScrapeMetric(port, name + "{" + labels + "}");
}

std::string Lines(const std::string& transport, const std::string& result) {
  return "transport=\"" + transport + "\",result=\"" + result + "\"";
}

class MappingOverUdp : public ::testing::TestWithParam<std::string> {};

TEST_P(MappingOverUdp, PerKeyTotalsAreTheFixturesRequests) {
  const std::string preset = GetParam();
  const MappingFixture f = ReadMappingFixture(preset);
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens({"--mapping-preset", preset}));
  for (const auto& [id, counts] : f.keys) {
    ASSERT_EQ(Http(t.http_port(), "PUT", "/admin/api-keys/" + std::to_string(id),
                   R"({"api_key":"sk-)" + std::to_string(id) + R"("})", kAdmin)
                  .status,
              201);
  }
  // The fixture twice: whole in one datagram (Kong's udp_packet_size, Envoy's buffered sink),
  // then one line per datagram.
  std::string all;
  for (const std::string& line : f.lines) {
    all += line + "\n";
  }
  SendUdp(t.udp_port(), all);
  for (const std::string& line : f.lines) {
    SendUdp(t.udp_port(), line);
  }
  const uint64_t lines = f.accepted + f.ignored + f.malformed + f.refused;
  ASSERT_TRUE(WaitUntil(
      [&] {
        double seen = 0;
        for (const char* r : {"accepted", "ignored", "malformed", "refused"}) {
          seen += Series(t.http_port(), "tallyd_lines_total", Lines("udp", r)).value_or(0);
        }
        return seen >= static_cast<double>(2 * lines);
      },
      10000));
  EXPECT_EQ(Series(t.http_port(), "tallyd_lines_total", Lines("udp", "accepted")), 2 * f.accepted);
  EXPECT_EQ(Series(t.http_port(), "tallyd_lines_total", Lines("udp", "ignored")), 2 * f.ignored);
  EXPECT_EQ(Series(t.http_port(), "tallyd_lines_total", Lines("udp", "refused")), 2 * f.refused);
  for (const auto& [rule, n] : f.rules) {
    EXPECT_EQ(Series(t.http_port(), "tallyd_mapped_lines_total", "rule=\"" + rule + "\""), 2 * n)
        << rule;
  }
  for (const auto& [rule, n] : f.without_key) {
    EXPECT_EQ(
        Series(t.http_port(), "tallyd_mapped_lines_without_key_total", "rule=\"" + rule + "\""),
        2 * n)
        << rule;
  }
  ASSERT_EQ(Http(t.http_port(), "POST", "/admin/flush", {}, kAdmin).status, 200);
  for (const auto& [id, counts] : f.keys) {
    HttpResult r = Http(t.http_port(), "GET", "/admin/api-keys/" + std::to_string(id), {}, kAdmin);
    ASSERT_EQ(r.status, 200) << r.body;
    json::object key = json::parse(r.body).as_object();
    EXPECT_EQ(key.at("success_requests").as_int64(), static_cast<int64_t>(2 * counts.first)) << id;
    EXPECT_EQ(key.at("failure_requests").as_int64(), static_cast<int64_t>(2 * counts.second)) << id;
  }
  EXPECT_EQ(t.Stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Presets, MappingOverUdp,
                         ::testing::Values("kong", "envoy", "traefik", "nginx"));

TEST(Mapping, HttpIngestAppliesTheRules) {
  const MappingFixture f = ReadMappingFixture("envoy");
  std::string body;
  for (const std::string& line : f.lines) {
    body += line + "\n";
  }
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens({"--mapping-preset", "envoy"}));
  HttpResult r = Http(t.http_port(), "POST", "/v1/ingest", body, kInternal);
  ASSERT_EQ(r.status, 202) << r.body;
  json::object c = json::parse(r.body).as_object();
  EXPECT_EQ(c.at("accepted").as_int64(), static_cast<int64_t>(f.accepted));
  EXPECT_EQ(c.at("ignored").as_int64(), static_cast<int64_t>(f.ignored));
  EXPECT_EQ(Series(t.http_port(), "tallyd_mapped_lines_total", "rule=\"envoy-status-class\""),
            f.rules.at("envoy-status-class"));
  EXPECT_EQ(t.Stop(), 0);
}

TEST(Mapping, UnixSocketAppliesTheRules) {
  const MappingFixture f = ReadMappingFixture("kong");
  std::string body;
  for (const std::string& line : f.lines) {
    body += line + "\n";
  }
  TempDir dir;
  const std::string path = dir.Sub("tallyd.sock");
  TallydProcess t(dir.Sub("data"), Tokens({"--mapping-preset", "kong", "--unix-socket", path}));
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(
      sendto(fd, body.data(), body.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
      static_cast<ssize_t>(body.size()));
  close(fd);
  const std::string accepted = "tallyd_lines_total{" + Lines("unix", "accepted") + "}";
  ASSERT_TRUE(WaitUntil(
      [&] { return ScrapeMetric(t.http_port(), accepted).value_or(0) >= f.accepted; }, 10000));
  EXPECT_EQ(ScrapeMetric(t.http_port(), accepted), f.accepted);
  EXPECT_EQ(Series(t.http_port(), "tallyd_mapped_lines_total", "rule=\"kong-status\""),
            f.rules.at("kong-status"));
  EXPECT_EQ(t.Stop(), 0);
}

TEST(Mapping, WithoutRulesGatewayLinesStayIgnored) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  HttpResult r = Http(t.http_port(), "POST", "/v1/ingest",
                      "kong.service.key-42.status.200:1|c\napikey.42.success:1|c\n", kInternal);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find(R"("accepted":1,"ignored":1)"), std::string::npos) << r.body;
  EXPECT_EQ(t.Stop(), 0);
}

TEST(Mapping, ABadRuleFileStopsStartUpWithOneLine) {
  TempDir dir;
  const std::string path = dir.Sub("rules.yaml");
  std::ofstream(path) << "mappings:\n  - name: a\n    match: kong.service.*\n    key: $1\n"
                         "    status: $2\n";
  std::string out;
  EXPECT_EQ(RunTallyd({"--data-dir", dir.Sub("data"), "--mapping-file", path}, &out), 2);
  EXPECT_EQ(out, "tallyd: --mapping-file " + path +
                     " line 5: rule 'a': status: '$2' is not $1..$9 (within the captures) or "
                     "${name}\n");
  EXPECT_EQ(RunTallyd({"--mapping-preset", "haproxy"}, &out), 2);
  EXPECT_EQ(out, "tallyd: --mapping-preset: must be one of kong, envoy, traefik, nginx\n");
  EXPECT_EQ(RunTallyd({"--mapping-preset", "kong", "--mapping-file", path}, &out), 2);
  EXPECT_EQ(out, "tallyd: --mapping-file and --mapping-preset are both given: give one\n");
  // In the --config file: the options are read there too; the print action is not an option
  // a file can hold.
  const std::string conf = dir.Sub("tallyd.conf");
  std::ofstream(conf) << "mapping-preset = haproxy\n";
  EXPECT_EQ(RunTallyd({"--config", conf}, &out), 2);
  EXPECT_EQ(out, "tallyd: --mapping-preset: must be one of kong, envoy, traefik, nginx\n");
  std::ofstream(conf) << "print-mapping-preset = kong\n";
  EXPECT_EQ(RunTallyd({"--config", conf}, &out), 2);
  EXPECT_EQ(out, "tallyd: --config " + conf + " line 1: unknown option 'print-mapping-preset'\n");
}

TEST(Mapping, PrintMappingPresetPrintsTheRepositoryFile) {
  for (const char* preset : {"kong", "envoy", "traefik", "nginx"}) {
    std::string out;
    EXPECT_EQ(RunTallyd({"--print-mapping-preset", preset}, &out), 0);
    EXPECT_EQ(out, ReadSourceFile(std::string("mapping/presets/") + preset + ".yaml")) << preset;
  }
}

}  // namespace
}  // namespace tally::testing
