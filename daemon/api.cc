#include "daemon/api.h"

#include <charconv>

#include "core/ingest.h"
#include "daemon/json_writer.h"
#include "daemon/ops_endpoints.h"

namespace tally::daemon {
namespace {

thread_local ThreadCounters* tls_counters = nullptr;
ThreadCounters fallback_counters;  // for threads the Daemon did not set up (tests)

Response Counts(http::status status, const core::LineCounts& c) {
  JsonWriter w;
  w.BeginObject()
      .Key("accepted")
      .Uint(c.accepted)
      .Key("ignored")
      .Uint(c.ignored)
      .Key("malformed")
      .Uint(c.malformed)
      .Key("refused")
      .Uint(c.refused)
      .EndObject();
  return JsonResponse(status, w.Take());
}

std::string RenderTotals(const core::Totals& t) {
  JsonWriter w;
  w.BeginObject()
      .Key("total_requests")
      .Int(t.total)
      .Key("success_requests")
      .Int(t.success)
      .Key("failure_requests")
      .Int(t.failure)
      .Key("success_rate")
      .Double(t.success_rate())
      .Key("failure_rate")
      .Double(t.failure_rate())
      .EndObject();
  return w.Take();
}

}  // namespace

ThreadCounters& ThisThreadCounters() {
  return tls_counters != nullptr ? *tls_counters : fallback_counters;
}

void SetThisThreadCounters(ThreadCounters* counters) { tls_counters = counters; }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length is not secret; the content is compared without an early exit.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

bool Api::AdminAuthorized(const Request& req) const {
  const std::string& token = ctx_.config.admin_token;
  if (token.empty()) {
    return true;  // only reachable on loopback: Config refuses a public listener without it
  }
  auto it = req.find(http::field::authorization);
  if (it == req.end()) {
    return false;
  }
  std::string_view value = it->value();
  constexpr std::string_view kBearer = "Bearer ";
  if (value.substr(0, kBearer.size()) != kBearer) {
    return false;
  }
  return ConstantTimeEquals(value.substr(kBearer.size()), token);
}

bool Api::InternalAuthorized(const Request& req) const {
  const std::string& token = ctx_.config.internal_token;
  if (token.empty()) {
    return true;
  }
  auto it = req.find("X-Internal-Token");
  return it != req.end() && ConstantTimeEquals(it->value(), token);
}

void Api::Handle(Request req, Responder done) {
  std::string_view target = req.target();
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  const http::verb method = req.method();
  auto only = [&](http::verb allowed) {
    if (method == allowed) {
      return true;
    }
    done(JsonError(http::status::method_not_allowed, "method not allowed"));
    return false;
  };

  if (path == "/healthz") {
    if (only(http::verb::get)) {
      done(JsonResponse(http::status::ok, R"({"status":"ok"})"));
    }
  } else if (path == "/readyz") {
    if (only(http::verb::get)) {
      done(ReadyResponse(ctx_));
    }
  } else if (path == "/metrics") {
    if (only(http::verb::get)) {
      done(MetricsResponse(ctx_));
    }
  } else if (path == "/v1/ingest") {
    if (!only(http::verb::post)) {
      return;
    }
    if (!InternalAuthorized(req)) {
      return done(JsonError(http::status::unauthorized, "missing or wrong X-Internal-Token"));
    }
    Ingest(req, query, std::move(done));
  } else if (path == "/admin/apikey-stats/summary") {
    if (!only(http::verb::get)) {
      return;
    }
    if (!AdminAuthorized(req)) {
      return done(JsonError(http::status::unauthorized, "missing or wrong bearer token"));
    }
    done(Summary(query));
  } else {
    done(JsonError(http::status::not_found, "no such endpoint"));
  }
}

void Api::Ingest(const Request& req, std::string_view query, Responder done) {
  core::LineCounts counts = core::IngestBuffer(req.body(), ctx_.config.metric_prefix, ctx_.table);
  ThreadCounters& counters = ThisThreadCounters();
  counters.CountLines(Transport::kHttp, counts);
  std::optional<std::string_view> wait = QueryParam(query, "wait");
  if (!wait) {
    return done(Counts(http::status::accepted, counts));
  }
  if (*wait != "flush") {
    return done(JsonError(http::status::bad_request, "wait must be 'flush'"));
  }
  ctx_.flusher.AfterFlush([counts, done = std::move(done)](bool committed) {
    if (committed) {
      done(Counts(http::status::ok, counts));
    } else {
      done(JsonError(http::status::service_unavailable, "stopped before the flush committed"));
    }
  });
  ctx_.flusher.Wake();
}

Response Api::Summary(std::string_view query) {
  std::optional<std::string_view> group = QueryParam(query, "group_id");
  if (!group) {
    return JsonResponse(http::status::ok, RenderTotals(ctx_.store.Summary()));
  }
  uint64_t id = 0;
  auto [ptr, ec] = std::from_chars(group->data(), group->data() + group->size(), id);
  if (ec != std::errc() || ptr != group->data() + group->size() || group->empty()) {
    return JsonError(http::status::bad_request, "group_id must be a non-negative integer");
  }
  core::StatusOr<core::Totals> totals = ctx_.store.GroupSummary(id);
  if (!totals.ok()) {
    return JsonError(http::status::not_found, totals.status().message());
  }
  return JsonResponse(http::status::ok, RenderTotals(*totals));
}

}  // namespace tally::daemon
