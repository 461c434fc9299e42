// The hot paths allocate nothing: ParseBuffer per line, CounterTable::Add on a present key,
// IngestBuffer into present keys, with or without the mapping rules of a preset. Counted by
// replacing the global operator new for this test binary (every allocation of every test passes
// through it; only the counter is read here, around the calls under test).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "core/counter_table.h"
#include "core/ingest.h"
#include "core/line_parser.h"
#include "core/mapping.h"
#include "core/mapping_presets.h"
#include "core/mapping_yaml.h"

namespace {
// Relaxed: a count read by the same thread that made the calls it counts.
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tally::core {
namespace {

uint64_t Allocations() { return g_allocations.load(std::memory_order_relaxed); }

std::string Buffer() {
  std::string b;
  for (int i = 1; i <= 50; ++i) {
    b += "apikey." + std::to_string(i) + (i % 7 == 0 ? ".failure:1|c\n" : ".success:1|c\n");
  }
  b += "apikey.requests:2|c|#key:3,outcome:success,env:prod\r\nother.metric:1.5|g\nbad line\n";
  return b;
}

TEST(NoAllocation, TheCounterCanSeeAnAllocation) {
  uint64_t before = Allocations();
  std::string* s = new std::string("x");
  delete s;
  EXPECT_GT(Allocations(), before);
}

TEST(NoAllocation, ParseBuffer) {
  std::string buffer = Buffer();
  uint64_t sum = 0;
  uint64_t before = Allocations();
  LineCounts c = ParseBuffer(buffer, "apikey", [&](const Increment& inc) {
    sum += inc.successes + inc.failures;
    return true;
  });
  EXPECT_EQ(Allocations(), before);
  EXPECT_EQ(c.accepted, 51u);
  EXPECT_EQ(sum, 52u);
}

TEST(NoAllocation, AddAndIngestOnPresentKeys) {
  CounterTable table(1000);
  std::string buffer = Buffer();
  LineCounts first = IngestBuffer(buffer, "apikey", table);  // inserts the keys
  ASSERT_EQ(first.accepted, 51u);
  uint64_t before = Allocations();
  for (uint64_t key = 1; key <= 50; ++key) {
    ASSERT_TRUE(table.Add(key, 1, 1));
  }
  LineCounts again = IngestBuffer(buffer, "apikey", table);
  EXPECT_EQ(Allocations(), before);
  EXPECT_EQ(again.accepted, 51u);
}

// Glob rules with a hand-checked key pattern (every preset) allocate nothing per line:
// counted, dropped, tagged, without a key, and of another family.
TEST(NoAllocation, IngestThroughTheKongPreset) {
  StatusOr<std::shared_ptr<const Mapping>> kong = LoadMapping(*MappingPreset("kong"), "kong");
  ASSERT_TRUE(kong.ok());
  std::string buffer;
  for (int i = 1; i <= 20; ++i) {
    std::string svc = "key-" + std::to_string(i);
    buffer += "kong.service." + svc + ".status." + (i % 5 == 0 ? "503" : "200") + ":1|c\n";
    buffer += "kong.service." + svc + ".request.count:1|c\n";
    buffer += "kong.request.count:1|c|#service:" + svc + ",status:404\n";
  }
  buffer += "kong.service.billing.status.200:1|c\nenvoy.cluster.key-1.upstream_rq_2xx:1|c\n";
  CounterTable table(1000);
  MappedCounts mapped;
  ASSERT_EQ(IngestBuffer(buffer, "apikey", table, kong->get(), &mapped).accepted, 40u);
  uint64_t before = Allocations();
  LineCounts again = IngestBuffer(buffer, "apikey", table, kong->get(), &mapped);
  EXPECT_EQ(Allocations(), before);
  EXPECT_EQ(again.accepted, 40u);
}

}  // namespace
}  // namespace tally::core
