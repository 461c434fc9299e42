// Configuration through the real binary: bad options exit 2 with one line naming the option,
// --help and --version, the config file and its precedence, listeners turned off,
// $STATE_DIRECTORY, and the effective configuration logged once with tokens redacted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/support/ops_process.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// Exit code 2, exactly one line, naming `option`.
void ExpectRefused(const std::vector<std::string>& args, const std::string& option) {
  std::string output;
  int code = RunTallyd(args, &output);
  std::string joined;
  for (const std::string& a : args) {
    joined += a + " ";
  }
  EXPECT_EQ(code, 2) << joined << "\n" << output;
  EXPECT_EQ(CountOf(output, "\n"), 1) << joined << "\n" << output;
  EXPECT_NE(output.find(option), std::string::npos) << joined << "\n" << output;
}

TEST(OpsConfig, BadOptionsExitTwoWithOneLineNamingTheOption) {
  TempDir dir;
  ExpectRefused({"--no-such-option"}, "--no-such-option");
  ExpectRefused({"--flush-interval-ms", "abc"}, "--flush-interval-ms");
  ExpectRefused({"--flush-interval-ms", "5"}, "--flush-interval-ms");
  ExpectRefused({"--max-keys", "0"}, "--max-keys");
  ExpectRefused({"--io-threads", "-1"}, "--io-threads");
  ExpectRefused({"--udp-rcvbuf", "12"}, "--udp-rcvbuf");
  ExpectRefused({"--udp-listen", "localhost:8125"}, "--udp-listen");
  ExpectRefused({"--http-listen", "127.0.0.1:99999"}, "--http-listen");
  ExpectRefused({"--log-level", "verbose"}, "--log-level");
  ExpectRefused({"--metric-prefix", "a|b"}, "--metric-prefix");
  ExpectRefused({"--http-listen", "0.0.0.0:8126"}, "--http-listen");
  ExpectRefused({"--admin-token-file", dir.Sub("missing")}, "--admin-token-file");
  ExpectRefused({"--config", dir.Sub("missing.conf")}, "--config");
  ExpectRefused({"--config", dir.path()}, "--config");
  ExpectRefused({"--data-dir"}, "--data-dir");

  WriteFile(dir.Sub("unknown.conf"), "flush-interval-ms = 500\nfrobnicate = 1\n");
  ExpectRefused({"--config", dir.Sub("unknown.conf")}, "frobnicate");
  WriteFile(dir.Sub("bad.conf"), "max-keys = lots\n");
  ExpectRefused({"--config", dir.Sub("bad.conf")}, "max-keys");
}

TEST(OpsConfig, HelpListsEveryOptionWithItsDefaultAndVersionPrintsIt) {
  std::string help;
  ASSERT_EQ(RunTallyd({"--help"}, &help), 0);
  for (const char* option :
       {"--config", "--data-dir", "--udp-listen", "--http-listen", "--unix-socket",
        "--flush-interval-ms", "--udp-rcvbuf", "--io-threads", "--max-keys", "--max-body-bytes",
        "--max-connections", "--metric-prefix", "--log-level", "--admin-token",
        "--admin-token-file", "--internal-token", "--internal-token-file", "--version"}) {
    EXPECT_NE(help.find(option), std::string::npos) << option;
  }
  for (const char* shown :
       {"(=./tallyd-data)", "(=127.0.0.1:8125)", "(=127.0.0.1:8126)", "(=off)", "(=1000)",
        "(=8388608)", "(=0)", "(=1000000)", "(=apikey)", "(=info)"}) {
    EXPECT_NE(help.find(shown), std::string::npos) << shown;
  }
  std::string version;
  ASSERT_EQ(RunTallyd({"--version"}, &version), 0);
  EXPECT_EQ(version.rfind("tallyd ", 0), 0u) << version;
  EXPECT_EQ(CountOf(version, "\n"), 1);
}

TEST(OpsConfig, ConfigFileAppliesAndTheCommandLineWins) {
  TempDir dir;
  uint16_t udp = FreePort();
  uint16_t http = FreePort();
  WriteFile(dir.Sub("tallyd.conf"),
            "# comment\nflush-interval-ms = 2500\nmax-keys = 7\nhttp-listen = 127.0.0.1:" +
                std::to_string(http) + "\nudp-listen = 127.0.0.1:" + std::to_string(udp) +
                "\ndata-dir = " + dir.Sub("data") + "\nadmin-token = from-the-file\n");
  TallydLaunch launch;
  launch.args = {"--config", dir.Sub("tallyd.conf"), "--max-keys", "9", "--io-threads", "1"};
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  EXPECT_EQ(ScrapeMetric(http, "tallyd_flush_interval_seconds"), 2.5);
  EXPECT_EQ(ScrapeMetric(http, "tallyd_keys_max"), 9);
  // The token from the file is in force.
  EXPECT_EQ(Http(http, "GET", "/admin/apikey-stats/summary").status, 401);
  EXPECT_EQ(Http(http, "GET", "/admin/apikey-stats/summary", {},
                 {{"Authorization", "Bearer from-the-file"}})
                .status,
            200);
  EXPECT_EQ(tallyd.Stop(), 0);
  std::string log = tallyd.Log();
  EXPECT_EQ(CountOf(log, "starting: "), 1) << log;
  EXPECT_NE(log.find("max-keys=9 "), std::string::npos) << log;
  EXPECT_NE(log.find("flush-interval-ms=2500 "), std::string::npos) << log;
}

TEST(OpsConfig, EffectiveConfigIsLoggedOnceWithTokensRedacted) {
  TempDir dir;
  WriteFile(dir.Sub("internal-token"), "internal-s3cret\n");
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = {"--data-dir",
                 dir.Sub("data"),
                 "--udp-listen",
                 "off",
                 "--http-listen",
                 "127.0.0.1:" + std::to_string(http),
                 "--admin-token",
                 "admin-s3cret",
                 "--internal-token-file",
                 dir.Sub("internal-token"),
                 "--log-level",
                 "debug"};
  launch.wait_http_port = http;
  TallydChild tallyd(launch, dir.Sub("log"));
  EXPECT_EQ(Http(http, "POST", "/v1/ingest", "apikey.1.success:1|c",
                 {{"X-Internal-Token", "internal-s3cret"}})
                .status,
            202);
  EXPECT_EQ(tallyd.Stop(), 0);
  std::string log = tallyd.Log();
  EXPECT_EQ(CountOf(log, "starting: "), 1) << log;
  EXPECT_NE(log.find("admin-token=(set)"), std::string::npos) << log;
  EXPECT_NE(log.find("internal-token=(set)"), std::string::npos) << log;
  EXPECT_NE(log.find("udp-listen=off"), std::string::npos) << log;
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
}

TEST(OpsConfig, EachListenerCanBeTurnedOff) {
  TempDir dir;
  // UDP off: HTTP alone serves.
  {
    uint16_t http = FreePort();
    TallydLaunch launch;
    launch.args = {"--data-dir", dir.Sub("a"),    "--udp-listen",
                   "off",        "--http-listen", "127.0.0.1:" + std::to_string(http)};
    launch.wait_http_port = http;
    TallydChild tallyd(launch, dir.Sub("log-a"));
    EXPECT_EQ(tallyd.Stop(), 0);
    EXPECT_EQ(tallyd.Log().find("[udp] listening"), std::string::npos) << tallyd.Log();
  }
  // HTTP off: UDP and the Unix socket count; the totals survive into a run with HTTP on.
  {
    uint16_t udp = FreePort();
    TallydLaunch launch;
    launch.args = {
        "--data-dir",    dir.Sub("b"), "--udp-listen",  "127.0.0.1:" + std::to_string(udp),
        "--http-listen", "off",        "--unix-socket", dir.Sub("sock")};
    TallydChild tallyd(launch, dir.Sub("log-b"));
    ASSERT_TRUE(tallyd.WaitForLog("] ready")) << tallyd.Log();
    SendUdp(udp, "apikey.4.success:6|c");
    // Read by the receiver (HTTP is off, so no /metrics): the stop then flushes it.
    ASSERT_TRUE(WaitUntil([&] { return ReceiveQueueBytes("udp", udp) == 0; }, 10000));
    EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
    EXPECT_EQ(tallyd.Log().find("[http] listening"), std::string::npos) << tallyd.Log();
  }
  TallydProcess check(dir.Sub("b"));
  EXPECT_NE(Http(check.http_port(), "GET", "/admin/apikey-stats/summary")
                .body.find("\"total_requests\":6"),
            std::string::npos);
  // Everything off and nothing inherited: nothing to do, refused at start.
  std::string output;
  EXPECT_EQ(RunTallyd({"--data-dir", dir.Sub("c"), "--udp-listen", "off", "--http-listen", "off"},
                      &output),
            1);
  EXPECT_NE(output.find("every listener is off"), std::string::npos) << output;
}

TEST(OpsConfig, DataDirComesFromStateDirectoryUnlessGiven) {
  TempDir dir;
  uint16_t http = FreePort();
  TallydLaunch launch;
  launch.args = {"--udp-listen", "off", "--http-listen", "127.0.0.1:" + std::to_string(http)};
  launch.env = {{"STATE_DIRECTORY", dir.Sub("state") + ":" + dir.Sub("checkpoints")}};
  launch.wait_http_port = http;
  {
    TallydChild tallyd(launch, dir.Sub("log1"));
    EXPECT_EQ(tallyd.Stop(), 0);
    EXPECT_NE(tallyd.Log().find("data-dir=" + dir.Sub("state") + " "), std::string::npos)
        << tallyd.Log();
  }
  launch.args.insert(launch.args.end(), {"--data-dir", dir.Sub("explicit")});
  TallydChild tallyd(launch, dir.Sub("log2"));
  EXPECT_EQ(tallyd.Stop(), 0);
  EXPECT_NE(tallyd.Log().find("data-dir=" + dir.Sub("explicit") + " "), std::string::npos)
      << tallyd.Log();
}

// `args` with every listener off and a data directory in `dir`: where an old build accepted
// a bad option, it then exits 1 (nothing to listen on) instead of running on default ports.
std::vector<std::string> Quiet(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.end(),
              {"--data-dir", dir.Sub("quiet"), "--udp-listen", "off", "--http-listen", "off"});
  return args;
}

// Issue 23.1: numbers never wrap; 13: --max-keys past its bound is exit 2, not an abort.
TEST(OpsConfig, NumericOptionsOutOfRangeExitTwoNamingTheRange) {
  TempDir dir;
  ExpectRefused(Quiet(dir, {"--max-body-bytes=-1"}),
                "--max-body-bytes: must be an integer within 1024..");
  ExpectRefused(Quiet(dir, {"--max-body-bytes", "1073741825"}), "--max-body-bytes");
  ExpectRefused(Quiet(dir, {"--max-connections=-1"}),
                "--max-connections: must be an integer within 1..");
  ExpectRefused(Quiet(dir, {"--flush-interval-ms=-4294967000"}), "--flush-interval-ms");
  ExpectRefused(Quiet(dir, {"--max-keys", "3000000000"}),
                "--max-keys: must be an integer within 1..");
  ExpectRefused(Quiet(dir, {"--udp-rcvbuf", "2147483648"}), "--udp-rcvbuf");
  WriteFile(dir.Sub("wrap.conf"), "max-body-bytes = -1\n");
  ExpectRefused(Quiet(dir, {"--config", dir.Sub("wrap.conf")}), "line 1: --max-body-bytes");
}

// Issue 23.5: the file's token file no longer beats the command line's token: both is exit 2.
TEST(OpsConfig, TokenAndTokenFileForOneRoleExitTwo) {
  TempDir dir;
  WriteFile(dir.Sub("token"), "from-the-file\n");
  WriteFile(dir.Sub("tallyd.conf"), "admin-token-file = " + dir.Sub("token") + "\n");
  ExpectRefused(Quiet(dir, {"--config", dir.Sub("tallyd.conf"), "--admin-token", "cli"}),
                "--admin-token and --admin-token-file are both given");
}

// Issue 23.9: a FIFO as a token file is refused at once instead of hanging start-up; a big
// token file is refused without being read.
TEST(OpsConfig, TokenFileMustBeASmallRegularFile) {
  TempDir dir;
  ASSERT_EQ(mkfifo(dir.Sub("fifo").c_str(), 0600), 0);
  TallydLaunch launch;
  launch.args = Quiet(dir, {"--admin-token-file", dir.Sub("fifo")});
  {
    TallydChild tallyd(launch, dir.Sub("log"));
    EXPECT_EQ(tallyd.WaitExit(10000), 2) << tallyd.Log();
    EXPECT_NE(tallyd.Log().find("is not a regular file"), std::string::npos) << tallyd.Log();
  }
  {
    std::ofstream big(dir.Sub("big"));
    big << "token\n" << std::string(300 * 1024, 'x');
  }
  ExpectRefused(Quiet(dir, {"--admin-token-file", dir.Sub("big")}), "is larger than 4096 bytes");
  ExpectRefused(Quiet(dir, {"--metric-prefix", "api\x01key"}), "--metric-prefix");
}

// Issue 23.10: a malformed line of the file is not echoed; file, line and option are named.
TEST(OpsConfig, MalformedFileLineIsNotEchoed) {
  TempDir dir;
  WriteFile(dir.Sub("tallyd.conf"), "log-level = info\nadmin-token: SECRET\n");
  std::string output;
  EXPECT_EQ(RunTallyd({"--config", dir.Sub("tallyd.conf")}, &output), 2);
  EXPECT_EQ(output.find("SECRET"), std::string::npos) << output;
  EXPECT_NE(output.find(dir.Sub("tallyd.conf") + " line 2 (admin-token)"), std::string::npos)
      << output;
}

}  // namespace
}  // namespace tally::testing
