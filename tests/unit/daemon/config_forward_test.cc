// The forwarding options (daemon/app/config_forward.h): the URL's parts, the source id, the
// retry range; a bad one is exit 2 naming the option.
#include <gtest/gtest.h>

#include <fstream>

#include "daemon/app/config.h"
#include "tests/support/temp_dir.h"

namespace tally::daemon {
namespace {

ParsedArgs Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tallyd");
  return ParseArgs(static_cast<int>(args.size()), args.data());
}

TEST(ConfigForward, OffByDefaultWithTheIssuesDefaults) {
  ParsedArgs p = Parse({});
  ASSERT_TRUE(p.config);
  EXPECT_TRUE(p.config->forward.url.empty());
  EXPECT_EQ(p.config->forward.outbox_max_bytes, uint64_t{1} << 30);
  EXPECT_EQ(p.config->forward.retry_min_ms, 1000u);
  EXPECT_EQ(p.config->forward.retry_max_ms, 60000u);
  EXPECT_EQ(p.config->forward.outbox_batch_keys, 20000u);
  p = Parse({"--outbox-batch-keys", "500"});
  ASSERT_TRUE(p.config) << p.output;
  EXPECT_EQ(p.config->forward.outbox_batch_keys, 500u);
}

TEST(ConfigForward, TheUrlIsSplitAndTheTokenReadButNeverLogged) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("t")) << "secret-upstream\n";
  const std::string token = dir.Sub("t");
  ParsedArgs p = Parse({"--forward-url", "https://central.example:8443/tally/",
                        "--forward-token-file", token.c_str(), "--source-id", "edge-1"});
  ASSERT_TRUE(p.config) << p.output;
  const ForwardConfig& f = p.config->forward;
  EXPECT_TRUE(f.tls);
  EXPECT_EQ(f.host, "central.example");
  EXPECT_EQ(f.port, "8443");
  EXPECT_EQ(f.base_path, "/tally");
  EXPECT_EQ(f.token, "secret-upstream");
  EXPECT_EQ(p.config->Redacted().find("secret-upstream"), std::string::npos);
  p = Parse({"--forward-url", "http://127.0.0.1"});
  ASSERT_TRUE(p.config);
  EXPECT_EQ(p.config->forward.port, "80");
  EXPECT_EQ(p.config->forward.base_path, "");
}

TEST(ConfigForward, BadValuesExitTwoNamingTheOption) {
  for (std::vector<const char*> args : std::vector<std::vector<const char*>>{
           {"--forward-url", "ftp://x"},
           {"--forward-url", "http://"},
           {"--forward-url", "http://x/?q=1"},
           {"--forward-url", "http://u:p@x/"},
           {"--forward-token-file", "/nonexistent"},
           {"--forward-url", "http://x", "--forward-ca-file", "/etc/hostname"},
           {"--source-id", "a:b"},
           {"--outbox-max-bytes", "10"},
           {"--outbox-batch-keys", "99"},
           {"--outbox-batch-keys", "1000001"},
       }) {
    ParsedArgs p = Parse(args);
    EXPECT_FALSE(p.config) << args[0] << " " << args[1];
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_NE(p.output.find("--"), std::string::npos) << p.output;
  }
}

}  // namespace
}  // namespace tally::daemon
