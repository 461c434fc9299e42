// Api: tallyd's HTTP endpoints. Routes a request to its handler, checks auth, and renders
// JSON. Handlers run on the I/O thread that read the request; the ones that must wait for a
// flush answer later from the flusher thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "core/counter_table.h"
#include "daemon/config.h"
#include "daemon/flusher.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "persistence/store.h"

namespace tally::daemon {

// What the endpoints read and drive; owned by the Daemon, outliving the Api.
struct ApiContext {
  const Config& config;
  core::CounterTable& table;
  persistence::Store& store;
  Flusher& flusher;
  const CounterRegistry& counters;
  std::function<uint64_t()> kernel_drops;
  const std::atomic<bool>& listening;  // every listener is bound
  const std::atomic<bool>& stopping;
};

// The calling I/O thread's counter block (set once per thread by the Daemon).
ThreadCounters& ThisThreadCounters();
void SetThisThreadCounters(ThreadCounters* counters);

// Compares in time independent of where the strings differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

class Api : public Handler {
 public:
  explicit Api(ApiContext ctx) : ctx_(std::move(ctx)) {}
  void Handle(Request request, Responder done) override;

 private:
  void Ingest(const Request& req, std::string_view query, Responder done);
  Response Summary(std::string_view query);
  bool AdminAuthorized(const Request& req) const;
  bool InternalAuthorized(const Request& req) const;

  ApiContext ctx_;
};

// The value of `name` in a query string "a=1&b=2", if present.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name);

}  // namespace tally::daemon
