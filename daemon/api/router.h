// Api: tallyd's HTTP endpoints. Routes a request to its handler, checks auth, and hands it to
// the endpoint group that owns it. The route table is in router.cc; the groups each get only
// what they use, wired by the Daemon (app/daemon.cc):
//   counting.h      POST /v1/ingest, /internal/apikey-stats/flush, /admin/flush, the summary
//   records.h       provider groups and API keys (GET/POST lists, GET/PUT/DELETE by id)
//   windows_api.h   counts over time windows: the summary with since, series, top
//   bans.h          the ban policy, unban, the event stream (GET /admin/events)
//   ops/endpoints.h /healthz, /readyz, /metrics, POST /admin/checkpoint (the ops room owns
//                   them; the router only routes to them)
//   web/ui.h        GET /, /ui and /ui/<file>: the status page (the web room owns them)
//
// Threads: Handle() runs on the I/O thread that read the request. Nothing that can block
// runs there: store calls run on the Workers (call.h), and wait=flush requests answer from
// the flusher thread. Answers go back through the Responder, which posts them to the
// session's thread.
//
// Order of checks: unknown path 404; wrong method 405 (with Allow); missing or wrong token
// 401; stopping 503 (except /healthz, /readyz, /metrics); then the handler.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/api/bans.h"
#include "daemon/api/call.h"
#include "daemon/api/counting.h"
#include "daemon/api/records.h"
#include "daemon/api/upstream_endpoints.h"
#include "daemon/api/windows_api.h"
#include "daemon/http/server.h"
#include "daemon/ops/endpoints.h"

namespace tally::daemon {

// The tokens the router checks. Empty: that role is not checked (only reachable on
// loopback: the Config refuses a public listener without both).
struct ApiTokens {
  std::string admin;     // Authorization: Bearer <admin>
  std::string internal;  // X-Internal-Token: <internal>
};

// What the Api is built from: the router's own part (tokens, the stop flag) and each endpoint
// group's context. References are owned by the Daemon and outlive the Api.
struct ApiContext {
  ApiTokens tokens;
  const std::atomic<bool>& stopping;
  CountingContext counting;
  RecordsContext records;
  OpsContext ops;
  WindowsContext windows;
  BansContext bans;
  UpstreamContext upstream;
};

// Compares in time independent of where the strings differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

enum class Auth : uint8_t {
  kNone,      // health and metrics
  kAdmin,     // Authorization: Bearer <admin token>
  kInternal,  // X-Internal-Token: <internal token>
};

struct Route;  // one entry of the route table (router.cc)

class Api : public Handler {
 public:
  explicit Api(ApiContext ctx);
  // Waits for the store work already queued, then stops the worker threads.
  ~Api() override;

  void Handle(Request request, Responder done) override;
  // The refusals Handle() would answer before running a handler (404, 405, 401, 503),
  // decided on the header alone: the session asks before reading any body byte.
  std::optional<Response> Screen(const http::request_header<>& header) override;
  void HandleStreaming(Request request, Responder done, StreamResponder stream) override;

  // The endpoint groups, for the route table.
  CountingEndpoints& counting() { return counting_; }
  RecordEndpoints& records() { return records_; }
  WindowEndpoints& windows() { return windows_; }
  BanEndpoints& bans() { return bans_; }
  const OpsContext& ops() const { return ops_; }
  UpstreamEndpoints& upstream() { return upstream_; }
  Workers& workers() { return workers_; }

 private:
  bool Authorized(Auth auth, const http::request_header<>& req) const;
  // Parses `req`'s target (Boost.URL), routes it and checks its token and query: the
  // refusal, or nullopt with *route, *id_segment (decoded) and *query (still encoded) set.
  std::optional<Response> Admit(const http::request_header<>& req, const Route** route,
                                std::string* id_segment, std::string* query) const;

  ApiTokens tokens_;
  const std::atomic<bool>& stopping_;
  Workers workers_;
  CountingEndpoints counting_;
  RecordEndpoints records_;
  BanEndpoints bans_;
  OpsContext ops_;
  WindowEndpoints windows_;
  UpstreamEndpoints upstream_;
};

}  // namespace tally::daemon
