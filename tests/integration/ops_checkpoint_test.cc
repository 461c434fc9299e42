// Backup: POST /admin/checkpoint under load, then restore by starting a second tallyd on the
// checkpoint. The persistence invariant must hold in the checkpoint: every key's totals add up
// to its group's totals, and the groups to the summary.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "persistence/store.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

using persistence::ApiKey;
using persistence::ProviderGroup;
using persistence::Store;

// Three groups; keys 1..30 spread over them, key 30 deleted (its increments are refused).
void Seed(const std::string& dir) {
  auto store = Store::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status().message();
  for (uint64_t g = 1; g <= 3; ++g) {
    ProviderGroup group;
    group.id = g;
    group.name = "group-" + std::to_string(g);
    group.type = "openai";
    group.base_url = "https://example.invalid/" + std::to_string(g);
    ASSERT_TRUE((*store)->CreateGroup(group).ok());
  }
  for (uint64_t k = 1; k <= 30; ++k) {
    ApiKey key;
    key.id = k;
    key.group_id = k % 3 + 1;
    key.api_key = "sk-" + std::to_string(k);
    ASSERT_TRUE((*store)->CreateKey(key).ok());
  }
  ASSERT_TRUE((*store)->DeleteKey(30).ok());
}

// The invariant, checked on the store itself.
void ExpectInvariant(const Store& store) {
  EXPECT_TRUE(store.Verify().ok()) << store.Verify().message();
  core::Totals all;
  const std::vector<ApiKey> every = store.ListKeys(std::nullopt, std::nullopt).value();
  for (const ApiKey& k : every) {
    EXPECT_TRUE(k.totals.consistent()) << k.id;
    all += k.totals;
  }
  EXPECT_EQ(all, store.Summary());
  core::Totals groups;
  for (const ProviderGroup& g : store.ListGroups()) {
    core::Totals keys;
    const std::vector<ApiKey> in_group = store.ListKeys(g.id, std::nullopt).value();
    for (const ApiKey& k : in_group) {
      keys += k.totals;
    }
    EXPECT_EQ(keys, g.totals) << "group " << g.id;
    groups += g.totals;
  }
  core::Totals unassigned;
  const std::vector<ApiKey> loose =
      store.ListKeys(persistence::kUnassignedGroup, std::nullopt).value();
  for (const ApiKey& k : loose) {
    unassigned += k.totals;
  }
  groups += unassigned;
  EXPECT_EQ(groups, store.Summary());
}

boost::json::object Json(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  return !ec && v.is_object() ? v.as_object() : boost::json::object();
}

TEST(OpsCheckpoint, CheckpointUnderLoadRestoresWithTheInvariant) {
  TempDir dir;
  Seed(dir.Sub("data"));
  const std::string checkpoint = dir.Sub("checkpoint-1");
  core::Totals at_checkpoint;
  {
    TallydProcess tallyd(dir.Sub("data"), {"--flush-interval-ms", "20", "--admin-token",
                                           "adm-token", "--internal-token", "int-token"});
    std::atomic<bool> stop{false};
    // UDP and HTTP load over known keys (1..29), the deleted key 30 and new keys (41..60).
    std::thread udp([&] {
      for (uint64_t i = 0; !stop.load(); ++i) {
        SendUdp(tallyd.udp_port(), "apikey." + std::to_string(i % 60 + 1) + ".success:1|c\n" +
                                       "apikey." + std::to_string(i % 29 + 1) + ".failure:2|c");
        if (i % 64 == 0) {
          usleep(1000);  // pacing the load, not a wait
        }
      }
    });
    std::thread http([&] {
      for (uint64_t i = 0; !stop.load(); ++i) {
        Http(tallyd.http_port(), "POST", "/v1/ingest",
             "apikey." + std::to_string(i % 45 + 1) + ".success:3|c", kInternal);
      }
    });
    usleep(500 * 1000);  // not a wait: the load runs a while before the checkpoint
    // A durable marker: answered 200 only once flushed, so the checkpoint must hold it.
    HttpResult marker = Http(tallyd.http_port(), "POST", "/v1/ingest?wait=flush",
                             "apikey.77.success:7|c", kInternal);
    ASSERT_EQ(marker.status, 200) << marker.body;

    HttpResult r = Http(tallyd.http_port(), "POST", "/admin/checkpoint",
                        R"({"dir":")" + checkpoint + R"("})", kAdmin);
    EXPECT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(Json(r.body)["dir"], boost::json::value(checkpoint)) << r.body;
    usleep(300 * 1000);  // not a wait: more load after the checkpoint
    stop = true;
    udp.join();
    http.join();

    // The target must not exist; bad bodies and missing tokens are refused.
    EXPECT_EQ(Http(tallyd.http_port(), "POST", "/admin/checkpoint",
                   R"({"dir":")" + checkpoint + R"("})", kAdmin)
                  .status,
              409);
    EXPECT_EQ(Http(tallyd.http_port(), "POST", "/admin/checkpoint",
                   R"({"dir":")" + dir.Sub("other") + R"("})")
                  .status,
              401);
    EXPECT_EQ(
        Http(tallyd.http_port(), "POST", "/admin/checkpoint", R"({"dir":"relative/x"})", kAdmin)
            .status,
        400);
    EXPECT_EQ(Http(tallyd.http_port(), "POST", "/admin/checkpoint", R"({"dir":7})", kAdmin).status,
              400);
    EXPECT_EQ(Http(tallyd.http_port(), "POST", "/admin/checkpoint", "not json", kAdmin).status,
              400);
    EXPECT_EQ(Http(tallyd.http_port(), "POST", "/admin/checkpoint",
                   R"({"dir":")" + dir.Sub("no/such/parent/x") + R"("})", kAdmin)
                  .status,
              400);
    EXPECT_EQ(Http(tallyd.http_port(), "GET", "/admin/checkpoint", {}, kAdmin).status, 405);
    EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  }

  // The source's final state, after the load.
  core::Totals final_totals;
  {
    auto source = Store::Open(dir.Sub("data"));
    ASSERT_TRUE(source.ok());
    final_totals = (*source)->Summary();
    ExpectInvariant(**source);
  }
  // The checkpoint on its own: consistent, holding the durable marker, and a prefix of the
  // source's history (no more than the final totals; the load went on after it).
  {
    auto restored = Store::Open(checkpoint);
    ASSERT_TRUE(restored.ok()) << restored.status().message();
    ExpectInvariant(**restored);
    auto marker = (*restored)->GetKey(77);
    ASSERT_TRUE(marker.ok());
    EXPECT_EQ(marker->totals.success, 7);
    at_checkpoint = (*restored)->Summary();
    EXPECT_GT(at_checkpoint.total, 7);
    EXPECT_LT(at_checkpoint.total, final_totals.total);
    EXPECT_FALSE((*restored)->GetKey(30).ok());  // still deleted
  }

  // Restore: a second tallyd on the checkpoint serves exactly its totals, and counts on.
  TallydProcess restored(checkpoint, {"--admin-token", "adm-token"});
  auto summary =
      Json(Http(restored.http_port(), "GET", "/admin/apikey-stats/summary", {}, kAdmin).body);
  EXPECT_EQ(summary["total_requests"].to_number<int64_t>(), at_checkpoint.total);
  EXPECT_EQ(summary["success_requests"].to_number<int64_t>(), at_checkpoint.success);
  EXPECT_EQ(summary["failure_requests"].to_number<int64_t>(), at_checkpoint.failure);
  SendUdp(restored.udp_port(), "apikey.1.success:10|c");
  std::string after = WaitForTotal(restored.http_port(), at_checkpoint.total + 10, 10000, kAdmin);
  EXPECT_EQ(Json(after)["total_requests"].to_number<int64_t>(), at_checkpoint.total + 10);
  EXPECT_EQ(restored.Stop(), 0);
  auto reopened = Store::Open(checkpoint);
  ASSERT_TRUE(reopened.ok());
  ExpectInvariant(**reopened);
}

int Checkpoint(uint16_t port, const std::string& dir_json) {
  return Http(port, "POST", "/admin/checkpoint", R"({"dir":)" + dir_json + "}").status;
}

std::string Quoted(const std::string& s) { return boost::json::serialize(boost::json::value(s)); }

// Never deletes what tallyd did not create; refuses bad and dangerous targets with 400 and
// existing ones with 409; concurrent checkpoints into one target: one 201, the rest 409.
TEST(OpsCheckpoint, RefusesBadTargetsAndNeverDeletesWhatItDidNotCreate) {
  namespace fs = std::filesystem;
  TempDir dir;
  const std::string data = dir.Sub("data");
  TallydProcess tallyd(data);
  const uint16_t port = tallyd.http_port();

  // A pre-existing X.tmp (RocksDB's staging name) with someone's file in it.
  const std::string target = dir.Sub("backup");
  fs::create_directory(target + ".tmp");
  std::ofstream(target + ".tmp/precious") << "keep me";
  EXPECT_EQ(Checkpoint(port, Quoted(target)), 409);
  EXPECT_TRUE(fs::exists(target + ".tmp/precious")) << "a file tallyd did not create was deleted";
  EXPECT_FALSE(fs::exists(target));
  // An existing target, file or directory: 409, untouched.
  std::ofstream(dir.Sub("file")) << "x";
  EXPECT_EQ(Checkpoint(port, Quoted(dir.Sub("file"))), 409);

  // Inside the live data directory, directly, via "..", or through a symlink: 400.
  EXPECT_EQ(Checkpoint(port, Quoted(data + "/snap")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted(dir.Sub("other/../data/snap"))), 400);
  EXPECT_EQ(Checkpoint(port, Quoted(data)), 400);
  fs::create_directory_symlink(data, dir.Sub("link-to-data"));
  EXPECT_EQ(Checkpoint(port, Quoted(dir.Sub("link-to-data/snap"))), 400);
  EXPECT_FALSE(fs::exists(data + "/snap"));
  // Bad paths: a NUL, 5,000 characters, /proc, /sys, /dev, no name.
  EXPECT_EQ(Checkpoint(port, R"(")" + dir.Sub("a") + R"(\u0000b")"), 400);
  EXPECT_EQ(Checkpoint(port, Quoted("/" + std::string(5000, 'a'))), 400);
  EXPECT_EQ(Checkpoint(port, Quoted("/proc/self/snap")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted("/sys/snap")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted("/dev/shm/snap")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted("/")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted(dir.Sub(std::string(300, 'n')))), 400);

  // Four at once into one target: exactly one is created.
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  std::atomic<int> conflicts{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      int status = Checkpoint(port, Quoted(target + "-race"));
      (status == 201 ? created : conflicts).fetch_add(1);
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 3);
  EXPECT_TRUE(fs::exists(target + "-race/CURRENT"));
  // A trailing slash names the same directory: it exists now.
  EXPECT_EQ(Checkpoint(port, Quoted(target + "-race/")), 409);
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
}

// A control character in "dir" is 400 and nothing is created: a newline would otherwise
// forge a line of tallyd's log ("checkpoint into ... in 0.01 s").
TEST(OpsCheckpoint, ControlCharactersInTheTargetAre400AndForgeNoLogLine) {
  namespace fs = std::filesystem;
  TempDir dir;
  TallydProcess tallyd(dir.Sub("data"));
  const uint16_t port = tallyd.http_port();
  const std::string forged = "2026-11-30 01:02:03.456 [main] [error] FAKE line";
  for (std::string bad : {"x\n" + forged, "x\r" + forged, std::string("x\x1b[2Jy"),
                          std::string("x\ty"), std::string("x\x7fy")}) {
    const std::string target = dir.Sub(bad);
    EXPECT_EQ(Checkpoint(port, Quoted(target)), 400) << Quoted(target);
    EXPECT_FALSE(fs::exists(target)) << Quoted(target);
  }
  EXPECT_EQ(Checkpoint(port, Quoted(dir.Sub("fine"))), 201);  // the log line is written by now
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  EXPECT_EQ(tallyd.Log().find("\n" + forged), std::string::npos) << tallyd.Log();
  EXPECT_EQ(tallyd.Log().find("\r" + forged), std::string::npos) << tallyd.Log();
}

TEST(OpsCheckpoint, CheckpointRootConfinesTargetsWithSymlinksResolved) {
  namespace fs = std::filesystem;
  TempDir dir;
  const std::string root = dir.Sub("checkpoints");
  fs::create_directory(root);
  fs::create_directory(dir.Sub("elsewhere"));
  fs::create_directory_symlink(dir.Sub("elsewhere"), root + "/escape");
  TallydProcess tallyd(dir.Sub("data"), {"--checkpoint-root", root});
  const uint16_t port = tallyd.http_port();
  EXPECT_EQ(Checkpoint(port, Quoted(dir.Sub("outside"))), 400);
  EXPECT_EQ(Checkpoint(port, Quoted(root + "/escape/snap")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted(root + "/../outside")), 400);
  EXPECT_EQ(Checkpoint(port, Quoted(root)), 400);
  EXPECT_FALSE(fs::exists(dir.Sub("outside")));
  EXPECT_FALSE(fs::exists(dir.Sub("elsewhere/snap")));
  EXPECT_EQ(Checkpoint(port, Quoted(root + "/snap")), 201);
  EXPECT_TRUE(fs::exists(root + "/snap/CURRENT"));
  EXPECT_EQ(tallyd.Stop(), 0) << tallyd.Log();
  std::string out;
  EXPECT_EQ(RunTallyd({"--checkpoint-root", dir.Sub("missing")}, &out), 2) << out;
}

}  // namespace
}  // namespace tally::testing
