// Record endpoints: provider groups and API keys, admin token.
//
//   GET    /admin/provider-groups[?status=S][&limit=N][&after_id=I]
//                                                     200 [group...] in id order
//   POST   /admin/provider-groups                     201 group (the body's ID, or the next)
//   GET    /admin/provider-groups/{id}                200 group | 404
//   PUT    /admin/provider-groups/{id}                201 created | 200 replaced
//   DELETE /admin/provider-groups/{id}                204 | 404 | 409 while it has live keys
//   (the same for /admin/api-keys, whose list also takes group_id=N)
//
// Lists: with limit or after_id, one page (limit default 100, at most 1000) and, when more
// may follow, a Link header naming the next page; without them, every record, streamed
// (chunked) 256 records per piece, so memory does not grow with the list (HTTP/1.0 and HEAD
// get the same array built whole).
//
// Every store call runs off the I/O thread: reads on the Workers, writes on their strand.
#pragma once

#include "core/counter_table.h"
#include "daemon/api/call.h"
#include "persistence/store.h"

namespace tally::daemon {

// What the record endpoints use (owned by the Daemon, outliving them): the store, and the
// counter table, so an automatic key id skips ids traffic has counted and a deleted key's
// later lines are refused at ingest (CounterTable::Tombstone).
struct RecordsContext {
  persistence::Store& store;
  core::CounterTable& table;
};

class RecordEndpoints {
 public:
  RecordEndpoints(RecordsContext ctx, Workers& workers) : ctx_(ctx), workers_(workers) {}

  void ListGroups(Call call);
  void CreateGroup(Call call);
  void GetGroup(Call call);
  void PutGroup(Call call);
  void DeleteGroup(Call call);
  void ListKeys(Call call);
  void CreateKey(Call call);
  void GetKey(Call call);
  void PutKey(Call call);
  void DeleteKey(Call call);

 private:
  RecordsContext ctx_;
  Workers& workers_;
};

}  // namespace tally::daemon
