#include "daemon/api/counting.h"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include "core/ingest.h"
#include "daemon/api/query.h"
#include "daemon/api/record_json.h"
#include "daemon/http/json_writer.h"
#include "daemon/log.h"

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

// SHA-256 of the body (32 bytes): what an Idempotency-Key's stored answer is compared by, so
// two different bodies never pass for the same request. Empty if libcrypto fails.
std::string BodyDigest(std::string_view body) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(body.data(), body.size(), md, &size, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(md), size);
}

// The 64-bit FNV-1a hash of the body as older builds stored it (record_codec.h, idempotent
// answers version 1): 8 bytes, little-endian. Only to compare answers stored before the
// upgrade, which expire within 24 hours of it.
std::string LegacyBodyHash(std::string_view body) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : body) {
    h = (h ^ c) * 1099511628211ULL;
  }
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(h >> (8 * i));
  }
  return out;
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

// The digests of a request body: SHA-256, and the legacy hash for answers stored before it.
struct BodyDigests {
  std::string sha256;
  std::string legacy;
};

// The answer to a request whose Idempotency-Key already has an answer.
Response Replay(const persistence::IdempotentAnswer& first, const BodyDigests& digests) {
  const bool same = first.request_digest.size() == 8 ? first.request_digest == digests.legacy
                                                     : first.request_digest == digests.sha256;
  if (!same) {
    return JsonError(http::status::unprocessable_entity,
                     "Idempotency-Key was already used with a different request body");
  }
  Response res = JsonResponse(http::status::ok, first.response);
  res.set("Idempotent-Replayed", "true");
  return res;
}

}  // namespace

void CountingEndpoints::Ingest(Call call) {
  // The whole request is validated before a line is counted: a refused request applies
  // nothing, so a client that corrects it and retries counts its lines once.
  std::optional<std::string> wait = QueryParam(call.query, "wait");
  if (wait && *wait != "flush") {
    return call.done(JsonError(http::status::bad_request, "wait must be 'flush'"));
  }
  core::MappedCounts mapped;
  core::LineCounts counts = IngestOrRefuse(call.req.body(), ctx_.metric_prefix, ctx_.table,
                                           ctx_.mapping.get(), &mapped, ctx_.failure_codes);
  ThisThreadCounters().CountLines(Transport::kHttp, counts);
  if (ctx_.mapping != nullptr) {
    ThisThreadCounters().CountMapped(&mapped, ctx_.mapping->size());
  }
  if (!wait) {
    return call.done(Counts(http::status::accepted, counts));
  }
  // The increments are in the table now, before the registration, so the flush that
  // releases this waiter drains them.
  ctx_.flusher.AfterFlush([counts, done = std::move(call.done)](bool committed) {
    if (committed) {
      done(Counts(http::status::ok, counts));
    } else {
      done(JsonError(http::status::service_unavailable,
                     "no flush committed in time (tallyd is stopping, or flushes are failing "
                     "for 30 s); the lines are counted and stay pending"));
    }
  });
  ctx_.flusher.Wake();
}

void CountingEndpoints::CountDropped(const persistence::FlushResult& r) {
  // Relaxed: a statistic (see ProcessMetrics).
  ctx_.process.internal_flush_dropped_deleted.fetch_add(r.dropped_deleted,
                                                        std::memory_order_relaxed);
}

void CountingEndpoints::InternalFlush(Call call) {
  // Validate the whole body before anything is applied.
  core::StatusOr<std::vector<core::KeyDelta>> deltas = ParseFlushBody(call.req.body());
  if (!deltas.ok()) {
    return call.done(ErrorResponse(deltas.status()));
  }
  if (call.req.count("Tally-Source") + call.req.count("Tally-Sequence") > 0) {
    // A forwarded batch: its per-source sequence, not an Idempotency-Key, makes it exactly once.
    return SourcedFlush(std::move(call), std::move(deltas).value());
  }
  std::optional<std::string> key;
  if (auto it = call.req.find("Idempotency-Key"); it != call.req.end()) {
    key = std::string(it->value());
    // Two keys are refused, not one of them taken: a retry naming the other would apply the
    // deltas again.
    if (call.req.count("Idempotency-Key") > 1) {
      return call.done(
          JsonError(http::status::bad_request, "Idempotency-Key must be given at most once"));
    }
    if (!ValidIdempotencyKey(*key)) {
      return call.done(JsonError(http::status::bad_request,
                                 "Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
  }
  BodyDigests digests;
  if (key) {
    digests = {BodyDigest(call.req.body()), LegacyBodyHash(call.req.body())};
    if (digests.sha256.empty()) {
      return call.done(JsonError(http::status::internal_server_error, "cannot digest the body"));
    }
  }
  // All or nothing: a delta that would take a total past 2^63-1, or unknown ids past
  // --max-keys key records, refuse the whole request (409) and nothing is applied.
  const persistence::FlushRules rules{.all_or_nothing = true, .max_keys = ctx_.max_keys};
  // On the write strand: the lookup and the write it guards run with no other idempotent
  // write in between.
  workers_.RunWrite([this, rules, deltas = std::move(deltas).value(), key = std::move(key),
                     digests = std::move(digests), done = std::move(call.done)]() mutable {
    if (!key) {
      core::StatusOr<persistence::FlushResult> r = ctx_.store.ApplyFlush(&deltas, rules);
      if (r.ok()) {
        CountDropped(*r);
      }
      return done(r.ok() ? JsonResponse(http::status::ok, RenderFlushAnswer(*r))
                         : ErrorResponse(r.status()));
    }
    if (std::optional<persistence::IdempotentAnswer> first = ctx_.store.LookupIdempotent(*key)) {
      return done(Replay(*first, digests));
    }
    persistence::IdempotentAnswer answer{*key, digests.sha256, {}};
    core::StatusOr<persistence::FlushResult> r =
        ctx_.store.ApplyFlush(&deltas, &answer, RenderFlushAnswer, rules);
    if (r.ok()) {
      CountDropped(*r);
      return done(JsonResponse(http::status::ok,
                               answer.response.empty() ? RenderFlushAnswer(*r) : answer.response));
    }
    if (r.status().code() == core::Status::Code::kConflict) {
      // Another writer recorded this key first: answer from its record.
      if (std::optional<persistence::IdempotentAnswer> first = ctx_.store.LookupIdempotent(*key)) {
        return done(Replay(*first, digests));
      }
    }
    done(ErrorResponse(r.status()));
  });
}

void CountingEndpoints::AdminFlush(Call call) {
  ctx_.flusher.AfterFlushOutcome([done = std::move(call.done)](const FlushOutcome& outcome) {
    if (!outcome.committed) {
      return done(JsonError(
          http::status::service_unavailable,
          "no flush committed in time (tallyd is stopping, or flushes are failing for 30 s)"));
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

void CountingEndpoints::Summary(Call call) {
  core::StatusOr<std::optional<uint64_t>> group = GroupIdParam(call.query);
  if (!group.ok()) {
    return call.done(ErrorResponse(group.status()));
  }
  std::optional<uint64_t> group_id = *group;
  workers_.RunBlocking([this, group_id, done = std::move(call.done)] {
    if (!group_id) {
      return done(JsonResponse(http::status::ok, RenderTotals(ctx_.store.Summary())));
    }
    core::StatusOr<core::Totals> totals = ctx_.store.GroupSummary(*group_id);
    done(totals.ok() ? JsonResponse(http::status::ok, RenderTotals(*totals))
                     : ErrorResponse(totals.status()));
  });
}

}  // namespace tally::daemon
