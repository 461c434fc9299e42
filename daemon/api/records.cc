#include "daemon/api/records.h"

#include <boost/url/url.hpp>

#include "daemon/api/query.h"
#include "daemon/api/record_json.h"
#include "daemon/log.h"

namespace tally::daemon {
namespace {

using persistence::ApiKey;
using persistence::ProviderGroup;

// The {id} in the path names the record; a body "ID" must agree with it.
bool BodyIdAgrees(uint64_t body_id, uint64_t path_id) { return body_id == 0 || body_id == path_id; }

constexpr size_t kDefaultPageLimit = 100;
constexpr size_t kMaxPageLimit = 1000;
constexpr size_t kListChunk = 256;

// A list's query: its filters and its page.
struct ListQuery {
  std::optional<std::string> status;
  std::optional<uint64_t> group_id;  // keys only
  uint64_t after_id = 0;
  size_t limit = kDefaultPageLimit;
  bool paged = false;  // limit or after_id given
};

core::StatusOr<ListQuery> ParseListQuery(std::string_view query, bool keys) {
  ListQuery q;
  q.status = QueryParam(query, "status");
  if (keys) {
    core::StatusOr<std::optional<uint64_t>> group = GroupIdParam(query);
    if (!group.ok()) {
      return group.status();
    }
    q.group_id = *group;
  }
  core::StatusOr<std::optional<uint64_t>> after = IdParam(query, "after_id", true);
  if (!after.ok()) {
    return after.status();
  }
  if (std::optional<std::string> limit = QueryParam(query, "limit")) {
    std::optional<uint64_t> n = ParseId(*limit);
    if (!n || *n > kMaxPageLimit) {
      return core::Status::InvalidArgument("limit must be an integer from 1 to " +
                                           std::to_string(kMaxPageLimit));
    }
    q.limit = *n;
    q.paged = true;
  }
  if (*after) {
    q.after_id = **after;
    q.paged = true;
  }
  return q;
}

// Link: </path?...&limit=N&after_id=LAST>; rel="next", the query re-encoded.
std::string NextLink(std::string_view path, const ListQuery& q, uint64_t last_id) {
  boost::urls::url u;
  u.set_path(path);
  if (q.group_id) {
    u.params().append({"group_id", std::to_string(*q.group_id)});
  }
  if (q.status) {
    u.params().append({"status", *q.status});
  }
  u.params().append({"limit", std::to_string(q.limit)});
  u.params().append({"after_id", std::to_string(last_id)});
  std::string link = "<";
  link.append(u.buffer());
  link.append(">; rel=\"next\"");
  return link;
}

// Reads one page of up to `limit` records after `after_id` (Store::List*Page).
template <typename Record>
using PageReader = std::function<core::StatusOr<std::vector<Record>>(uint64_t after, size_t limit)>;

// Answers a list: one page with its Link, or everything when the query asks for no page.
template <typename Record>
Response ListResponse(std::string_view path, const ListQuery& q, const PageReader<Record>& read,
                      void (*write)(JsonWriter&, const Record&)) {
  JsonWriter w;
  w.BeginArray();
  if (q.paged) {
    // One more than asked: whether a next page exists, without an empty last page.
    core::StatusOr<std::vector<Record>> page = read(q.after_id, q.limit + 1);
    if (!page.ok()) {
      return ErrorResponse(page.status());
    }
    const bool more = page->size() > q.limit;
    page->resize(std::min(page->size(), q.limit));
    for (const Record& r : *page) {
      write(w, r);
    }
    w.EndArray();
    Response res = JsonResponse(http::status::ok, w.Take());
    if (more) {
      res.set(http::field::link, NextLink(path, q, page->back().id));
    }
    return res;
  }
  for (uint64_t after = q.after_id;;) {
    core::StatusOr<std::vector<Record>> page = read(after, kListChunk);
    if (!page.ok()) {
      return ErrorResponse(page.status());
    }
    for (const Record& r : *page) {
      write(w, r);
    }
    if (page->size() < kListChunk) {
      break;
    }
    after = page->back().id;
  }
  w.EndArray();
  return JsonResponse(http::status::ok, w.Take());
}

// Whether a list is answered as a stream: every record asked for, and a session that takes
// a chunked answer (HTTP/1.1, GET).
bool Streams(const Call& call, const ListQuery& q) {
  return !q.paged && call.stream && call.req.version() >= 11 &&
         call.req.method() == http::verb::get;
}

// Streams every record: "[", then kListChunk records per piece, each piece read (under the
// store's lock for that piece only) and rendered on a worker when the session has sent the
// previous one, then "]". Memory stays one piece, whatever the list's length. A store error
// after the 200 was sent aborts the body (the client sees it truncated) and is logged.
template <typename Record>
void StreamList(Workers& workers, std::string_view what, PageReader<Record> read,
                void (*write)(JsonWriter&, const Record&), StreamResponder stream) {
  struct State {  // touched by one piece at a time: each runs after the previous was sent
    uint64_t after = 0;
    bool opened = false;
    bool finished = false;
  };
  auto state = std::make_shared<State>();
  BodySource source = [&workers, what, read = std::move(read), write, state](EmitPiece emit) {
    if (state->finished) {
      return emit(std::string());
    }
    workers.RunBlocking([what, read, write, state, emit = std::move(emit)] {
      core::StatusOr<std::vector<Record>> page = read(state->after, kListChunk);
      if (!page.ok()) {
        LogHttp()->error("listing {} failed after the answer began: {}", what,
                         page.status().message());
        return emit(std::nullopt);
      }
      JsonWriter w;
      for (const Record& r : *page) {
        write(w, r);
      }
      std::string piece = !state->opened ? "[" : page->empty() ? "" : ",";
      piece += w.Take();
      state->opened = true;
      if (page->size() < kListChunk) {
        piece += ']';
        state->finished = true;
      } else {
        state->after = page->back().id;
      }
      emit(std::move(piece));
    });
  };
  Response head = JsonResponse(http::status::ok, std::string());
  stream(std::move(head), std::move(source));
}

// What differs between the two kinds of record: the store's calls, the JSON, the list path.
// Captureless lambdas, so the table does not depend on the store's exact signatures.
template <typename Record>
struct RecordKind {
  std::string_view path;  // the list's path, for its Link header
  std::string_view what;  // for the log
  core::StatusOr<Record> (*parse)(std::string_view body);
  void (*write)(JsonWriter& w, const Record& r);
  std::string (*render)(const Record& r);
  core::StatusOr<Record> (*get)(persistence::Store& store, uint64_t id);
  core::StatusOr<Record> (*create)(const RecordsContext& ctx, Record r);
  core::StatusOr<Record> (*put)(persistence::Store& store, Record r);
  core::Status (*remove)(const RecordsContext& ctx, uint64_t id);
};

const RecordKind<ProviderGroup> kGroups{
    "/admin/provider-groups",
    "provider groups",
    &ParseGroup,
    &WriteGroup,
    &RenderGroup,
    [](persistence::Store& s, uint64_t id) { return s.GetGroup(id); },
    [](const RecordsContext& c, ProviderGroup g) { return c.store.CreateGroup(std::move(g)); },
    [](persistence::Store& s, ProviderGroup g) { return s.PutGroup(std::move(g)); },
    [](const RecordsContext& c, uint64_t id) { return c.store.DeleteGroup(id); },
};

const RecordKind<ApiKey> kKeys{
    "/admin/api-keys",
    "api keys",
    &ParseKey,
    &WriteKey,
    &RenderKey,
    [](persistence::Store& s, uint64_t id) { return s.GetKey(id); },
    // An automatic id skips the ids traffic has counted since start (the table never frees
    // a slot), flushed or not: their counts belong to that id.
    [](const RecordsContext& c, ApiKey k) {
      const core::CounterTable& table = c.table;
      return c.store.CreateKey(std::move(k), [&table](uint64_t id) { return table.Contains(id); });
    },
    [](persistence::Store& s, ApiKey k) { return s.PutKey(std::move(k)); },
    // Once deleted, the key's lines are refused at ingest; lines counted before the mark
    // are dropped at the flush (README, "Deleted keys").
    [](const RecordsContext& c, uint64_t id) {
      core::Status s = c.store.DeleteKey(id);
      if (s.ok()) {
        (void)c.table.Tombstone(id);
      }
      return s;
    },
};

// GET of a list: streamed when the session takes it, else one answer built on a worker.
template <typename Record>
void List(const RecordKind<Record>& kind, Workers& workers, const ListQuery& q,
          PageReader<Record> read, Call call) {
  if (Streams(call, q)) {
    return StreamList<Record>(workers, kind.what, std::move(read), kind.write,
                              std::move(call.stream));
  }
  workers.RunBlocking([&kind, q, read = std::move(read), done = std::move(call.done)] {
    done(ListResponse<Record>(kind.path, q, read, kind.write));
  });
}

template <typename Record>
void Create(const RecordKind<Record>& kind, Workers& workers, RecordsContext ctx, Call call) {
  core::StatusOr<Record> r = kind.parse(call.req.body());
  if (!r.ok()) {
    return call.done(ErrorResponse(r.status()));
  }
  workers.RunWrite([&kind, ctx, r = std::move(r).value(), done = std::move(call.done)]() mutable {
    core::StatusOr<Record> created = kind.create(ctx, std::move(r));
    done(created.ok() ? JsonResponse(http::status::created, kind.render(*created))
                      : ErrorResponse(created.status()));
  });
}

template <typename Record>
void Get(const RecordKind<Record>& kind, Workers& workers, persistence::Store& store, Call call) {
  workers.RunBlocking([&kind, &store, id = call.id, done = std::move(call.done)] {
    core::StatusOr<Record> r = kind.get(store, id);
    done(r.ok() ? JsonResponse(http::status::ok, kind.render(*r)) : ErrorResponse(r.status()));
  });
}

template <typename Record>
void Put(const RecordKind<Record>& kind, Workers& workers, persistence::Store& store, Call call) {
  core::StatusOr<Record> r = kind.parse(call.req.body());
  if (!r.ok()) {
    return call.done(ErrorResponse(r.status()));
  }
  if (!BodyIdAgrees(r->id, call.id)) {
    return call.done(JsonError(http::status::bad_request, "the body's ID differs from the path's"));
  }
  r->id = call.id;
  workers.RunWrite([&kind, &store, r = std::move(r).value(),
                    done = std::move(call.done)]() mutable {
    // On the write strand no other admin write runs in between, so "existed" is accurate
    // for groups. A key can also be created by a flush (an unknown id counted in the
    // unassigned group); that race only changes whether this answers 200 or 201.
    bool existed = kind.get(store, r.id).ok();
    core::StatusOr<Record> put = kind.put(store, std::move(r));
    done(put.ok()
             ? JsonResponse(existed ? http::status::ok : http::status::created, kind.render(*put))
             : ErrorResponse(put.status()));
  });
}

template <typename Record>
void Delete(const RecordKind<Record>& kind, Workers& workers, RecordsContext ctx, Call call) {
  workers.RunWrite([&kind, ctx, id = call.id, done = std::move(call.done)] {
    core::Status s = kind.remove(ctx, id);
    done(s.ok() ? EmptyResponse(http::status::no_content) : ErrorResponse(s));
  });
}

}  // namespace

void RecordEndpoints::ListGroups(Call call) {
  core::StatusOr<ListQuery> q = ParseListQuery(call.query, /*keys=*/false);
  if (!q.ok()) {
    return call.done(ErrorResponse(q.status()));
  }
  PageReader<ProviderGroup> read = [this, status = q->status](uint64_t after, size_t limit) {
    return core::StatusOr<std::vector<ProviderGroup>>(
        ctx_.store.ListGroupsPage(after, limit, status));
  };
  List(kGroups, workers_, *q, std::move(read), std::move(call));
}

void RecordEndpoints::ListKeys(Call call) {
  core::StatusOr<ListQuery> q = ParseListQuery(call.query, /*keys=*/true);
  if (!q.ok()) {
    return call.done(ErrorResponse(q.status()));
  }
  PageReader<ApiKey> read = [this, group_id = q->group_id, status = q->status](uint64_t after,
                                                                               size_t limit) {
    return ctx_.store.ListKeysPage(after, limit, group_id, status);
  };
  List(kKeys, workers_, *q, std::move(read), std::move(call));
}

void RecordEndpoints::CreateGroup(Call call) { Create(kGroups, workers_, ctx_, std::move(call)); }
void RecordEndpoints::GetGroup(Call call) { Get(kGroups, workers_, ctx_.store, std::move(call)); }
void RecordEndpoints::PutGroup(Call call) { Put(kGroups, workers_, ctx_.store, std::move(call)); }
void RecordEndpoints::DeleteGroup(Call call) { Delete(kGroups, workers_, ctx_, std::move(call)); }
void RecordEndpoints::CreateKey(Call call) { Create(kKeys, workers_, ctx_, std::move(call)); }
void RecordEndpoints::GetKey(Call call) { Get(kKeys, workers_, ctx_.store, std::move(call)); }
void RecordEndpoints::PutKey(Call call) { Put(kKeys, workers_, ctx_.store, std::move(call)); }
void RecordEndpoints::DeleteKey(Call call) { Delete(kKeys, workers_, ctx_, std::move(call)); }

}  // namespace tally::daemon
