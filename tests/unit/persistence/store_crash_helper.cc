// tally_store_crash_helper DIR: opens the store in DIR and applies CrashDeltas(epoch + 1)
// forever, until killed; prints "flushing" after the first flush. Run and SIGKILLed by
// store_crash_test.cc. Exit 1 with one line on stderr if opening or a flush fails.
#include <cstdio>

#include "persistence/store.h"
#include "tests/unit/persistence/crash_workload.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tally_store_crash_helper DIR\n");
    return 2;
  }
  auto store = tally::persistence::Store::Open(argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().message().c_str());
    return 1;
  }
  for (bool first = true;; first = false) {
    std::vector<tally::core::KeyDelta> deltas = tally::testing::CrashDeltas((*store)->epoch() + 1);
    auto result = (*store)->ApplyFlush(&deltas);
    if (!result.ok()) {
      std::fprintf(stderr, "flush: %s\n", result.status().message().c_str());
      return 1;
    }
    if (first) {
      // Tells the test that flushes are under way, so its kill lands among them.
      std::printf("flushing\n");
      std::fflush(stdout);
    }
  }
}
