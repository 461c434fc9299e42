#include "daemon/api/windows_api.h"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/api/query.h"
#include "daemon/api/record_json.h"
#include "daemon/http/json_writer.h"

namespace tally::daemon {
namespace {

using core::Status;
using core::StatusOr;

constexpr uint64_t kMaxTopLimit = 1000;

// An optional time parameter.
StatusOr<std::optional<core::UnixSeconds>> TimeParam(std::string_view query, std::string_view name,
                                                     core::Edge edge) {
  std::optional<std::string> text = QueryParam(query, name);
  if (!text) {
    return std::optional<core::UnixSeconds>();
  }
  StatusOr<core::UnixSeconds> t = core::ParseTime(name, *text, edge);
  if (!t.ok()) {
    return t.status();
  }
  return std::optional<core::UnixSeconds>(*t);
}

struct TimeParams {
  core::UnixSeconds since = 0;
  std::optional<core::UnixSeconds> until;
};

// since (required) and until (optional).
StatusOr<TimeParams> Times(std::string_view query) {
  StatusOr<std::optional<core::UnixSeconds>> since = TimeParam(query, "since", core::Edge::kStart);
  if (!since.ok()) {
    return since.status();
  }
  if (!*since) {
    return Status::InvalidArgument("since: required (Unix seconds or RFC 3339)");
  }
  StatusOr<std::optional<core::UnixSeconds>> until = TimeParam(query, "until", core::Edge::kEnd);
  if (!until.ok()) {
    return until.status();
  }
  return TimeParams{**since, *until};
}

// A canonical decimal parameter within [min, max], or `fallback` when absent.
StatusOr<uint64_t> CountParam(std::string_view query, std::string_view name, uint64_t min,
                              uint64_t max, uint64_t fallback) {
  std::optional<std::string> text = QueryParam(query, name);
  if (!text) {
    return fallback;
  }
  std::optional<uint64_t> v = *text == "0" ? std::optional<uint64_t>(0) : ParseId(*text);
  if (!v || *v < min || *v > max) {
    return Status::InvalidArgument(std::string(name) + ": must be a decimal from " +
                                   std::to_string(min) + " to " + std::to_string(max));
  }
  return *v;
}

enum class By { kFailures, kFailureRate, kRequests };

StatusOr<By> ByParam(std::string_view query) {
  std::optional<std::string> text = QueryParam(query, "by");
  if (!text || *text == "failures") {
    return By::kFailures;
  }
  if (*text == "failure_rate") {
    return By::kFailureRate;
  }
  if (*text == "requests") {
    return By::kRequests;
  }
  return Status::InvalidArgument("by: must be failures, failure_rate or requests");
}

std::string_view ByName(By by) {
  switch (by) {
    case By::kFailures:
      return "failures";
    case By::kFailureRate:
      return "failure_rate";
    case By::kRequests:
      return "requests";
  }
  return "";
}

// a ranks before b: by the measure, descending, then by more failures, more requests, and
// the lower id (a total order, so the answer is stable).
bool RanksBefore(By by, const persistence::KeyWindowTotals& a,
                 const persistence::KeyWindowTotals& b) {
  const core::Totals& x = a.totals;
  const core::Totals& y = b.totals;
  if (by == By::kFailureRate) {
    // x.failure / x.total vs y.failure / y.total, exactly (both totals are >= 1 here).
    const __int128 l = static_cast<__int128>(x.failure) * y.total;
    const __int128 r = static_cast<__int128>(y.failure) * x.total;
    if (l != r) {
      return l > r;
    }
  }
  if (by == By::kRequests && x.total != y.total) {
    return x.total > y.total;
  }
  if (x.failure != y.failure) {
    return x.failure > y.failure;
  }
  if (x.total != y.total) {
    return x.total > y.total;
  }
  return a.key < b.key;
}

void WriteWindow(JsonWriter& w, core::UnixSeconds since, core::UnixSeconds until) {
  w.Key("since").Int(since).Key("until").Int(until);
}

}  // namespace

void WindowEndpoints::Summary(Call call) {
  if (!QueryParam(call.query, "since")) {
    if (QueryParam(call.query, "until")) {
      return call.done(ErrorResponse(Status::InvalidArgument("until: needs since")));
    }
    return counting_.Summary(std::move(call));
  }
  StatusOr<TimeParams> times = Times(call.query);
  if (!times.ok()) {
    return call.done(ErrorResponse(times.status()));
  }
  StatusOr<std::optional<uint64_t>> group = GroupIdParam(call.query);
  if (!group.ok()) {
    return call.done(ErrorResponse(group.status()));
  }
  workers_.RunBlocking([this, t = *times, group_id = *group, done = std::move(call.done)] {
    const core::UnixSeconds now = ctx_.windows.NowSeconds();
    StatusOr<core::SummaryPlan> plan =
        core::PlanSummary(t.since, t.until, ctx_.windows.retention(), now);
    if (!plan.ok()) {
      return done(ErrorResponse(plan.status()));
    }
    if (group_id && *group_id != persistence::kUnassignedGroup) {
      if (Status s = ctx_.store.GetGroup(*group_id).status(); !s.ok()) {
        return done(ErrorResponse(s));
      }
    }
    StatusOr<core::Totals> sum = group_id ? ctx_.windows.Sum(core::Scope::kGroup, *group_id, *plan)
                                          : ctx_.windows.Sum(core::Scope::kWhole, 0, *plan);
    if (!sum.ok()) {
      return done(ErrorResponse(sum.status()));
    }
    JsonWriter w;
    w.BeginObject();
    WriteTotals(w, *sum);
    WriteWindow(w, plan->since, plan->until);
    w.EndObject();
    done(JsonResponse(http::status::ok, w.Take()));
  });
}

void WindowEndpoints::KeyStats(Call call) {
  const uint64_t id = call.id;
  SeriesOf(std::move(call), core::Scope::kKey, id);
}

void WindowEndpoints::GroupStats(Call call) {
  const uint64_t id = call.id;
  SeriesOf(std::move(call), core::Scope::kGroup, id);
}

void WindowEndpoints::Series(Call call) { SeriesOf(std::move(call), core::Scope::kWhole, 0); }

void WindowEndpoints::SeriesOf(Call call, core::Scope scope, uint64_t id) {
  StatusOr<TimeParams> times = Times(call.query);
  if (!times.ok()) {
    return call.done(ErrorResponse(times.status()));
  }
  core::Resolution step = core::Resolution::kMinute;
  if (std::optional<std::string> text = QueryParam(call.query, "step")) {
    StatusOr<core::Resolution> parsed = core::ParseStep(*text);
    if (!parsed.ok()) {
      return call.done(ErrorResponse(parsed.status()));
    }
    step = *parsed;
  }
  workers_.RunBlocking([this, t = *times, step, scope, id, done = std::move(call.done)] {
    const core::UnixSeconds now = ctx_.windows.NowSeconds();
    StatusOr<core::Window> w = core::NormaliseSeriesWindow(t.since, t.until, step, now);
    if (!w.ok()) {
      return done(ErrorResponse(w.status()));
    }
    if (Status s = core::CheckHeld(*w, ctx_.windows.retention(), now); !s.ok()) {
      return done(ErrorResponse(s));
    }
    StatusOr<std::vector<core::Totals>> points = ctx_.windows.Series(scope, id, *w);
    if (!points.ok()) {
      return done(ErrorResponse(points.status()));
    }
    JsonWriter j;
    j.BeginObject();
    WriteWindow(j, w->since, w->until);
    j.Key("step").Int(core::Seconds(step)).Key("points").BeginArray();
    core::UnixSeconds at = w->since;
    for (const core::Totals& p : *points) {
      j.BeginObject().Key("t").Int(at);
      WriteTotals(j, p);
      j.EndObject();
      at += core::Seconds(step);
    }
    j.EndArray().EndObject();
    done(JsonResponse(http::status::ok, j.Take()));
  });
}

void WindowEndpoints::Top(Call call) {
  StatusOr<TimeParams> times = Times(call.query);
  StatusOr<By> by = ByParam(call.query);
  StatusOr<uint64_t> limit = CountParam(call.query, "limit", 1, kMaxTopLimit, 20);
  StatusOr<uint64_t> min_requests =
      CountParam(call.query, "min_requests", 0, static_cast<uint64_t>(core::kMaxCount), 1);
  StatusOr<std::optional<uint64_t>> group = GroupIdParam(call.query);
  for (const Status& s :
       {times.status(), by.status(), limit.status(), min_requests.status(), group.status()}) {
    if (!s.ok()) {
      return call.done(ErrorResponse(s));
    }
  }
  workers_.RunBlocking([this, t = *times, by = *by, limit = *limit, min = *min_requests,
                        group_id = *group, done = std::move(call.done)] {
    const core::UnixSeconds now = ctx_.windows.NowSeconds();
    StatusOr<core::SummaryPlan> plan =
        core::PlanSummary(t.since, t.until, ctx_.windows.retention(), now);
    if (!plan.ok()) {
      return done(ErrorResponse(plan.status()));
    }
    // With group_id, the group's live keys now (a moved key ranks in its new group with its
    // whole window); without, each candidate's record is read until `limit` live keys.
    std::unordered_map<uint64_t, persistence::ApiKey> members;
    if (group_id) {
      StatusOr<std::vector<persistence::ApiKey>> keys = ctx_.store.ListKeys(*group_id, {});
      if (!keys.ok()) {
        return done(ErrorResponse(keys.status()));
      }
      for (persistence::ApiKey& k : *keys) {
        members.emplace(k.id, std::move(k));
      }
    }
    StatusOr<std::vector<persistence::KeyWindowTotals>> all = ctx_.windows.KeyTotals(*plan);
    if (!all.ok()) {
      return done(ErrorResponse(all.status()));
    }
    std::vector<persistence::KeyWindowTotals>& candidates = *all;
    std::erase_if(candidates, [&](const persistence::KeyWindowTotals& k) {
      return k.totals.total == 0 || static_cast<uint64_t>(k.totals.total) < min ||
             (group_id && !members.contains(k.key));
    });
    std::sort(candidates.begin(), candidates.end(),
              [by](const auto& a, const auto& b) { return RanksBefore(by, a, b); });
    JsonWriter w;
    w.BeginObject();
    WriteWindow(w, plan->since, plan->until);
    w.Key("by").String(ByName(by)).Key("keys").BeginArray();
    uint64_t listed = 0;
    for (const persistence::KeyWindowTotals& c : candidates) {
      if (listed == limit) {
        break;
      }
      persistence::ApiKey key;
      if (group_id) {
        key = members.at(c.key);
      } else if (StatusOr<persistence::ApiKey> k = ctx_.store.GetKey(c.key); k.ok()) {
        key = std::move(*k);
      } else if (k.status().code() == Status::Code::kNotFound) {
        continue;  // deleted since: its past stays in the windows, but it is no longer a key
      } else {
        return done(ErrorResponse(k.status()));
      }
      w.BeginObject()
          .Key("id")
          .Uint(key.id)
          .Key("group_id")
          .Uint(key.group_id)
          .Key("status")
          .String(key.status);
      WriteTotals(w, c.totals);
      w.EndObject();
      ++listed;
    }
    w.EndArray().EndObject();
    done(JsonResponse(http::status::ok, w.Take()));
  });
}

}  // namespace tally::daemon
