#include "daemon/api.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <charconv>
#include <vector>

#include "daemon/json_writer.h"
#include "daemon/ops_endpoints.h"

namespace tally::daemon {
namespace asio = boost::asio;

namespace {

thread_local ThreadCounters* tls_counters = nullptr;
ThreadCounters fallback_counters;  // for threads the Daemon did not set up (tests)

}  // namespace

using RouteHandler = std::function<void(Api&, Call)>;

struct Route {
  std::string_view path;  // a "{id}" segment matches a record id
  http::verb method;
  Auth auth;
  RouteHandler handler;
};

namespace {

// Every endpoint. Paths are matched segment by segment; the first route whose path matches
// and whose method is the request's wins.
const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      // Health and operations, no auth.
      {"/healthz", http::verb::get, Auth::kNone,
       [](Api& api, Call c) { c.done(HealthResponse(api.ctx())); }},
      {"/readyz", http::verb::get, Auth::kNone,
       [](Api& api, Call c) { c.done(ReadyResponse(api.ctx())); }},
      {"/metrics", http::verb::get, Auth::kNone,
       [](Api& api, Call c) { c.done(MetricsResponse(api.ctx())); }},
      // Ingestion and ez-api's internal endpoint, internal token.
      {"/v1/ingest", http::verb::post, Auth::kInternal,
       [](Api& api, Call c) { api.Ingest(std::move(c)); }},
      {"/internal/apikey-stats/flush", http::verb::post, Auth::kInternal,
       [](Api& api, Call c) { api.InternalFlush(std::move(c)); }},
      // Admin, bearer token.
      {"/admin/apikey-stats/summary", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.Summary(std::move(c)); }},
      {"/admin/flush", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.AdminFlush(std::move(c)); }},
      {"/admin/checkpoint", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) {
         api.RunBlocking([&api, c] { c.done(CheckpointResponse(api.ctx(), c.req)); });
       }},
      {"/admin/provider-groups", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.ListGroups(std::move(c)); }},
      {"/admin/provider-groups", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.CreateGroup(std::move(c)); }},
      {"/admin/provider-groups/{id}", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.GetGroup(std::move(c)); }},
      {"/admin/provider-groups/{id}", http::verb::put, Auth::kAdmin,
       [](Api& api, Call c) { api.PutGroup(std::move(c)); }},
      {"/admin/provider-groups/{id}", http::verb::delete_, Auth::kAdmin,
       [](Api& api, Call c) { api.DeleteGroup(std::move(c)); }},
      {"/admin/api-keys", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.ListKeys(std::move(c)); }},
      {"/admin/api-keys", http::verb::post, Auth::kAdmin,
       [](Api& api, Call c) { api.CreateKey(std::move(c)); }},
      {"/admin/api-keys/{id}", http::verb::get, Auth::kAdmin,
       [](Api& api, Call c) { api.GetKey(std::move(c)); }},
      {"/admin/api-keys/{id}", http::verb::put, Auth::kAdmin,
       [](Api& api, Call c) { api.PutKey(std::move(c)); }},
      {"/admin/api-keys/{id}", http::verb::delete_, Auth::kAdmin,
       [](Api& api, Call c) { api.DeleteKey(std::move(c)); }},
  };
  return routes;
}

// Matches `path` against a route pattern; *id_segment receives the "{id}" segment.
bool PathMatches(std::string_view pattern, std::string_view path, std::string_view* id_segment) {
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') {
      return false;
    }
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    size_t pe = pattern.find('/');
    size_t se = path.find('/');
    std::string_view p = pattern.substr(0, pe);
    std::string_view s = path.substr(0, se);
    if (p == "{id}") {
      if (s.empty()) {
        return false;
      }
      *id_segment = s;
    } else if (p != s) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = se == std::string_view::npos ? std::string_view() : path.substr(se);
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
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

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%') {
      if (i + 2 >= text.size()) {
        return std::nullopt;
      }
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::optional<uint64_t> ParseId(std::string_view text) {
  uint64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || id == 0 ||
      id > (uint64_t{1} << 63) - 1) {
    return std::nullopt;
  }
  return id;
}

http::status StatusFor(const core::Status& status) {
  switch (status.code()) {
    case core::Status::Code::kOk:
      return http::status::ok;
    case core::Status::Code::kInvalidArgument:
      return http::status::bad_request;
    case core::Status::Code::kNotFound:
      return http::status::not_found;
    case core::Status::Code::kConflict:
    case core::Status::Code::kRefused:
      return http::status::conflict;
    case core::Status::Code::kIoError:
    case core::Status::Code::kUnavailable:
      return http::status::service_unavailable;
    case core::Status::Code::kCorruption:
      return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

Response ErrorResponse(const core::Status& status) {
  return JsonError(StatusFor(status), status.message());
}

Response EmptyResponse(http::status status) {
  Response res{status, 11};
  res.prepare_payload();
  return res;
}

Api::Api(ApiContext ctx) : ctx_(std::move(ctx)), writes_(asio::make_strand(workers_)) {}

Api::~Api() { workers_.join(); }

void Api::RunBlocking(std::function<void()> fn) { asio::post(workers_, std::move(fn)); }

void Api::RunWrite(std::function<void()> fn) { asio::post(writes_, std::move(fn)); }

bool Api::Authorized(Auth auth, const http::request_header<>& req) const {
  if (auth == Auth::kNone) {
    return true;
  }
  const std::string& token =
      auth == Auth::kAdmin ? ctx_.config.admin_token : ctx_.config.internal_token;
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
                                   std::string_view* id_segment) const {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
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
  if (route->auth != Auth::kNone && ctx_.stopping.load(std::memory_order_relaxed)) {
    return JsonError(http::status::service_unavailable, "stopping");
  }
  *matched = route;
  return std::nullopt;
}

std::optional<Response> Api::Screen(const http::request_header<>& header) {
  const Route* route = nullptr;
  std::string_view id_segment;
  return Admit(header, &route, &id_segment);
}

void Api::Handle(Request req, Responder done) {
  const Route* route = nullptr;
  std::string_view id_segment;
  if (std::optional<Response> refused = Admit(req, &route, &id_segment)) {
    return done(std::move(*refused));
  }
  std::string_view target = req.target();
  size_t q = target.find('?');
  Call call{Request(), std::string(q == std::string_view::npos ? "" : target.substr(q + 1)), 0,
            std::move(done)};
  if (!id_segment.empty()) {
    std::optional<uint64_t> id = ParseId(id_segment);
    if (!id) {
      return call.done(
          JsonError(http::status::bad_request, "the id must be an integer from 1 to 2^63-1"));
    }
    call.id = *id;
  }
  call.req = std::move(req);
  route->handler(*this, std::move(call));
}

}  // namespace tally::daemon
