// CountingEndpoints::SourcedFlush: POST /internal/apikey-stats/flush with Tally-Source and
// Tally-Sequence, a batch forwarded by another tallyd (issue 17): applied once per source
// sequence, for ever (persistence/sources_store.h).
#include <charconv>

#include "core/clock.h"
#include "daemon/api/counting.h"
#include "daemon/api/record_json.h"
#include "daemon/http/json_writer.h"
#include "daemon/log.h"
#include "persistence/outbox_store.h"

namespace tally::daemon {
namespace {

// "N" or "N-M", 1 <= N <= M <= 2^63-1, digits only.
bool ParseSequence(std::string_view text, uint64_t* first, uint64_t* last) {
  auto number = [](std::string_view t, uint64_t* v) {
    if (t.empty() || t.size() > 19 || t.find_first_not_of("0123456789") != std::string_view::npos) {
      return false;
    }
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), *v);
    return ec == std::errc() && end == t.data() + t.size() && *v >= 1 && *v <= uint64_t{INT64_MAX};
  };
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    return number(text, first) && (*last = *first, true);
  }
  return number(text.substr(0, dash), first) && number(text.substr(dash + 1), last) &&
         *first <= *last;
}

Response Answer(size_t updated, size_t groups, bool replayed, uint64_t mark) {
  JsonWriter w;
  w.BeginObject()
      .Key("updated")
      .Uint(updated)
      .Key("groups_updated")
      .Uint(groups)
      .Key("replayed")
      .Bool(replayed)
      .Key("last_sequence")
      .Uint(mark)
      .EndObject();
  Response res = JsonResponse(http::status::ok, w.Take());
  if (replayed) {
    res.set("Idempotent-Replayed", "true");
  }
  return res;
}

}  // namespace

void CountingEndpoints::SourcedFlush(Call call, std::vector<core::KeyDelta> deltas) {
  if (call.req.count("Tally-Source") != 1 || call.req.count("Tally-Sequence") != 1) {
    return call.done(
        JsonError(http::status::bad_request,
                  "Tally-Source and Tally-Sequence must be given together, once each"));
  }
  std::string source(call.req["Tally-Source"]);
  if (!persistence::OutboxStore::ValidSource(source)) {
    return call.done(
        JsonError(http::status::bad_request,
                  "Tally-Source must be 1 to 128 visible ASCII characters other than ':'"));
  }
  uint64_t first = 0;
  uint64_t last = 0;
  if (!ParseSequence(call.req["Tally-Sequence"], &first, &last)) {
    return call.done(JsonError(http::status::bad_request,
                               "Tally-Sequence must be N or N-M, 1 <= N <= M <= 2^63-1"));
  }
  if (ctx_.sources == nullptr) {
    return call.done(JsonError(http::status::service_unavailable, "sources are not loaded"));
  }
  persistence::FlushRules rules{.all_or_nothing = true, .max_keys = ctx_.max_keys};
  rules.source = persistence::FlushSource{source, first, last};
  // On the write strand: the mark read here cannot move before the flush below (only
  // sourced flushes move it, and they all run here).
  workers_.RunWrite([this, rules = std::move(rules), deltas = std::move(deltas),
                     done = std::move(call.done)]() mutable {
    static RateLimiter gap_log(std::chrono::seconds(10));
    const persistence::FlushSource& src = *rules.source;
    const uint64_t mark = ctx_.sources->Mark(src.source);
    if (src.last_sequence <= mark) {
      ctx_.sources->CountReplay(src.source, core::UnixNowNs());
      return done(Answer(0, 0, true, mark));
    }
    core::StatusOr<persistence::FlushResult> r = ctx_.store.ApplyFlush(&deltas, rules);
    if (!r.ok()) {
      if (r.status().code() == core::Status::Code::kConflict) {  // the mark moved meanwhile
        ctx_.sources->CountReplay(src.source, core::UnixNowNs());
        return done(Answer(0, 0, true, ctx_.sources->Mark(src.source)));
      }
      return done(ErrorResponse(r.status()));
    }
    CountDropped(*r);
    if (src.first_sequence > mark + 1) {
      uint64_t suppressed = 0;
      if (gap_log.Allow(&suppressed)) {
        LogUpstream()->warn(
            "source {}: sequences {}..{} never arrived (applied {} after {}); a gap is applied, "
            "never waited for ({} more gaps suppressed)",
            src.source, mark + 1, src.first_sequence - 1, src.first_sequence, mark, suppressed);
      }
    }
    done(Answer(r->keys_updated, r->groups_updated, false, src.last_sequence));
  });
}

}  // namespace tally::daemon
