#include "tests/fuzz/api_harness.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>

#include "core/counter_table.h"
#include "daemon/api/router.h"
#include "daemon/app/config.h"
#include "daemon/ingest/flusher.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "persistence/store.h"
#include "persistence/window_store.h"

namespace tally::fuzz {
namespace http = boost::beast::http;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: check failed: %s\n", what.c_str());
    std::abort();
  }
}

namespace {

std::string MakeTempDir() {
  std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  if (const char* t = std::getenv("TALLY_FUZZ_TMPDIR")) {
    base = t;
  }
  std::string tmpl = base + "/tallyd-fuzz-XXXXXX";
  Check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp " + tmpl);
  return tmpl;
}

std::string g_dir_to_remove;
void RemoveDir() {
  std::error_code ec;
  std::filesystem::remove_all(g_dir_to_remove, ec);
}

}  // namespace

struct ApiHarness::State {
  std::string dir;
  daemon::Config config;
  std::unique_ptr<core::CounterTable> table;
  std::unique_ptr<persistence::Store> store;
  std::unique_ptr<persistence::WindowStore> windows;  // a participant of store's flushes
  std::unique_ptr<daemon::Flusher> flusher;
  daemon::CounterRegistry counters;
  std::atomic<bool> listening{true};
  std::atomic<bool> stopping{false};
  std::unique_ptr<daemon::Api> api;
};

ApiHarness& ApiHarness::Get() {
  static ApiHarness* harness = new ApiHarness();
  return *harness;
}

ApiHarness::ApiHarness() : state_(new State) {
  daemon::InitLogging("error");
  state_->dir = MakeTempDir();
  g_dir_to_remove = state_->dir;
  std::atexit(RemoveDir);
  state_->config.data_dir = state_->dir + "/data";
  state_->config.max_keys = 1000;
  state_->table = std::make_unique<core::CounterTable>(state_->config.max_keys);
  auto store = persistence::Store::Open(state_->config.data_dir);
  Check(store.ok(), "Store::Open: " + std::string(store.ok() ? "" : store.status().message()));
  state_->store = std::move(*store);
  state_->windows = std::make_unique<persistence::WindowStore>(
      state_->store->db(), core::SystemClock::Get(), state_->config.windows.retention);
  Check(state_->windows->Load().ok(), "WindowStore::Load");
  state_->store->AddParticipant(state_->windows.get());
  // A long interval: flushes happen when a request asks for one (wait=flush, /admin/flush).
  state_->flusher = std::make_unique<daemon::Flusher>(*state_->table, *state_->store,
                                                      std::chrono::milliseconds(3'600'000));
  state_->flusher->Start();
  State& st = *state_;
  st.api = std::make_unique<daemon::Api>(daemon::ApiContext{
      .tokens = {},
      .stopping = st.stopping,
      .counting = {st.config.metric_prefix, st.config.max_keys, *st.table, *st.flusher, *st.store,
                   st.counters.process},
      .records = {*st.store, *st.table},
      .ops = {st.config.flush_interval_ms, st.config.data_dir, st.config.checkpoint_root, *st.table,
              *st.store, *st.flusher, st.counters, [] { return uint64_t{0}; }, st.listening,
              st.stopping, /*group_metrics=*/nullptr, /*mapping_rules=*/{}, st.windows.get()},
      .windows = {*st.store, *st.windows},
  });
}

const std::string& ApiHarness::data_dir() const { return state_->config.data_dir; }

void ApiHarness::VerifyStore() {
  core::Status s = state_->store->Verify();
  Check(s.ok(), "store invariant broken: " + std::string(s.message()));
}

unsigned ApiHarness::StatusForParseError(const boost::beast::error_code& ec) {
  // Mirrors Session::OnRead in daemon/http/server.cc.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return 0;
  }
  if (ec == http::error::body_limit) {
    return 413;
  }
  if (ec == http::error::header_limit) {
    return 431;
  }
  return 400;
}

daemon::Response ApiHarness::Call(daemon::Request req) {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<daemon::Response> res;
    int calls = 0;
  };
  auto slot = std::make_shared<Slot>();
  std::string what = std::string(req.method_string()) + " " + std::string(req.target());
  state_->api->Handle(std::move(req), [slot](daemon::Response res) {
    std::lock_guard lock(slot->mu);
    ++slot->calls;
    slot->res = std::move(res);
    slot->cv.notify_all();
  });
  std::unique_lock lock(slot->mu);
  Check(slot->cv.wait_for(lock, std::chrono::seconds(30), [&] { return slot->res.has_value(); }),
        "no answer within 30 s to " + what);
  Check(slot->calls == 1, "responder called more than once for " + what);
  daemon::Response res = std::move(*slot->res);

  unsigned code = res.result_int();
  // The statuses README.md documents: the ones /metrics counts by code, and, counted under
  // "other": 422 (an Idempotency-Key reused with another body), 302 (`/` to the status page)
  // and 304 (a status page file unchanged since its ETag).
  bool known = code == 422 || code == 302 || code == 304;
  for (unsigned c : daemon::kHttpCodes) {
    known = known || c == code;
  }
  Check(known, "undocumented status " + std::to_string(code) + " for " + what);
  Check(code < 500 || code == 503,
        "server error " + std::to_string(code) + " for " + what + ": " + res.body());
  auto type = res.find(http::field::content_type);
  bool json = type != res.end() && type->value().starts_with("application/json");
  if (json) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(res.body(), ec);
    Check(!ec, "invalid JSON answer for " + what + ": " + res.body());
    if (code >= 400) {
      Check(v.is_object() && v.as_object().if_contains("error") != nullptr &&
                v.as_object().at("error").is_string(),
            "error answer without {\"error\":string} for " + what + ": " + res.body());
    }
  } else {
    Check(code < 400, "error answer that is not JSON for " + what);
  }
  return res;
}

}  // namespace tally::fuzz
