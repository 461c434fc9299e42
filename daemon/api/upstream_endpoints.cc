#include "daemon/api/upstream_endpoints.h"

#include "core/clock.h"
#include "daemon/api/query.h"
#include "daemon/http/json_writer.h"
#include "daemon/upstream/forwarder.h"

namespace tally::daemon {
namespace {

Response ForwardingOff() {
  return JsonError(http::status::not_found, "forwarding is off (--forward-url is not set)");
}

// The consumer named by ?consumer=, "forward" by default.
std::string ConsumerParam(const std::string& query) {
  std::optional<std::string> c = QueryParam(query, "consumer");
  return c ? *c : std::string(kForwardConsumer);
}

}  // namespace

void UpstreamEndpoints::Outbox(Call call) {
  workers_.RunBlocking([this, done = std::move(call.done)] {
    JsonWriter w;
    w.BeginObject().Key("enabled").Bool(ctx_.outbox != nullptr);
    if (ctx_.outbox == nullptr) {
      w.EndObject();
      return done(JsonResponse(http::status::ok, w.Take()));
    }
    const persistence::OutboxStats s = ctx_.outbox->stats();
    const int64_t now = core::UnixNowNs();
    w.Key("source").String(ctx_.outbox->source());
    w.Key("last_sequence").Uint(s.last_sequence);
    w.Key("depth").Uint(s.batches);
    w.Key("bytes").Uint(s.bytes());
    w.Key("max_bytes").Uint(ctx_.outbox_max_bytes);
    w.Key("oldest_age_seconds")
        .Double(s.oldest_created_at == 0 ? 0.0
                                         : static_cast<double>(now - s.oldest_created_at) / 1e9);
    w.Key("coalesced").Uint(s.coalesced);
    w.Key("dead_letters").BeginArray();
    for (const persistence::DeadLetterInfo& d : ctx_.outbox->DeadLetters()) {
      w.BeginObject()
          .Key("id")
          .Uint(d.id)
          .Key("consumer")
          .String(d.consumer)
          .Key("first_sequence")
          .Uint(d.first_sequence)
          .Key("last_sequence")
          .Uint(d.last_sequence)
          .Key("keys")
          .Uint(d.keys)
          .Key("bytes")
          .Uint(d.bytes)
          .Key("created_at")
          .Time(d.created_at)
          .Key("dead_at")
          .Time(d.dead_at)
          .Key("http_status")
          .Uint(d.http_status)
          .Key("reason")
          .String(d.reason)
          .EndObject();
    }
    w.EndArray().EndObject();
    done(JsonResponse(http::status::ok, w.Take()));
  });
}

void UpstreamEndpoints::RetryDead(Call call) {
  if (ctx_.outbox == nullptr) {
    return call.done(ForwardingOff());
  }
  workers_.RunWrite(
      [this, id = call.id, consumer = ConsumerParam(call.query), done = std::move(call.done)] {
        core::Status s = ctx_.outbox->RetryDead(consumer, id);
        if (!s.ok()) {
          return done(ErrorResponse(s));
        }
        JsonWriter w;
        w.BeginObject().Key("retried").Uint(id).Key("consumer").String(consumer).EndObject();
        done(JsonResponse(http::status::ok, w.Take()));
      });
}

void UpstreamEndpoints::DeleteDead(Call call) {
  if (ctx_.outbox == nullptr) {
    return call.done(ForwardingOff());
  }
  workers_.RunWrite(
      [this, id = call.id, consumer = ConsumerParam(call.query), done = std::move(call.done)] {
        core::Status s = ctx_.outbox->DeleteDead(consumer, id);
        done(s.ok() ? EmptyResponse(http::status::no_content) : ErrorResponse(s));
      });
}

void UpstreamEndpoints::Sources(Call call) {
  workers_.RunBlocking([this, done = std::move(call.done)] {
    JsonWriter w;
    w.BeginObject().Key("sources").BeginArray();
    if (ctx_.sources != nullptr) {
      for (const persistence::SourceInfo& s : ctx_.sources->List()) {
        w.BeginObject()
            .Key("source")
            .String(s.source)
            .Key("last_sequence")
            .Uint(s.last_sequence)
            .Key("last_seen")
            .Time(s.last_seen)
            .Key("replays")
            .Uint(s.replays)
            .Key("gaps")
            .Uint(s.gaps)
            .EndObject();
      }
    }
    w.EndArray().EndObject();
    done(JsonResponse(http::status::ok, w.Take()));
  });
}

}  // namespace tally::daemon
