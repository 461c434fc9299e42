#include "daemon/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/temp_dir.h"

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

TEST(Config, ConfigFileUsesTheSameNamesAndTheCommandLineWins) {
  testing::TempDir dir;
  std::string path = dir.Sub("tallyd.conf");
  std::ofstream(path) << "# a comment\n"
                      << "flush-interval-ms = 250\n"
                      << "max-keys=77\n"
                      << "udp-listen = off\n"
                      << "unix-socket = " << dir.Sub("sock") << "\n"
                      << "log-level = debug\n"
                      << "admin-token = from-file\n";
  ParsedArgs p = Parse({"--config", path.c_str(), "--max-keys", "5", "--log-level", "warn"});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->flush_interval_ms, 250u);
  EXPECT_EQ(p.config->max_keys, 5u);  // the command line wins
  EXPECT_EQ(p.config->log_level, "warn");
  EXPECT_FALSE(p.config->udp_listen.enabled());
  EXPECT_EQ(p.config->unix_socket, dir.Sub("sock"));
  EXPECT_EQ(p.config->admin_token, "from-file");
  EXPECT_EQ(p.config->http_listen.ToString(), "127.0.0.1:8126");  // untouched default
}

TEST(Config, ConfigFileErrorsNameTheFileAndTheOption) {
  testing::TempDir dir;
  std::string path = dir.Sub("bad.conf");
  std::ofstream(path) << "max-keys = many\n";
  ParsedArgs p = Parse({"--config", path.c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("max-keys"), std::string::npos) << p.output;
  EXPECT_NE(p.output.find(path), std::string::npos) << p.output;
  std::ofstream(path) << "no-such = 1\n";
  p = Parse({"--config", path.c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("no-such"), std::string::npos) << p.output;
  p = Parse({"--config", dir.Sub("absent").c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("--config: cannot read"), std::string::npos) << p.output;
  p = Parse({"--config", dir.path().c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("is a directory"), std::string::npos) << p.output;
  for (const ParsedArgs& q : {Parse({"--bogus"}), Parse({"--max-keys", "x"})}) {
    EXPECT_EQ(q.output.find('\n'), std::string::npos) << q.output;  // one line
  }
}

TEST(Config, DataDirFromStateDirectoryUnlessGiven) {
  setenv("STATE_DIRECTORY", "/var/lib/tallyd:/var/lib/tallyd-checkpoints", 1);
  ParsedArgs p = Parse({});
  ASSERT_TRUE(p.config.has_value());
  EXPECT_EQ(p.config->data_dir, "/var/lib/tallyd");
  p = Parse({"--data-dir", "/elsewhere"});
  ASSERT_TRUE(p.config.has_value());
  EXPECT_EQ(p.config->data_dir, "/elsewhere");
  unsetenv("STATE_DIRECTORY");
}

TEST(Config, TokensFromFilesAndEnvironment) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("admin")) << "adm1n\n";
  setenv("TALLYD_INTERNAL_TOKEN", "from-env", 1);
  ParsedArgs p = Parse({"--admin-token-file", dir.Sub("admin").c_str()});
  unsetenv("TALLYD_INTERNAL_TOKEN");
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->admin_token, "adm1n");
  EXPECT_EQ(p.config->internal_token, "from-env");
  std::string redacted = p.config->Redacted();
  EXPECT_EQ(redacted.find("adm1n"), std::string::npos);
  EXPECT_EQ(redacted.find("from-env"), std::string::npos);
  EXPECT_NE(redacted.find("internal-token=(set)"), std::string::npos);
  std::ofstream(dir.Sub("empty")) << "\n";
  p = Parse({"--internal-token-file", dir.Sub("empty").c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("--internal-token-file"), std::string::npos) << p.output;
}

TEST(Config, EveryListenerCanBeTurnedOff) {
  ParsedArgs p = Parse({"--udp-listen", "off", "--http-listen", "off", "--unix-socket", "off"});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_FALSE(p.config->udp_listen.enabled());
  EXPECT_FALSE(p.config->http_listen.enabled());
  EXPECT_TRUE(p.config->unix_socket.empty());
}

TEST(Config, HelpListsEveryOptionWithItsDefault) {
  ParsedArgs p = Parse({"--help"});
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_FALSE(p.config.has_value());
  for (const char* text :
       {"--data-dir arg (=./tallyd-data)", "--udp-listen arg (=127.0.0.1:8125)",
        "--http-listen arg (=127.0.0.1:8126)", "--unix-socket arg (=off)",
        "--flush-interval-ms arg (=1000)", "--udp-rcvbuf arg (=8388608)", "--io-threads arg (=0)",
        "--max-keys arg (=1000000)", "--metric-prefix arg (=apikey)", "--log-level arg (=info)",
        "--admin-token-file", "--internal-token-file", "--config"}) {
    EXPECT_NE(p.output.find(text), std::string::npos) << text;
  }
  p = Parse({"--version"});
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_EQ(p.output.rfind("tallyd ", 0), 0u);
}

}  // namespace
}  // namespace tally::daemon
