#include "daemon/api/router.h"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
// Boost.URL is compiled here, once for the whole program (Debian ships it header-only in
// libboost1.81-dev); no other source may include <boost/url/src.hpp>.
#include <boost/url/src.hpp>
#include <vector>

#include "daemon/api/query.h"
#include "daemon/web/ui.h"

namespace tally::daemon {
namespace urls = boost::urls;

using RouteHandler = std::function<void(Api&, Call)>;

struct Route {
  std::string_view path;  // a "{id}" segment matches a record id
  http::verb method;
  Auth auth;
  RouteHandler handler;
};

namespace {

// A file of the status page (daemon/web/ui.h): public, no auth.
Route UiFile(std::string_view path, std::string_view name) {
  return {path, http::verb::get, Auth::kNone,
          [name](Api&, Call c) { c.done(UiFileResponse(c.req, name)); }};
}

// Every endpoint. Paths are matched segment by segment; the first route whose path matches
// and whose method is the request's wins.
const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      // Health and operations, no auth.
      {"/healthz", http::verb::get, Auth::kNone,
       [](Api& api, Call c) { c.done(HealthResponse(api.ops())); }},
      {"/readyz", http::verb::get, Auth::kNone,
       [](Api& api, Call c) { c.done(ReadyResponse(api.ops())); }},
      {"/metrics", http::verb::get, Auth::kNone,
       [](Api& api, Call c) { c.done(MetricsResponse(api.ops())); }},
      // Ingestion and ez-api's internal endpoint, internal token.
      {"/v1/ingest", http::verb::post, Auth::kInternal,
       [](Api& api, Call c) { api.counting().Ingest(std::move(c)); }},
      {"/internal/apikey-stats/flush", http::verb::post, Auth::kInternal,
       [](Api& api, Call c) { api.counting().InternalFlush(std::move(c)); }},
      // Admin, bearer token.
      {"/admin/apikey-stats/summary", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.windows().Summary(std::move(c)); }},
      {"/admin/apikey-stats/series", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.windows().Series(std::move(c)); }},
      {"/admin/apikey-stats/top", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.windows().Top(std::move(c)); }},
      {"/admin/api-keys/{id}/stats", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.windows().KeyStats(std::move(c)); }},
      {"/admin/provider-groups/{id}/stats", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.windows().GroupStats(std::move(c)); }},
      {"/admin/flush", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.counting().AdminFlush(std::move(c)); }},
      {"/admin/checkpoint", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) {
         api.workers().RunBlocking([&api, c] { c.done(CheckpointResponse(api.ops(), c.req)); });
       }},
      // Forwarding (upstream_endpoints.h).
      {"/admin/outbox", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.upstream().Outbox(std::move(c)); }},
      {"/admin/outbox/dead/{id}/retry", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.upstream().RetryDead(std::move(c)); }},
      {"/admin/outbox/dead/{id}", http::verb::delete_, Auth::kAdmin,
       [](Api& api, Call c) { api.upstream().DeleteDead(std::move(c)); }},
      {"/admin/sources", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.upstream().Sources(std::move(c)); }},
      {"/admin/provider-groups", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.records().ListGroups(std::move(c)); }},
      {"/admin/provider-groups", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.records().CreateGroup(std::move(c)); }},
      {"/admin/provider-groups/{id}", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.records().GetGroup(std::move(c)); }},
      {"/admin/provider-groups/{id}", http::verb::put, Auth::kAdmin,
       [](Api& api, Call c) { api.records().PutGroup(std::move(c)); }},
      {"/admin/provider-groups/{id}", http::verb::delete_, Auth::kAdmin,
       [](Api& api, Call c) { api.records().DeleteGroup(std::move(c)); }},
      {"/admin/api-keys", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.records().ListKeys(std::move(c)); }},
      {"/admin/api-keys", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.records().CreateKey(std::move(c)); }},
      {"/admin/api-keys/{id}", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.records().GetKey(std::move(c)); }},
      {"/admin/api-keys/{id}", http::verb::put, Auth::kAdmin,
       [](Api& api, Call c) { api.records().PutKey(std::move(c)); }},
      {"/admin/api-keys/{id}", http::verb::delete_, Auth::kAdmin,
       [](Api& api, Call c) { api.records().DeleteKey(std::move(c)); }},
      // The status page, no auth (its data comes from the admin API). "" is the path "/".
      {"", http::verb::get, Auth::kNone, [](Api&, Call c) { c.done(UiRedirectResponse()); }},
      UiFile("/ui", "index.html"),
      UiFile("/ui/app.css", "app.css"),
      UiFile("/ui/icon.svg", "icon.svg"),
      UiFile("/ui/app.js", "app.js"),
      UiFile("/ui/format.js", "format.js"),
      UiFile("/ui/api.js", "api.js"),
      UiFile("/ui/chart.js", "chart.js"),
      UiFile("/ui/panels.js", "panels.js"),
      UiFile("/ui/bans.js", "bans.js"),
      UiFile("/ui/key_view.js", "key_view.js"),
      // Bans (api/bans.h).
      {"/admin/api-keys/{id}/unban", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.bans().Unban(std::move(c)); }},
      {"/admin/ban-policy", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.bans().GetPolicy(std::move(c)); }},
      {"/admin/ban-policy", http::verb::put, Auth::kAdmin,
       [](Api& api, Call c) { api.bans().PutPolicy(std::move(c)); }},
      {"/admin/events", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.bans().Events(std::move(c)); }},
  };
  return routes;
}

// Matches decoded path segments against a route pattern; *id_segment receives the "{id}"
// segment.
bool PathMatches(std::string_view pattern, const std::vector<std::string>& segments,
                 std::string_view* id_segment) {
  size_t i = 0;
  while (!pattern.empty()) {
    pattern.remove_prefix(1);  // the '/'
    size_t end = pattern.find('/');
    std::string_view p = pattern.substr(0, end);
    pattern = end == std::string_view::npos ? std::string_view() : pattern.substr(end);
    if (i == segments.size()) {
      return false;
    }
    const std::string& s = segments[i++];
    if (p == "{id}") {
      if (s.empty()) {
        return false;
      }
      *id_segment = s;
    } else if (p != s) {
      return false;
    }
  }
  return i == segments.size();
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length is not secret; the content is compared without an early exit.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

Api::Api(ApiContext ctx)
    : tokens_(std::move(ctx.tokens)),
      stopping_(ctx.stopping),
      counting_(std::move(ctx.counting), workers_),
      records_(ctx.records, workers_),
      bans_(std::move(ctx.bans), workers_),
      ops_(std::move(ctx.ops)),
      windows_(ctx.windows, workers_, counting_),
      upstream_(ctx.upstream, workers_) {}

// The queued store work uses the endpoint groups: it finishes before they go.
Api::~Api() { workers_.Join(); }

bool Api::Authorized(Auth auth, const http::request_header<>& req) const {
  if (auth == Auth::kNone) {
    return true;
  }
  const std::string& token = auth == Auth::kAdmin ? tokens_.admin : tokens_.internal;
  if (token.empty()) {
    return true;  // only reachable on loopback: Config refuses a public listener without it
  }
  if (auth == Auth::kInternal) {
    auto it = req.find("X-Internal-Token");
    return it != req.end() && ConstantTimeEquals(it->value(), token);
  }
  auto it = req.find(http::field::authorization);
  if (it == req.end()) {
    return false;
  }
  std::string_view value = it->value();
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() < kBearer.size() ||
      !boost::beast::iequals(value.substr(0, kBearer.size()), kBearer)) {
    return false;
  }
  return ConstantTimeEquals(value.substr(kBearer.size()), token);
}

std::optional<Response> Api::Admit(const http::request_header<>& req, const Route** matched,
                                   std::string* id_segment, std::string* query) const {
  boost::system::result<urls::url_view> target = urls::parse_origin_form(req.target());
  if (!target) {
    target = urls::parse_absolute_uri(req.target());  // "GET http://host/path" (RFC 9112 3.2.2)
  }
  if (!target) {
    return JsonError(http::status::bad_request,
                     "bad request target: not a path, or bad percent-encoding in it");
  }
  const std::vector<std::string> path(target->segments().begin(), target->segments().end());
  const http::verb method = req.method();

  const Route* route = nullptr;
  std::string allowed;
  for (const Route& r : Routes()) {
    std::string_view segment;
    if (!PathMatches(r.path, path, &segment)) {
      continue;
    }
    if (r.method == method) {
      route = &r;
      *id_segment = segment;
      break;
    }
    allowed += allowed.empty() ? "" : ", ";
    allowed += std::string(http::to_string(r.method));
    if (r.method == http::verb::get) {
      allowed += ", HEAD";  // the session answers HEAD as GET
    }
  }
  if (route == nullptr) {
    if (allowed.empty()) {
      return JsonError(http::status::not_found, "no such endpoint");
    }
    Response res = JsonError(http::status::method_not_allowed, "method not allowed");
    res.set(http::field::allow, allowed);
    return res;
  }
  if (!Authorized(route->auth, req)) {
    Response res = JsonError(http::status::unauthorized, route->auth == Auth::kAdmin
                                                             ? "missing or wrong bearer token"
                                                             : "missing or wrong X-Internal-Token");
    if (route->auth == Auth::kAdmin) {
      res.set(http::field::www_authenticate, "Bearer");
    }
    return res;
  }
  // Relaxed: a flag; a request racing with the stop either runs (and finishes before the
  // final flush) or is refused.
  if (route->auth != Auth::kNone && stopping_.load(std::memory_order_relaxed)) {
    return JsonError(http::status::service_unavailable, "stopping");
  }
  *query = std::string(target->encoded_query());
  if (core::Status s = CheckQuery(*query); !s.ok()) {
    return ErrorResponse(s);
  }
  *matched = route;
  return std::nullopt;
}

std::optional<Response> Api::Screen(const http::request_header<>& header) {
  const Route* route = nullptr;
  std::string id_segment;
  std::string query;
  return Admit(header, &route, &id_segment, &query);
}

void Api::Handle(Request req, Responder done) {
  HandleStreaming(std::move(req), std::move(done), nullptr);
}

void Api::HandleStreaming(Request req, Responder done, StreamResponder stream) {
  const Route* route = nullptr;
  std::string id_segment;
  std::string query;
  if (std::optional<Response> refused = Admit(req, &route, &id_segment, &query)) {
    return done(std::move(*refused));
  }
  Call call{Request(), std::move(query), 0, std::move(done), std::move(stream)};
  if (!id_segment.empty()) {
    core::StatusOr<uint64_t> id = PathId(id_segment);
    if (!id.ok()) {
      return call.done(ErrorResponse(id.status()));
    }
    call.id = *id;
  }
  call.req = std::move(req);
  route->handler(*this, std::move(call));
}

}  // namespace tally::daemon
