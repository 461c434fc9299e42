#include "daemon/app/config.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>

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

// The start-up line ("starting: ...", Config::Redacted) is `name=value` pairs separated by
// one space each: no two pairs run together, none is empty.
TEST(Config, RedactedIsNameValuePairsSeparatedByOneSpace) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("upstream-token")) << "up\n";
  std::string token_file = dir.Sub("upstream-token");
  for (const ParsedArgs& p :
       {Parse({}), Parse({"--admin-token", "a", "--forward-url", "http://127.0.0.1:9/",
                          "--forward-token-file", token_file.c_str(), "--mapping-preset", "nginx",
                          "--ban-immediate-codes", "401,403"})}) {
    ASSERT_TRUE(p.config.has_value()) << p.output;
    std::string line = p.config->Redacted();
    ASSERT_FALSE(line.empty());
    size_t pairs = 0;
    for (size_t begin = 0; begin <= line.size();) {
      size_t end = std::min(line.find(' ', begin), line.size());
      std::string pair = line.substr(begin, end - begin);
      size_t eq = pair.find('=');
      EXPECT_TRUE(eq != std::string::npos && eq > 0 &&
                  pair.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") == eq &&
                  pair.find('=', eq + 1) == std::string::npos)
          << "'" << pair << "' in: " << line;
      ++pairs;
      begin = end + 1;
    }
    EXPECT_GT(pairs, 30u) << line;
    for (const char* pair : {"retention-day=", "ban-window-seconds=", "forward-url="}) {
      EXPECT_NE(line.find(std::string(" ") + pair), std::string::npos) << pair << " in: " << line;
    }
  }
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

// Issue 23.1: every numeric option refuses a sign, a non-number and anything outside its
// range, on the command line and in the file, with one line naming the option and the range.
TEST(Config, NumericOptionsNeverWrapAndNameTheirRange) {
  testing::TempDir dir;
  for (const NumericRange& r : NumericOptions()) {
    std::string option = std::string("--") + r.name;
    std::string range = std::to_string(r.min) + ".." + std::to_string(r.max);
    std::vector<std::string> bad = {"-1",
                                    "-4294967000",
                                    std::to_string(r.max + 1),
                                    "1e3",
                                    "",
                                    "+5",
                                    " 7",
                                    "0x10",
                                    "99999999999999999999999",
                                    "18446744073709551615"};
    if (r.min > 0) {
      bad.push_back(std::to_string(r.min - 1));
    }
    for (const std::string& text : bad) {
      ParsedArgs p = Parse({option.c_str(), text.c_str()});
      EXPECT_EQ(p.exit_code, 2) << option << "=" << text;
      EXPECT_FALSE(p.config.has_value()) << option << "=" << text;
      EXPECT_NE(p.output.find(option + ": must be an integer within " + range), std::string::npos)
          << option << "=" << text << ": " << p.output;
      EXPECT_EQ(p.output.find('\n'), std::string::npos) << p.output;
      if (text == " 7") {
        continue;  // blanks around a value in the file are trimmed
      }
      std::string path = dir.Sub(std::string(r.name) + ".conf");
      std::ofstream(path) << "\n" << r.name << " = " << text << "\n";
      p = Parse({"--config", path.c_str()});
      EXPECT_EQ(p.exit_code, 2) << r.name << "=" << text << " in the file";
      EXPECT_NE(p.output.find(path + " line 2: " + option + ": must be an integer within " + range),
                std::string::npos)
          << p.output;
    }
    for (uint64_t good : {r.min, r.max}) {
      std::string text = std::to_string(good);
      std::vector<const char*> args = {option.c_str(), text.c_str()};
      // The two ban cooldowns are also checked against each other (app/config_bans.h): the
      // other one at its widest lets each take its whole range.
      if (option == "--ban-cooldown-seconds") {
        args.insert(args.end(), {"--ban-max-cooldown-seconds", "604800"});
      } else if (option == "--ban-max-cooldown-seconds") {
        args.insert(args.end(), {"--ban-cooldown-seconds", "1"});
      }
      ParsedArgs p = Parse(args);
      EXPECT_TRUE(p.config.has_value()) << option << "=" << text << ": " << p.output;
    }
  }
  ParsedArgs p = Parse({"--max-body-bytes", "1073741824", "--max-connections", "1000000"});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->max_body_bytes, uint64_t{1} << 30);
  EXPECT_EQ(p.config->max_connections, 1'000'000u);
  EXPECT_EQ(Parse({"--max-keys", "3000000000"}).exit_code, 2);
}

// Issue 23.5: command line > environment > file, for the tokens and the data directory.
TEST(Config, PrecedenceIsCommandLineThenEnvironmentThenFile) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("t-file")) << "from-token-file\n";
  std::ofstream(dir.Sub("t-cli-file")) << "from-cli-token-file\n";
  struct Row {
    bool cli, env, file;
    const char* want;
  };
  // Every combination of the three places giving --admin-token (and likewise data-dir).
  for (Row row : {Row{false, false, false, ""}, Row{true, false, false, "cli"},
                  Row{false, true, false, "env"}, Row{false, false, true, "file"},
                  Row{true, true, false, "cli"}, Row{true, false, true, "cli"},
                  Row{false, true, true, "env"}, Row{true, true, true, "cli"}}) {
    std::string conf = dir.Sub("p.conf");
    std::ofstream(conf) << (row.file ? "admin-token = file\ninternal-token = file\n"
                                       "data-dir = /from/file\n"
                                     : "");
    std::vector<const char*> args = {"--config", conf.c_str()};
    if (row.cli) {
      args.insert(args.end(),
                  {"--admin-token", "cli", "--internal-token", "cli", "--data-dir", "/from/cli"});
    }
    if (row.env) {
      setenv("TALLYD_ADMIN_TOKEN", "env", 1);
      setenv("TALLYD_INTERNAL_TOKEN", "env", 1);
      setenv("STATE_DIRECTORY", "/from/env", 1);
    }
    ParsedArgs p = Parse(args);
    unsetenv("TALLYD_ADMIN_TOKEN");
    unsetenv("TALLYD_INTERNAL_TOKEN");
    unsetenv("STATE_DIRECTORY");
    std::string label = std::string("cli=") + (row.cli ? "1" : "0") +
                        " env=" + (row.env ? "1" : "0") + " file=" + (row.file ? "1" : "0");
    ASSERT_TRUE(p.config.has_value()) << label << ": " << p.output;
    EXPECT_EQ(p.config->admin_token, row.want) << label;
    EXPECT_EQ(p.config->internal_token, row.want) << label;
    std::string want_dir =
        std::string(row.want).empty() ? "./tallyd-data" : std::string("/from/") + row.want;
    EXPECT_EQ(p.config->data_dir, want_dir) << label;
  }
  // Token files: the command line's wins over the file's.
  std::string conf = dir.Sub("f.conf");
  std::ofstream(conf) << "admin-token-file = " << dir.Sub("t-file") << "\n";
  ParsedArgs p = Parse({"--config", conf.c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->admin_token, "from-token-file");
  std::string cli_file = dir.Sub("t-cli-file");
  p = Parse({"--config", conf.c_str(), "--admin-token-file", cli_file.c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->admin_token, "from-cli-token-file");
  // Other options: the command line wins over the file.
  std::ofstream(conf) << "max-connections = 7\nmetric-prefix = fromfile\n";
  p = Parse({"--config", conf.c_str(), "--max-connections", "9"});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->max_connections, 9u);
  EXPECT_EQ(p.config->metric_prefix, "fromfile");
}

// Issue 23.5: a token and a token file for the same role, from any two places, is exit 2.
TEST(Config, TokenAndTokenFileForOneRoleIsAnError) {
  testing::TempDir dir;
  std::string token_file = dir.Sub("token");
  std::ofstream(token_file) << "from-token-file\n";
  std::string conf_file = dir.Sub("file.conf");
  std::ofstream(conf_file) << "admin-token-file = " << token_file << "\n";
  std::string conf_token = dir.Sub("token.conf");
  std::ofstream(conf_token) << "admin-token = in-file\n";
  std::string conf_both = dir.Sub("both.conf");
  std::ofstream(conf_both) << "admin-token = in-file\nadmin-token-file = " << token_file << "\n";
  auto refused = [](ParsedArgs p, const char* label) {
    EXPECT_EQ(p.exit_code, 2) << label << ": " << p.output;
    EXPECT_NE(p.output.find("--admin-token and --admin-token-file are both given"),
              std::string::npos)
        << label << ": " << p.output;
    EXPECT_EQ(p.output.find("in-file"), std::string::npos) << p.output;
    EXPECT_EQ(p.output.find('\n'), std::string::npos) << p.output;
  };
  // The case from the issue: the file's token file used to beat the command line's token.
  refused(Parse({"--config", conf_file.c_str(), "--admin-token", "cli"}), "cli token + ini file");
  refused(Parse({"--admin-token", "cli", "--admin-token-file", token_file.c_str()}), "cli both");
  refused(Parse({"--config", conf_token.c_str(), "--admin-token-file", token_file.c_str()}),
          "ini token + cli file");
  refused(Parse({"--config", conf_both.c_str()}), "ini both");
  setenv("TALLYD_ADMIN_TOKEN", "env", 1);
  ParsedArgs env_and_file = Parse({"--admin-token-file", token_file.c_str()});
  unsetenv("TALLYD_ADMIN_TOKEN");
  refused(env_and_file, "env token + cli file");
  // An explicitly empty token would silently turn auth off.
  ParsedArgs empty = Parse({"--admin-token", ""});
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_NE(empty.output.find("--admin-token: must not be empty"), std::string::npos);
}

// Issue 23.9: a token file must be a regular file of at most 4 KiB; a FIFO never blocks.
TEST(Config, TokenFilesMustBeSmallRegularFiles) {
  testing::TempDir dir;
  std::string fifo = dir.Sub("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto parsing = std::async(std::launch::async, [&] {
    return Parse({"--admin-token-file", fifo.c_str()});
  });
  if (parsing.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "reading a FIFO as a token file blocks";
    int w = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // release the reader: EOF
    close(w);
  }
  ParsedArgs p = parsing.get();
  EXPECT_EQ(p.exit_code, 2) << p.output;
  EXPECT_NE(p.output.find("--admin-token-file: '" + fifo + "' is not a regular file"),
            std::string::npos)
      << p.output;

  p = Parse({"--internal-token-file", dir.path().c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("is not a regular file"), std::string::npos) << p.output;

  std::string big = dir.Sub("big");
  std::ofstream(big) << "token\n" << std::string(4096, 'x');
  p = Parse({"--admin-token-file", big.c_str()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("is larger than 4096 bytes"), std::string::npos) << p.output;
  EXPECT_EQ(p.output.find('\n'), std::string::npos);

  std::string exact = dir.Sub("exact");
  std::ofstream(exact) << "token \t\r\n" << std::string(4096 - 9, 'x');
  p = Parse({"--admin-token-file", exact.c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->admin_token, "token");
}

// Issue 23.9: the prefix must be a statsd name that lines can match.
TEST(Config, MetricPrefixMustBeAStatsdName) {
  for (const char* good : {"apikey", "a", "my-app.api_key", "A.B.C9"}) {
    ParsedArgs p = Parse({"--metric-prefix", good});
    EXPECT_TRUE(p.config.has_value()) << good << ": " << p.output;
  }
  std::string long_prefix(65, 'a');
  for (std::string bad :
       {std::string("api\x01key"), std::string("api\tkey"), std::string("a\x7f"), std::string(".a"),
        std::string("a."), std::string("a..b"), std::string("a b"), std::string("caf\xc3\xa9"),
        std::string("a/b"), std::string(""), long_prefix}) {
    ParsedArgs p = Parse({"--metric-prefix", bad.c_str()});
    EXPECT_EQ(p.exit_code, 2) << bad;
    EXPECT_NE(p.output.find("--metric-prefix: must be"), std::string::npos) << p.output;
  }
  EXPECT_TRUE(Parse({"--metric-prefix", std::string(64, 'a').c_str()}).config.has_value());
}

}  // namespace
}  // namespace tally::daemon

namespace tally::daemon {
namespace {

// An empty $TALLYD_*_TOKEN is exit 2, as an empty --*-token is: never "no token".
TEST(Config, EmptyTokenEnvironmentVariableIsExitTwo) {
  for (const char* env : {"TALLYD_ADMIN_TOKEN", "TALLYD_INTERNAL_TOKEN"}) {
    setenv(env, "", 1);
    ParsedArgs p = Parse({});
    unsetenv(env);
    EXPECT_FALSE(p.config.has_value()) << env;
    EXPECT_EQ(p.exit_code, 2) << env;
    EXPECT_NE(p.output.find(std::string("$") + env), std::string::npos) << p.output;
    EXPECT_EQ(p.output.find('\n'), std::string::npos) << p.output;
  }
}

// Options are never guessed from a prefix, and a positional argument is exit 2 naming it.
TEST(Config, NoAbbreviatedOptionsAndNoPositionalArguments) {
  testing::TempDir dir;
  const std::string token_file = dir.Sub("t");
  std::ofstream(token_file) << "tok\n";
  for (std::vector<const char*> args :
       {std::vector<const char*>{"--flush", "100"},
        std::vector<const char*>{"--internal-token-f", token_file.c_str()},
        std::vector<const char*>{"--max-conn", "5"}}) {
    ParsedArgs p = Parse(args);
    EXPECT_FALSE(p.config.has_value()) << args[0];
    EXPECT_EQ(p.exit_code, 2) << args[0];
  }
  ParsedArgs p = Parse({"--data-dir", "d", "extra-arg"});
  EXPECT_FALSE(p.config.has_value());
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.output.find("unexpected argument 'extra-arg'"), std::string::npos) << p.output;
  p = Parse({"extra-arg", "--data-dir", "d"});
  EXPECT_EQ(p.exit_code, 2) << p.output;
  p = Parse({"--flush-interval-ms=100"});  // the full name, adjacent value: still fine
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->flush_interval_ms, 100u);
}

// A token from any source is 1..4096 visible ASCII characters once its trailing newline and
// blanks are trimmed; anything else is exit 2, one line, the token not echoed.
TEST(Config, TokensMustBeVisibleAscii) {
  testing::TempDir dir;
  const std::string secret = "Zq9secret";
  struct Bad {
    const char* label;
    std::string text;
  };
  std::vector<Bad> bad = {
      {"leading blanks", "  " + secret},
      {"inner space", secret + " x"},
      {"NUL", secret + std::string(1, '\0') + "x"},
      {"tab inside", secret + "\tx"},
      {"escape", secret + "\x1b[0m"},
      {"DEL", secret + "\x7f"},
      {"high byte", secret + "\xc3\xa9"},
      {"too long", secret + std::string(4096, 'a')},
  };
  for (const Bad& b : bad) {
    std::string path = dir.Sub("tok");
    std::ofstream(path, std::ios::trunc | std::ios::binary) << b.text;
    bool fits_argv = b.text.find('\0') == std::string::npos;
    std::vector<std::vector<const char*>> runs = {{"--admin-token-file", path.c_str()}};
    if (fits_argv) {
      runs.push_back({"--internal-token", b.text.c_str()});
    }
    for (const auto& args : runs) {
      ParsedArgs p = Parse(args);
      EXPECT_FALSE(p.config.has_value()) << b.label << " " << args[0];
      EXPECT_EQ(p.exit_code, 2) << b.label << " " << args[0];
      EXPECT_EQ(p.output.find(secret), std::string::npos) << b.label << ": " << p.output;
      EXPECT_EQ(p.output.find('\n'), std::string::npos) << b.label << ": " << p.output;
    }
    if (fits_argv) {
      setenv("TALLYD_ADMIN_TOKEN", b.text.c_str(), 1);
      ParsedArgs p = Parse({});
      unsetenv("TALLYD_ADMIN_TOKEN");
      EXPECT_EQ(p.exit_code, 2) << b.label << " env";
      EXPECT_EQ(p.output.find(secret), std::string::npos) << b.label << ": " << p.output;
    }
  }
  // Trailing newline (LF or CRLF) and blanks are trimmed; 4096 characters fit.
  for (std::string text :
       {secret + "\n", secret + "\r\n", secret + "  \t\n\n", secret + "\nsecond line\n"}) {
    std::ofstream(dir.Sub("ok"), std::ios::trunc | std::ios::binary) << text;
    ParsedArgs p = Parse({"--admin-token-file", dir.Sub("ok").c_str()});
    ASSERT_TRUE(p.config.has_value()) << p.output;
    EXPECT_EQ(p.config->admin_token, secret);
  }
  std::string longest(4096, '~');
  ParsedArgs p = Parse({"--admin-token", longest.c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->admin_token, longest);
}

}  // namespace
}  // namespace tally::daemon
