// A damaged write-ahead log: a flipped byte in a record before the last is refused by
// default (WalRecovery::kStrict) with a message naming the file, recovered to the last good
// record only on request (kPointInTime, reported); a torn last record, which a crash in
// the middle of a write leaves, is dropped silently in both modes.
//
// A "crash image" is a copy of the data dir taken while the store is open and idle: its
// live WAL holds every flush (all synced), as after kill -9.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "persistence/store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"
#include "tests/unit/persistence/crash_check.h"

namespace tally::persistence {
namespace {

namespace fs = std::filesystem;
using core::Status;
using testing::CrashDeltas;
using testing::ExpectCrashEpoch;
using testing::TempDir;

constexpr uint64_t kFlushes = 30;

// Applies flushes 1..kFlushes, then `small` flushes of one delta each (small records, many
// to a block), then copies the data dir to `image` with the store open.
void MakeCrashImage(const std::string& db, const std::string& image, uint64_t small = 0) {
  auto store = Store::Open(db);
  ASSERT_TRUE(store.ok()) << store.status().message();
  for (uint64_t e = 1; e <= kFlushes; ++e) {
    std::vector<core::KeyDelta> d = CrashDeltas(e);
    ASSERT_TRUE((*store)->ApplyFlush(&d).ok());
  }
  for (uint64_t i = 0; i < small; ++i) {
    std::vector<core::KeyDelta> d = {{1000 + i, 1, 0}};
    ASSERT_TRUE((*store)->ApplyFlush(&d).ok());
  }
  fs::copy(db, image, fs::copy_options::recursive);
}

std::string LiveLog(const std::string& dir) {
  std::string found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".log" && fs::file_size(entry.path()) > 0) {
      EXPECT_TRUE(found.empty()) << "two non-empty logs in " << dir;
      found = entry.path().string();
    }
  }
  EXPECT_FALSE(found.empty()) << "no WAL in " << dir;
  return found;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Flips one bit inside the payload of a flush record in the middle of the log: the "epoch"
// meta key every flush batch writes, its middle occurrence. Returns the log's name.
std::string FlipMiddleRecord(const std::string& dir) {
  const std::string log = LiveLog(dir);
  std::string bytes = ReadAll(log);
  std::vector<size_t> at;
  for (size_t p = bytes.find("epoch"); p != std::string::npos; p = bytes.find("epoch", p + 1)) {
    at.push_back(p);
  }
  EXPECT_GE(at.size(), kFlushes);
  bytes[at[at.size() / 2] + 2] ^= 0x04;
  WriteAll(log, bytes);
  return fs::path(log).filename().string();
}

struct Events {
  std::mutex mu;
  std::vector<std::pair<StoreEventLevel, std::string>> seen;
  StoreEventFn Fn() {
    return [this](StoreEventLevel level, const std::string& m) {
      std::lock_guard lock(mu);
      seen.emplace_back(level, m);
    };
  }
  bool HasError(const std::string& part) {
    std::lock_guard lock(mu);
    for (const auto& [level, m] : seen) {
      if (level == StoreEventLevel::kError && m.find(part) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
};

TEST(StoreWal, ADamagedRecordBeforeTheLastRefusesToOpenNamingTheFile) {
  TempDir dir;
  MakeCrashImage(dir.Sub("db"), dir.Sub("image"));
  const std::string log = FlipMiddleRecord(dir.Sub("image"));
  auto opened = Store::Open(dir.Sub("image"));
  ASSERT_FALSE(opened.ok()) << "opened at epoch " << (*opened)->epoch() << " of " << kFlushes;
  EXPECT_EQ(opened.status().code(), Status::Code::kCorruption);
  const std::string& m = opened.status().message();
  EXPECT_EQ(m.rfind("write-ahead log damaged", 0), 0u) << m;
  EXPECT_NE(m.find(log), std::string::npos) << m;
  EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;
  // Refusing changed nothing: the same answer again.
  EXPECT_EQ(Store::Open(dir.Sub("image")).status().code(), Status::Code::kCorruption);
}

TEST(StoreWal, PointInTimeRecoveryIsOptInReportedAndLeavesAWholeEpoch) {
  TempDir dir;
  MakeCrashImage(dir.Sub("db"), dir.Sub("image"));
  FlipMiddleRecord(dir.Sub("image"));
  Events events;
  StoreOptions opts;
  opts.wal_recovery = WalRecovery::kPointInTime;
  opts.on_event = events.Fn();
  uint64_t recovered = 0;
  {
    auto opened = Store::Open(dir.Sub("image"), opts);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    Store& store = **opened;
    recovered = store.epoch();
    EXPECT_GT(recovered, 0u);
    EXPECT_LT(recovered, kFlushes);
    ExpectCrashEpoch(store, recovered);
    EXPECT_TRUE(store.health().wal_damage_skipped);
    EXPECT_TRUE(events.HasError("write-ahead log damaged")) << "no error event";
    // Counting goes on from the recovered epoch, and survives another crash.
    std::vector<core::KeyDelta> d = CrashDeltas(recovered + 1);
    ASSERT_TRUE(store.ApplyFlush(&d).ok());
    fs::copy(dir.Sub("image"), dir.Sub("image2"), fs::copy_options::recursive);
  }
  // The damaged log is gone from the second image: a strict open works.
  auto again = Store::Open(dir.Sub("image2"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  ExpectCrashEpoch(**again, recovered + 1);
  EXPECT_FALSE((*again)->health().wal_damage_skipped);
}

// Sets the length of a record in the live log's last 32 KiB block, one with records after
// it, to 65535: past the end of the file, as a torn write would look to RocksDB's reader.
void DamageLengthInLastBlock(const std::string& dir) {
  const std::string log = LiveLog(dir);
  std::string bytes = ReadAll(log);
  const size_t start = (bytes.size() - 1) / 32768 * 32768;
  std::vector<size_t> records;
  for (size_t at = start; at + 7 <= bytes.size();) {
    records.push_back(at);
    at += 7 + (static_cast<uint8_t>(bytes[at + 4]) | static_cast<uint8_t>(bytes[at + 5]) << 8);
  }
  ASSERT_GE(records.size(), 3u) << "too few records in the last block";
  const size_t at = records[records.size() / 2];
  bytes[at + 4] = '\xff';
  bytes[at + 5] = '\xff';
  WriteAll(log, bytes);
}

TEST(StoreWal, ADamagedLengthInTheLastBlockIsNotTakenForATornWrite) {
  TempDir dir;
  constexpr uint64_t kSmall = 40;
  MakeCrashImage(dir.Sub("db"), dir.Sub("image"), kSmall);
  DamageLengthInLastBlock(dir.Sub("image"));
  auto opened = Store::Open(dir.Sub("image"));
  ASSERT_FALSE(opened.ok()) << "opened at epoch " << (*opened)->epoch() << " of "
                            << kFlushes + kSmall;
  EXPECT_EQ(opened.status().code(), Status::Code::kCorruption);
  EXPECT_NE(opened.status().message().find("valid record follows"), std::string::npos)
      << opened.status().message();

  StoreOptions opts;
  opts.wal_recovery = WalRecovery::kPointInTime;
  auto recovered = Store::Open(dir.Sub("image"), opts);
  ASSERT_TRUE(recovered.ok()) << recovered.status().message();
  EXPECT_GT((*recovered)->epoch(), kFlushes);
  EXPECT_LT((*recovered)->epoch(), kFlushes + kSmall);
  EXPECT_TRUE((*recovered)->health().wal_damage_skipped);
  EXPECT_TRUE((*recovered)->Verify().ok());
}

TEST(StoreWal, ATornLastRecordIsACrashNotDamage) {
  TempDir dir;
  MakeCrashImage(dir.Sub("db"), dir.Sub("image"));
  const std::string log = LiveLog(dir.Sub("image"));
  // Cut the last flush's record short, as a crash in the middle of its write does.
  fs::resize_file(log, fs::file_size(log) - 20);
  auto opened = Store::Open(dir.Sub("image"));
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  ExpectCrashEpoch(**opened, kFlushes - 1);
  EXPECT_FALSE((*opened)->health().wal_damage_skipped);
}

size_t NonEmptyLogs(const std::string& dir) {
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    n += entry.path().extension() == ".log" && fs::file_size(entry.path()) > 0 ? 1 : 0;
  }
  return n;
}

// A flush that fills key_totals' memtable switches the small families with it (Db::
// SwitchFullMemtables), so once those memtables are written out the WAL before the switch
// is released: a start after a crash replays only what came after. Without it, the epoch
// and group records each flush adds pinned that WAL up to max_total_wal_size.
TEST(StoreWal, AFullMemtableReleasesTheWalBeforeIt) {
  TempDir dir;
  auto store = Store::Open(dir.Sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::vector<core::KeyDelta> big;
  for (uint64_t k = 1; k <= 600'000; ++k) {
    big.push_back({k, 1, 0});
  }
  ASSERT_TRUE((*store)->ApplyFlush(&big).ok());  // new keys: 16 MiB of totals and more
  std::vector<core::KeyDelta> small = {{7, 2, 1}};
  ASSERT_TRUE((*store)->ApplyFlush(&small).ok());  // in the WAL after the switch
  EXPECT_TRUE(testing::WaitUntil([&] { return NonEmptyLogs(dir.Sub("db")) == 1; }, 60'000))
      << NonEmptyLogs(dir.Sub("db")) << " WAL files hold records";
  fs::copy(dir.Sub("db"), dir.Sub("image"), fs::copy_options::recursive);  // as after kill -9
  auto image = Store::Open(dir.Sub("image"));
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ((*image)->Summary().total, 600'000 + 3);
  EXPECT_EQ((*image)->epoch(), 2u);
}

}  // namespace
}  // namespace tally::persistence
