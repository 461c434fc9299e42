#include "persistence/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "persistence/record_codec.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using testing::TempDir;

TEST(Store, FlushThenReadBackAndReopen) {
  TempDir dir;
  {
    auto store = Store::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    std::vector<core::KeyDelta> deltas = {{1, 10, 0}, {2, 7, 3}, {1, 0, 5}};
    auto result = (*store)->ApplyFlush(&deltas);
    ASSERT_TRUE(result.ok()) << result.status().message();
    EXPECT_EQ(result->epoch, 1u);
    EXPECT_EQ(result->keys_created, 2u);
    core::Totals sum = (*store)->Summary();
    EXPECT_EQ(sum.total, 25);
    EXPECT_EQ(sum.success, 17);
    EXPECT_EQ(sum.failure, 8);
  }
  auto store = Store::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ((*store)->epoch(), 1u);
  EXPECT_EQ((*store)->Summary().total, 25);
  auto unassigned = (*store)->GroupSummary(kUnassignedGroup);
  ASSERT_TRUE(unassigned.ok());
  EXPECT_EQ(unassigned->success, 17);
  EXPECT_EQ((*store)->live_keys(), 2u);
}

TEST(Store, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir;
  auto first = Store::Open(dir.Sub("db"));
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(dir.Sub("db"));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("locked"), std::string::npos)
      << second.status().message();
}

TEST(Store, AFileInPlaceOfTheDirectoryIsAnError) {
  TempDir dir;
  FILE* f = fopen(dir.Sub("file").c_str(), "w");
  fclose(f);
  auto store = Store::Open(dir.Sub("file"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a directory"), std::string::npos);
}

TEST(Store, AMissingDirectoryIsCreatedPrivate) {
  TempDir dir;
  auto store = Store::Open(dir.Sub("new"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  struct stat st {};
  ASSERT_EQ(stat(dir.Sub("new").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// Writes `value` under `key` in column family `cf` of a closed store's database.
void PutRaw(const std::string& dir, int cf, const std::string& key, const std::string& value) {
  RawDb raw(dir);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Put(cf, key, value));
}

TEST(Store, AnUnknownFormatVersionIsRefusedOnOpen) {
  TempDir dir;
  { ASSERT_TRUE(Store::Open(dir.Sub("db")).ok()); }
  PutRaw(dir.Sub("db"), 4, "format", std::string(1, '\x09'));
  auto store = Store::Open(dir.Sub("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::Status::Code::kCorruption);
  EXPECT_NE(store.status().message().find("unknown database format version 9"), std::string::npos)
      << store.status().message();
}

TEST(Store, AValueWithAnUnknownVersionIsRefusedOnOpen) {
  TempDir dir;
  {
    auto store = Store::Open(dir.Sub("db"));
    ASSERT_TRUE(store.ok());
    std::vector<core::KeyDelta> d = {{5, 1, 0}};
    ASSERT_TRUE((*store)->ApplyFlush(&d).ok());
  }
  ApiKey k;
  k.id = 5;
  std::string value = EncodeKey(k);
  value[0] = 7;
  PutRaw(dir.Sub("db"), 2, IdKey(5), value);
  auto store = Store::Open(dir.Sub("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::Status::Code::kCorruption);
  EXPECT_NE(store.status().message().find("key 5: unknown key format version 7"), std::string::npos)
      << store.status().message();
}

// Opens `dir` in a child process running as user nobody (uid 65534), so permission bits
// apply even when the tests run as root; returns the child's status message.
std::string OpenAsNobody(const std::string& dir) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0) {
      _exit(2);
    }
    auto store = Store::Open(dir);
    std::string msg = store.ok() ? "opened" : store.status().message();
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(store.ok() ? 0 : 1);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 2) << "could not drop privileges";
  return out;
}

TEST(Store, AnUnreadableOrUnwritableDirectoryIsAnError) {
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);  // others may pass, not list
  ASSERT_EQ(mkdir(dir.Sub("noread").c_str(), 0333), 0);
  ASSERT_EQ(mkdir(dir.Sub("nowrite").c_str(), 0555), 0);
  ASSERT_EQ(chmod(dir.Sub("noread").c_str(), 0333), 0);  // umask-proof
  ASSERT_EQ(chmod(dir.Sub("nowrite").c_str(), 0555), 0);
  if (geteuid() == 0) {
    // Root ignores permission bits, so check as nobody, where they hold.
    std::string noread = OpenAsNobody(dir.Sub("noread"));
    EXPECT_NE(noread.find("is not readable: Permission denied"), std::string::npos) << noread;
    std::string nowrite = OpenAsNobody(dir.Sub("nowrite"));
    EXPECT_NE(nowrite.find("is not writable: Permission denied"), std::string::npos) << nowrite;
  } else {
    auto noread = Store::Open(dir.Sub("noread"));
    ASSERT_FALSE(noread.ok());
    EXPECT_NE(noread.status().message().find("is not readable"), std::string::npos);
    auto nowrite = Store::Open(dir.Sub("nowrite"));
    ASSERT_FALSE(nowrite.ok());
    EXPECT_NE(nowrite.status().message().find("is not writable"), std::string::npos);
  }
}

}  // namespace
}  // namespace tally::persistence
