// --wal-recovery and --checkpoint-root: parsing, the systemd default, and the StoreOptions
// the daemon opens the store with.
#include "daemon/app/store_log.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "daemon/app/config.h"
#include "tests/support/temp_dir.h"

namespace tally::daemon {
namespace {

ParsedArgs Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tallyd");
  return ParseArgs(static_cast<int>(args.size()), args.data());
}

TEST(StoreLog, WalRecoveryIsStrictUnlessPointInTimeIsAskedFor) {
  ParsedArgs p = Parse({});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->wal_recovery, "strict");
  EXPECT_EQ(StoreOptionsFor(*p.config).wal_recovery, persistence::WalRecovery::kStrict);
  EXPECT_TRUE(StoreOptionsFor(*p.config).on_event);

  p = Parse({"--wal-recovery", "point-in-time"});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(StoreOptionsFor(*p.config).wal_recovery, persistence::WalRecovery::kPointInTime);
  EXPECT_NE(p.config->Redacted().find("wal-recovery=point-in-time"), std::string::npos);

  for (const char* bad : {"", "skip", "POINT-IN-TIME", "tolerate"}) {
    p = Parse({"--wal-recovery", bad});
    EXPECT_FALSE(p.config.has_value()) << bad;
    EXPECT_EQ(p.exit_code, 2) << bad;
    EXPECT_NE(p.output.find("--wal-recovery"), std::string::npos) << p.output;
  }
}

TEST(StoreLog, CheckpointRootMustExistAndDefaultsToTheUnitsStateDirectory) {
  testing::TempDir dir;
  ParsedArgs p = Parse({"--checkpoint-root", dir.path().c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->checkpoint_root, dir.path());
  for (const char* bad : {"", "relative/dir", "/no/such/dir/anywhere"}) {
    p = Parse({"--checkpoint-root", bad});
    EXPECT_EQ(p.exit_code, 2) << bad;
    EXPECT_NE(p.output.find("--checkpoint-root"), std::string::npos) << p.output;
  }

  p = Parse({});
  ASSERT_TRUE(p.config.has_value());
  EXPECT_EQ(p.config->checkpoint_root, "");  // outside systemd: unrestricted
  setenv("STATE_DIRECTORY", "/var/lib/tallyd:/var/lib/tallyd-checkpoints", 1);
  p = Parse({});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->checkpoint_root, "/var/lib/tallyd-checkpoints");
  p = Parse({"--checkpoint-root", dir.path().c_str()});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->checkpoint_root, dir.path());  // given: it wins
  setenv("STATE_DIRECTORY", "/var/lib/tallyd", 1);
  p = Parse({});
  ASSERT_TRUE(p.config.has_value()) << p.output;
  EXPECT_EQ(p.config->checkpoint_root, "");
  unsetenv("STATE_DIRECTORY");
}

}  // namespace
}  // namespace tally::daemon
