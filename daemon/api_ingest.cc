// Counting endpoints: POST /v1/ingest, POST /internal/apikey-stats/flush, POST /admin/flush,
// GET /admin/apikey-stats/summary.
#include <boost/json.hpp>

#include "core/ingest.h"
#include "daemon/api.h"
#include "daemon/json_writer.h"
#include "daemon/log.h"
#include "daemon/record_json.h"

namespace tally::daemon {
namespace {

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
  w.BeginObject();
  WriteTotals(w, t);
  w.EndObject();
  return w.Take();
}

std::string RenderFlushAnswer(const persistence::FlushResult& r) {
  JsonWriter w;
  w.BeginObject()
      .Key("updated")
      .Uint(r.keys_updated)
      .Key("groups_updated")
      .Uint(r.groups_updated)
      .EndObject();
  return w.Take();
}

// FNV-1a, 64 bits: stable across builds and restarts, which the stored hashes need.
uint64_t BodyHash(std::string_view body) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : body) {
    h = (h ^ c) * 1099511628211ULL;
  }
  return h;
}

// 1 to 255 visible ASCII characters.
bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255) {
    return false;
  }
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

// The answer to a request whose Idempotency-Key already has an answer.
Response Replay(const persistence::IdempotentAnswer& first, uint64_t hash) {
  if (first.request_hash != hash) {
    return JsonError(http::status::unprocessable_entity,
                     "Idempotency-Key was already used with a different request body");
  }
  Response res = JsonResponse(http::status::ok, first.response);
  res.set("Idempotent-Replayed", "true");
  return res;
}

}  // namespace

void Api::Ingest(Call call) {
  core::LineCounts counts =
      core::IngestBuffer(call.req.body(), ctx_.config.metric_prefix, ctx_.table);
  ThisThreadCounters().CountLines(Transport::kHttp, counts);
  std::optional<std::string> wait = QueryParam(call.query, "wait");
  if (!wait) {
    return call.done(Counts(http::status::accepted, counts));
  }
  if (*wait != "flush") {
    return call.done(JsonError(http::status::bad_request, "wait must be 'flush'"));
  }
  // The increments are in the table now, before the registration, so the flush that
  // releases this waiter drains them.
  ctx_.flusher.AfterFlush([counts, done = std::move(call.done)](bool committed) {
    if (committed) {
      done(Counts(http::status::ok, counts));
    } else {
      done(JsonError(http::status::service_unavailable,
                     "stopped before a flush committed; the lines are counted and will be "
                     "flushed at the final flush"));
    }
  });
  ctx_.flusher.Wake();
}

void Api::InternalFlush(Call call) {
  // Validate the whole body before anything is applied.
  core::StatusOr<std::vector<core::KeyDelta>> deltas = ParseFlushBody(call.req.body());
  if (!deltas.ok()) {
    return call.done(ErrorResponse(deltas.status()));
  }
  std::optional<std::string> key;
  if (auto it = call.req.find("Idempotency-Key"); it != call.req.end()) {
    key = std::string(it->value());
    if (!ValidIdempotencyKey(*key)) {
      return call.done(JsonError(http::status::bad_request,
                                 "Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
  }
  uint64_t hash = BodyHash(call.req.body());
  // On the write strand: the lookup and the write it guards run with no other idempotent
  // write in between.
  RunWrite([this, deltas = std::move(deltas).value(), key = std::move(key), hash,
            done = std::move(call.done)]() mutable {
    if (!key) {
      core::StatusOr<persistence::FlushResult> r = ctx_.store.ApplyFlush(&deltas);
      return done(r.ok() ? JsonResponse(http::status::ok, RenderFlushAnswer(*r))
                         : ErrorResponse(r.status()));
    }
    if (std::optional<persistence::IdempotentAnswer> first = ctx_.store.LookupIdempotent(*key)) {
      return done(Replay(*first, hash));
    }
    persistence::IdempotentAnswer answer{*key, hash, {}};
    core::StatusOr<persistence::FlushResult> r =
        ctx_.store.ApplyFlush(&deltas, &answer, RenderFlushAnswer);
    if (r.ok()) {
      return done(JsonResponse(http::status::ok,
                               answer.response.empty() ? RenderFlushAnswer(*r) : answer.response));
    }
    if (r.status().code() == core::Status::Code::kConflict) {
      // Another writer recorded this key first: answer from its record.
      if (std::optional<persistence::IdempotentAnswer> first = ctx_.store.LookupIdempotent(*key)) {
        return done(Replay(*first, hash));
      }
    }
    done(ErrorResponse(r.status()));
  });
}

void Api::AdminFlush(Call call) {
  ctx_.flusher.AfterFlushOutcome([done = std::move(call.done)](const FlushOutcome& outcome) {
    if (!outcome.committed) {
      return done(JsonError(http::status::service_unavailable, "the flusher has stopped"));
    }
    JsonWriter w;
    w.BeginObject()
        .Key("epoch")
        .Uint(outcome.epoch)
        .Key("keys")
        .Uint(outcome.keys_updated)
        .Key("groups")
        .Uint(outcome.groups_updated)
        .EndObject();
    done(JsonResponse(http::status::ok, w.Take()));
  });
  ctx_.flusher.Wake();
}

void Api::Summary(Call call) {
  core::StatusOr<std::optional<uint64_t>> group = IdParam(call.query, "group_id", true);
  if (!group.ok()) {
    return call.done(ErrorResponse(group.status()));
  }
  std::optional<uint64_t> group_id = *group;
  RunBlocking([this, group_id, done = std::move(call.done)] {
    if (!group_id) {
      return done(JsonResponse(http::status::ok, RenderTotals(ctx_.store.Summary())));
    }
    core::StatusOr<core::Totals> totals = ctx_.store.GroupSummary(*group_id);
    done(totals.ok() ? JsonResponse(http::status::ok, RenderTotals(*totals))
                     : ErrorResponse(totals.status()));
  });
}

}  // namespace tally::daemon
