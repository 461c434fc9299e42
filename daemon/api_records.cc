// Record endpoints: provider groups and API keys, admin token.
//
//   GET    /admin/provider-groups[?status=S]          200 [group...] in id order
//   POST   /admin/provider-groups                     201 group (the body's ID, or the next)
//   GET    /admin/provider-groups/{id}                200 group | 404
//   PUT    /admin/provider-groups/{id}                201 created | 200 replaced
//   DELETE /admin/provider-groups/{id}                204 | 404 | 409 while it has live keys
//   (the same for /admin/api-keys, whose list takes group_id=N and status=S)
//
// Every store call runs off the I/O thread: reads on the worker pool, writes on its strand.
#include "daemon/api.h"
#include "daemon/record_json.h"

namespace tally::daemon {
namespace {

using persistence::ApiKey;
using persistence::ProviderGroup;

// The {id} in the path names the record; a body "ID" must agree with it.
bool BodyIdAgrees(uint64_t body_id, uint64_t path_id) { return body_id == 0 || body_id == path_id; }

// The status=S filter, decoded, into *status; false on a bad escape.
bool StatusFilter(std::string_view query, std::optional<std::string>* status) {
  std::optional<std::string_view> raw = QueryParam(query, "status");
  if (!raw) {
    return true;
  }
  *status = PercentDecode(*raw);
  return status->has_value();
}

Response BadStatusFilter() {
  return JsonError(http::status::bad_request, "status: bad percent-encoding");
}

}  // namespace

void Api::ListGroups(Call call) {
  std::optional<std::string> status;
  if (!StatusFilter(call.query, &status)) {
    return call.done(BadStatusFilter());
  }
  RunBlocking([this, status = std::move(status), done = std::move(call.done)] {
    std::vector<ProviderGroup> groups = ctx_.store.ListGroups();
    if (status) {
      std::erase_if(groups, [&](const ProviderGroup& g) { return g.status != *status; });
    }
    done(JsonResponse(http::status::ok, RenderGroups(groups)));
  });
}

void Api::CreateGroup(Call call) {
  core::StatusOr<ProviderGroup> g = ParseGroup(call.req.body());
  if (!g.ok()) {
    return call.done(ErrorResponse(g.status()));
  }
  RunWrite([this, g = std::move(g).value(), done = std::move(call.done)]() mutable {
    core::StatusOr<ProviderGroup> created = ctx_.store.CreateGroup(std::move(g));
    done(created.ok() ? JsonResponse(http::status::created, RenderGroup(*created))
                      : ErrorResponse(created.status()));
  });
}

void Api::GetGroup(Call call) {
  RunBlocking([this, id = call.id, done = std::move(call.done)] {
    core::StatusOr<ProviderGroup> g = ctx_.store.GetGroup(id);
    done(g.ok() ? JsonResponse(http::status::ok, RenderGroup(*g)) : ErrorResponse(g.status()));
  });
}

void Api::PutGroup(Call call) {
  core::StatusOr<ProviderGroup> g = ParseGroup(call.req.body());
  if (!g.ok()) {
    return call.done(ErrorResponse(g.status()));
  }
  if (!BodyIdAgrees(g->id, call.id)) {
    return call.done(JsonError(http::status::bad_request, "the body's ID differs from the path's"));
  }
  g->id = call.id;
  RunWrite([this, g = std::move(g).value(), done = std::move(call.done)]() mutable {
    // On the write strand no other admin write runs in between, so "existed" is accurate.
    bool existed = ctx_.store.GetGroup(g.id).ok();
    core::StatusOr<ProviderGroup> put = ctx_.store.PutGroup(std::move(g));
    done(put.ok()
             ? JsonResponse(existed ? http::status::ok : http::status::created, RenderGroup(*put))
             : ErrorResponse(put.status()));
  });
}

void Api::DeleteGroup(Call call) {
  RunWrite([this, id = call.id, done = std::move(call.done)] {
    core::Status s = ctx_.store.DeleteGroup(id);
    done(s.ok() ? EmptyResponse(http::status::no_content) : ErrorResponse(s));
  });
}

void Api::ListKeys(Call call) {
  std::optional<std::string> status;
  if (!StatusFilter(call.query, &status)) {
    return call.done(BadStatusFilter());
  }
  std::optional<uint64_t> group_id;
  if (std::optional<std::string_view> raw = QueryParam(call.query, "group_id")) {
    if (*raw == "0") {
      group_id = 0;
    } else if (std::optional<uint64_t> id = ParseId(*raw)) {
      group_id = *id;
    } else {
      return call.done(
          JsonError(http::status::bad_request, "group_id must be an integer from 0 to 2^63-1"));
    }
  }
  RunBlocking([this, group_id, status = std::move(status), done = std::move(call.done)] {
    core::StatusOr<std::vector<ApiKey>> keys = ctx_.store.ListKeys(group_id, status);
    done(keys.ok() ? JsonResponse(http::status::ok, RenderKeys(*keys))
                   : ErrorResponse(keys.status()));
  });
}

void Api::CreateKey(Call call) {
  core::StatusOr<ApiKey> k = ParseKey(call.req.body());
  if (!k.ok()) {
    return call.done(ErrorResponse(k.status()));
  }
  RunWrite([this, k = std::move(k).value(), done = std::move(call.done)]() mutable {
    core::StatusOr<ApiKey> created = ctx_.store.CreateKey(std::move(k));
    done(created.ok() ? JsonResponse(http::status::created, RenderKey(*created))
                      : ErrorResponse(created.status()));
  });
}

void Api::GetKey(Call call) {
  RunBlocking([this, id = call.id, done = std::move(call.done)] {
    core::StatusOr<ApiKey> k = ctx_.store.GetKey(id);
    done(k.ok() ? JsonResponse(http::status::ok, RenderKey(*k)) : ErrorResponse(k.status()));
  });
}

void Api::PutKey(Call call) {
  core::StatusOr<ApiKey> k = ParseKey(call.req.body());
  if (!k.ok()) {
    return call.done(ErrorResponse(k.status()));
  }
  if (!BodyIdAgrees(k->id, call.id)) {
    return call.done(JsonError(http::status::bad_request, "the body's ID differs from the path's"));
  }
  k->id = call.id;
  RunWrite([this, k = std::move(k).value(), done = std::move(call.done)]() mutable {
    // A key can also be created by a flush (an unknown id counted in the unassigned group);
    // that race only changes whether this answers 200 or 201.
    bool existed = ctx_.store.GetKey(k.id).ok();
    core::StatusOr<ApiKey> put = ctx_.store.PutKey(std::move(k));
    done(put.ok()
             ? JsonResponse(existed ? http::status::ok : http::status::created, RenderKey(*put))
             : ErrorResponse(put.status()));
  });
}

void Api::DeleteKey(Call call) {
  RunWrite([this, id = call.id, done = std::move(call.done)] {
    core::Status s = ctx_.store.DeleteKey(id);
    done(s.ok() ? EmptyResponse(http::status::no_content) : ErrorResponse(s));
  });
}

}  // namespace tally::daemon
