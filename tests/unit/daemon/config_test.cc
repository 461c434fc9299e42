#include "daemon/config.h"

#include <gtest/gtest.h>

namespace tally::daemon {
namespace {

ParsedArgs Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tallyd");
  return ParseArgs(static_cast<int>(args.size()), args.data());
}

TEST(Config, DefaultsMatchTheReadme) {
  ParsedArgs p = Parse({});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->data_dir, "./tallyd-data");
  EXPECT_EQ(p.config->udp_listen.ToString(), "127.0.0.1:8125");
  EXPECT_EQ(p.config->http_listen.ToString(), "127.0.0.1:8126");
  EXPECT_EQ(p.config->flush_interval_ms, 1000u);
}

TEST(Config, BadValuesExitTwoNamingTheOption) {
  ParsedArgs p = Parse({"--udp-listen", "nonsense"});
  EXPECT_FALSE(p.config.has_value());
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("--udp-listen"), std::string::npos) << p.output;
  p = Parse({"--no-such-option"});
  EXPECT_EQ(p.exit_code, 2);
  p = Parse({"--flush-interval-ms", "1"});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("--flush-interval-ms"), std::string::npos);
}

TEST(Config, PublicHttpNeedsBothTokens) {
  ParsedArgs p = Parse({"--http-listen", "0.0.0.0:8126"});
  EXPECT_EQ(p.exit_code, 2);
  p = Parse({"--http-listen", "0.0.0.0:8126", "--admin-token", "a", "--internal-token", "b"});
  EXPECT_TRUE(p.config.has_value()) << p.output;
}

TEST(Config, RedactedHidesTokens) {
  ParsedArgs p = Parse({"--admin-token", "s3cret-admin"});
  ASSERT_TRUE(p.config.has_value());
  EXPECT_EQ(p.config->Redacted().find("s3cret-admin"), std::string::npos);
}

TEST(Config, EndpointsParse) {
  EXPECT_FALSE(ParseEndpoint("off")->enabled());
  EXPECT_EQ(ParseEndpoint("[::1]:9")->host, "::1");
  EXPECT_FALSE(ParseEndpoint("127.0.0.1:70000").ok());
}

}  // namespace
}  // namespace tally::daemon
