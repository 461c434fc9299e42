// OpsFixture: what an OpsContext reads, real and small: a Store in a temporary directory, a
// CounterTable of 100 keys, a Flusher that is never started, a CounterRegistry, and the
// listening/stopping flags. For the tests of the ops endpoints and of what they report.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>

#include "core/counter_table.h"
#include "daemon/app/config.h"
#include "daemon/ingest/flusher.h"
#include "daemon/metrics.h"
#include "daemon/ops/endpoints.h"
#include "persistence/store.h"
#include "tests/support/temp_dir.h"

namespace tally::daemon {

class OpsFixture : public ::testing::Test {
 protected:
  OpsFixture() {
    auto store = persistence::Store::Open(dir_.Sub("db"));
    EXPECT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    flusher_ = std::make_unique<Flusher>(table_, *store_, std::chrono::milliseconds(1000));
  }

  OpsContext Context() {
    return OpsContext{config_.flush_interval_ms,
                      config_.data_dir,
                      config_.checkpoint_root,
                      table_,
                      *store_,
                      *flusher_,
                      counters_,
                      [] { return uint64_t{0}; },
                      listening_,
                      stopping_};
  }

  testing::TempDir dir_;
  Config config_;
  core::CounterTable table_{100};
  std::unique_ptr<persistence::Store> store_;
  std::unique_ptr<Flusher> flusher_;
  CounterRegistry counters_;
  std::atomic<bool> listening_{true};
  std::atomic<bool> stopping_{false};
};

}  // namespace tally::daemon
