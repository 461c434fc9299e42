// --postgres-url, --postgres-password-file, --postgres-create-schema: parsed into the Config,
// bad combinations and values exit 2 naming the option, secrets never echoed.
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

TEST(ConfigPostgres, OffByDefault) {
  ParsedArgs p = Parse({});
  ASSERT_TRUE(p.config);
  EXPECT_TRUE(p.config->postgres.url.empty());
  EXPECT_FALSE(p.config->postgres.create_schema);
}

TEST(ConfigPostgres, UrlPasswordFileAndCreateSchema) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("pw")) << "s3cret\n";
  std::string pw = dir.Sub("pw");
  ParsedArgs p = Parse({"--postgres-url", "postgresql://tally@db.example/ez",
                        "--postgres-password-file", pw.c_str(), "--postgres-create-schema"});
  ASSERT_TRUE(p.config) << p.output;
  EXPECT_EQ(p.config->postgres.url, "postgresql://tally@db.example/ez");
  EXPECT_EQ(p.config->postgres.password, "s3cret");
  EXPECT_TRUE(p.config->postgres.create_schema);
  std::string redacted = p.config->Redacted();
  EXPECT_NE(redacted.find("postgres-url=(set)"), std::string::npos);
  EXPECT_EQ(redacted.find("db.example"), std::string::npos);  // a URL may hold a password
  EXPECT_EQ(redacted.find("s3cret"), std::string::npos);
}

TEST(ConfigPostgres, TheConfigFileTakesTheSameNames) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("c.conf")) << "postgres-url = host=/run/pg dbname=ez\n"
                                      "postgres-create-schema = true\n";
  std::string conf = dir.Sub("c.conf");
  ParsedArgs p = Parse({"--config", conf.c_str()});
  ASSERT_TRUE(p.config) << p.output;
  EXPECT_EQ(p.config->postgres.url, "host=/run/pg dbname=ez");
  EXPECT_TRUE(p.config->postgres.create_schema);
}

TEST(ConfigPostgres, BadValuesExitTwoNamingTheOption) {
  testing::TempDir dir;
  std::string missing = dir.Sub("nope");
  struct Case {
    std::vector<const char*> args;
    const char* starts;
  } cases[] = {
      {{"--postgres-password-file", missing.c_str()}, "tallyd: --postgres-password-file: needs"},
      {{"--postgres-create-schema"}, "tallyd: --postgres-create-schema: needs --postgres-url"},
      {{"--postgres-url", "postgresql://u:hunter2@h/db?nosuch=1"},
       "tallyd: --postgres-url: not a libpq connection string"},
      {{"--postgres-url", "host=h", "--postgres-password-file", missing.c_str()},
       "tallyd: --postgres-password-file: '"},
      {{"--postgres-url", "host=h", "--postgres-create-schema=maybe"},
       "tallyd: the argument ('maybe') for option '--postgres-create-schema' is invalid"},
  };
  for (const Case& c : cases) {
    ParsedArgs p = Parse(c.args);
    EXPECT_FALSE(p.config);
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_EQ(p.output.rfind(c.starts, 0), 0u) << p.output;
    EXPECT_EQ(p.output.find("hunter2"), std::string::npos);
    EXPECT_EQ(p.output.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace tally::daemon
