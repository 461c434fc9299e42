// The --config file (daemon/app/config_file.h): the same names as the command line, which
// wins; errors name the file, the line and the option, never the line's text.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "daemon/app/config.h"
#include "tests/support/temp_dir.h"

namespace tally::daemon {
namespace {

ParsedArgs Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tallyd");
  return ParseArgs(static_cast<int>(args.size()), args.data());
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

// Issue 23.10: an error about a file line never echoes the line; it names file, line, key.
TEST(Config, ConfigFileErrorsNeverEchoTheLine) {
  testing::TempDir dir;
  std::string path = dir.Sub("secret.conf");
  for (const char* line : {"admin-token: SECRET", "admin-token SECRET", "SECRET", "[SECRET]"}) {
    std::ofstream(path) << "# first\n\nlog-level = info\n" << line << "\n";
    ParsedArgs p = Parse({"--config", path.c_str()});
    EXPECT_EQ(p.exit_code, 2) << line;
    EXPECT_EQ(p.output.find("SECRET"), std::string::npos) << p.output;
    EXPECT_NE(p.output.find(path + " line 4"), std::string::npos) << p.output;
    EXPECT_EQ(p.output.find('\n'), std::string::npos) << p.output;
  }
  std::ofstream(path) << "admin-token: SECRET\n";
  ParsedArgs p = Parse({"--config", path.c_str()});
  EXPECT_NE(p.output.find("line 1 (admin-token): expected `option = value`"), std::string::npos)
      << p.output;
  // A token holding '#' is read whole; only whole lines are comments.
  std::ofstream(path) << "admin-token = a#b;c\n";
  p = Parse({"--config", path.c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->admin_token, "a#b;c");
  std::ofstream(path) << "max-keys = 5\nmax-keys = 6\n";
  p = Parse({"--config", path.c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("line 2: max-keys is given twice"), std::string::npos) << p.output;
}

}  // namespace
}  // namespace tally::daemon
