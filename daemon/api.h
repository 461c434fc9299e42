// Api: tallyd's HTTP endpoints. Routes a request to its handler, checks auth, and renders
// JSON. The route table is in api.cc; the handlers are split by responsibility:
//   api.cc          router, auth, health and operations routes, the store worker
//   api_ingest.cc   POST /v1/ingest, /internal/apikey-stats/flush, /admin/flush, the summary
//   api_records.cc  provider groups and API keys (GET/POST lists, GET/PUT/DELETE by id)
//
// Threads: Handle() runs on the I/O thread that read the request. Nothing that can block
// runs there: store calls (reads too, since a flush holds the store's lock through its synced
// write) run on a small worker pool, writes serialized on one strand of it (so an
// idempotency-key lookup and the write it guards cannot interleave with another request's),
// and wait=flush requests answer from the flusher thread. Answers go back through the
// Responder, which posts them to the session's thread.
//
// Order of checks: unknown path 404; wrong method 405 (with Allow); missing or wrong token
// 401; stopping 503 (except /healthz, /readyz, /metrics); then the handler.
#pragma once

#include <atomic>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/counter_table.h"
#include "core/status.h"
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

// One routed request: the request, its raw query string (checked by CheckQuery: read it with
// QueryParam / IdParam), the {id} path segment when the route has one, and the Responder to
// call exactly once.
struct Call {
  Request req;
  std::string query;
  uint64_t id = 0;
  Responder done;
  // Set when the session can take a streamed answer (HandleStreaming); answer through
  // exactly one of done and stream.
  StreamResponder stream;
};

enum class Auth : uint8_t {
  kNone,      // health and metrics
  kAdmin,     // Authorization: Bearer <admin token>
  kInternal,  // X-Internal-Token: <internal token>
};

struct Route;  // one entry of the route table (api.cc)

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

  const ApiContext& ctx() const { return ctx_; }
  // Runs `fn` on a worker thread, off the I/O threads (store reads, slow operations).
  void RunBlocking(std::function<void()> fn);
  // Runs `fn` on the worker strand that serializes store writes.
  void RunWrite(std::function<void()> fn);

  // Handlers (api_ingest.cc).
  void Ingest(Call call);
  void InternalFlush(Call call);
  void AdminFlush(Call call);
  void Summary(Call call);
  // Handlers (api_records.cc).
  void ListGroups(Call call);
  void CreateGroup(Call call);
  void GetGroup(Call call);
  void PutGroup(Call call);
  void DeleteGroup(Call call);
  void ListKeys(Call call);
  void CreateKey(Call call);
  void GetKey(Call call);
  void PutKey(Call call);
  void DeleteKey(Call call);

 private:
  bool Authorized(Auth auth, const http::request_header<>& req) const;
  // Parses `req`'s target (Boost.URL), routes it and checks its token and query: the
  // refusal, or nullopt with *route, *id_segment (decoded) and *query (still encoded) set.
  std::optional<Response> Admit(const http::request_header<>& req, const Route** route,
                                std::string* id_segment, std::string* query) const;
  // Counts what an internal flush dropped (deleted keys) in /metrics.
  void CountDropped(const persistence::FlushResult& r);

  ApiContext ctx_;
  boost::asio::thread_pool workers_{2};
  boost::asio::strand<boost::asio::thread_pool::executor_type> writes_;
};

// Request targets: one parsing rule for every endpoint (Boost.URL, RFC 3986).
//  - The target is origin-form ("/path?query") or absolute-form ("http://host/path?query",
//    whose host is ignored); anything else is a 400. Path segments and query names and values
//    are percent-decoded ('+' in the query is a space), and a malformed escape is a 400.
//  - Routes match the decoded path segment by segment ("/admin/%61pi-keys/1" is
//    "/admin/api-keys/1"; a trailing '/' is an empty segment and matches nothing).
//  - A query parameter name given twice is a 400; unknown parameters are ignored.
//  - Ids, in paths and queries alike, are canonical decimal: digits only, no sign, no leading
//    zero, 1..2^63-1 ("0" only where a parameter allows it, as group_id's unassigned group).

// Checks a raw query string: every escape well-formed and no parameter name twice.
// InvalidArgument naming the problem.
core::Status CheckQuery(std::string_view query);
// The decoded value of `name` in a raw query string "a=1&b=%32" (a name without '=' has the
// value ""), or nullopt when absent or when the query does not parse.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);
// A canonical decimal id in 1..2^63-1, or nullopt ("01", "+1", "1 " and "0" are not).
std::optional<uint64_t> ParseId(std::string_view text);
// The id parameter `name` of a raw query: nullopt when absent; with `allow_zero`, "0" too.
// InvalidArgument (its message naming the parameter and the rule) for anything else.
core::StatusOr<std::optional<uint64_t>> IdParam(std::string_view query, std::string_view name,
                                                bool allow_zero);
// The HTTP status for a store error: 400, 404, 409, 500 or 503.
http::status StatusFor(const core::Status& status);
// {"error": status.message()} with StatusFor(status).
Response ErrorResponse(const core::Status& status);
// An answer with no body (204 No Content).
Response EmptyResponse(http::status status);

}  // namespace tally::daemon
