#include "daemon/api/bans.h"

#include <boost/json.hpp>

#include "daemon/api/query.h"
#include "daemon/api/record_json.h"
#include "daemon/http/json_writer.h"

namespace tally::daemon {
namespace json = boost::json;
using core::Status;
using core::StatusOr;

namespace {

Response Unavailable() {
  return JsonError(http::status::service_unavailable, "the ban rule is not running");
}

void WriteCodes(JsonWriter& w, const std::vector<int>& codes) {
  w.BeginArray();
  for (int c : codes) {
    w.Int(c);
  }
  w.EndArray();
}

Status TypeError(std::string_view field, std::string_view what) {
  return Status::InvalidArgument(std::string(field) + " must be " + std::string(what));
}

Status ReadInt(const json::value& v, std::string_view field, int64_t* out) {
  if (v.is_int64()) {
    *out = v.as_int64();
    return Status::Ok();
  }
  if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    *out = static_cast<int64_t>(v.as_uint64());
    return Status::Ok();
  }
  return TypeError(field, "an integer");
}

Status ReadCodes(const json::value& v, std::string_view field, std::vector<int>* out) {
  if (!v.is_array()) {
    return TypeError(field, "an array of HTTP status codes");
  }
  if (v.as_array().size() > core::BanPolicy::kMaxCodes) {
    return TypeError(field, "at most 16 codes");
  }
  out->clear();
  for (const json::value& c : v.as_array()) {
    int64_t code = 0;
    if (!c.is_int64() || (code = c.as_int64()) < 0 || code > 100000) {
      return TypeError(field, "an array of HTTP status codes");
    }
    out->push_back(static_cast<int>(code));
  }
  return Status::Ok();
}

}  // namespace

std::string RenderBanPolicy(const core::BanPolicy& p) {
  JsonWriter w;
  w.BeginObject();
  w.Key("window_seconds").Int(p.window_seconds);
  w.Key("min_requests").Int(p.min_requests);
  w.Key("failure_rate").Double(p.failure_rate);
  w.Key("consecutive_failures").Int(p.consecutive_failures);
  w.Key("immediate_codes");
  WriteCodes(w, p.immediate_codes);
  w.Key("cooldown_codes");
  WriteCodes(w, p.cooldown_codes);
  w.Key("cooldown_seconds").Int(p.cooldown_seconds);
  w.Key("max_cooldown_seconds").Int(p.max_cooldown_seconds);
  w.Key("keep_one_active").Bool(p.keep_one_active);
  w.EndObject();
  return w.Take();
}

StatusOr<core::BanPolicy> ParseBanPolicy(std::string_view body, const core::BanPolicy& current) {
  json::error_code ec;
  json::value doc = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !doc.is_object()) {
    return Status::InvalidArgument("the body must be a JSON object of the ban policy's fields");
  }
  core::BanPolicy p = current;
  for (const auto& [name, v] : doc.as_object()) {
    const std::string_view field(name.data(), name.size());
    Status s = Status::Ok();
    if (field == "window_seconds") {
      s = ReadInt(v, field, &p.window_seconds);
    } else if (field == "min_requests") {
      s = ReadInt(v, field, &p.min_requests);
    } else if (field == "consecutive_failures") {
      s = ReadInt(v, field, &p.consecutive_failures);
    } else if (field == "cooldown_seconds") {
      s = ReadInt(v, field, &p.cooldown_seconds);
    } else if (field == "max_cooldown_seconds") {
      s = ReadInt(v, field, &p.max_cooldown_seconds);
    } else if (field == "failure_rate") {
      if (!v.is_number()) {
        s = TypeError(field, "a number");
      } else {
        p.failure_rate = v.to_number<double>();
      }
    } else if (field == "immediate_codes") {
      s = ReadCodes(v, field, &p.immediate_codes);
    } else if (field == "cooldown_codes") {
      s = ReadCodes(v, field, &p.cooldown_codes);
    } else if (field == "keep_one_active") {
      if (!v.is_bool()) {
        s = TypeError(field, "true or false");
      } else {
        p.keep_one_active = v.as_bool();
      }
    } else {
      s = Status::InvalidArgument("unknown ban policy field \"" + std::string(field) + "\"");
    }
    TALLY_RETURN_IF_ERROR(s);
  }
  TALLY_RETURN_IF_ERROR(p.Validate());
  return p;
}

void BanEndpoints::GetPolicy(Call call) {
  if (ctx_.keeper == nullptr) {
    return call.done(Unavailable());
  }
  call.done(JsonResponse(http::status::ok, RenderBanPolicy(ctx_.keeper->policy())));
}

void BanEndpoints::PutPolicy(Call call) {
  if (ctx_.keeper == nullptr) {
    return call.done(Unavailable());
  }
  workers_.RunWrite([ctx = ctx_, body = std::move(call.req.body()), done = std::move(call.done)] {
    StatusOr<core::BanPolicy> p = ParseBanPolicy(body, ctx.keeper->policy());
    if (!p.ok()) {
      return done(ErrorResponse(p.status()));
    }
    std::string rendered = RenderBanPolicy(*p);
    Status s = ctx.keeper->SetPolicy(*ctx.store, *p, rendered);
    done(s.ok() ? JsonResponse(http::status::ok, std::move(rendered)) : ErrorResponse(s));
  });
}

void BanEndpoints::Unban(Call call) {
  if (ctx_.keeper == nullptr) {
    return call.done(Unavailable());
  }
  workers_.RunWrite([ctx = ctx_, id = call.id, done = std::move(call.done)] {
    StatusOr<persistence::ApiKey> k = ctx.store->UnbanKey(id);
    done(k.ok() ? JsonResponse(http::status::ok, RenderKey(*k)) : ErrorResponse(k.status()));
  });
}

void BanEndpoints::Events(Call call) {
  if (ctx_.keeper == nullptr || !ctx_.hub) {
    return call.done(Unavailable());
  }
  std::optional<uint64_t> last;
  std::optional<std::string> text;
  if (auto it = call.req.find("Last-Event-ID"); it != call.req.end()) {
    text = std::string(it->value());
  } else {
    text = QueryParam(call.query, "last_event_id");
  }
  if (text) {
    last = ParseId(*text);
    if (!last && *text != "0") {
      return call.done(JsonError(http::status::bad_request,
                                 "Last-Event-ID must be an event id (a decimal integer)"));
    }
    if (!last) {
      last = 0;
    }
  }
  if (!call.stream || call.req.version() < 11) {
    return call.done(
        JsonError(http::status::bad_request, "the event stream needs HTTP/1.1 (chunked)"));
  }
  Response head{http::status::ok, call.req.version()};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.keep_alive(false);  // the stream ends the connection (shutdown, a dropped client)
  call.stream(std::move(head), ctx_.hub->Stream(last));
}

}  // namespace tally::daemon
