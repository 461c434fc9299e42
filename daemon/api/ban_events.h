// BanEventHub: serves GET /admin/events, the Server-Sent Events stream of the ban log
// (persistence/ban_keeper.h), to any number of gateways.
//
// Each stream is a pull-driven chunked body (http/server.h BodySource): the session asks for
// its next piece after writing the previous one, so a client holds at most one piece (at
// most kMaxEventsPerPiece events) and a client that stops reading is dropped by the
// session's write deadline; it resumes with Last-Event-ID. A stream with nothing to send
// waits here; the hub's thread answers it when the keeper commits events (Notify, from the
// flush, within the flush's commit) or, after `heartbeat` without one, with a comment line
// (": keep-alive"), so a dead peer is noticed by the failed write and an idle proxy keeps
// the connection. Stop() ends every stream (the last chunk) and every later one at once.
//
// The stream: "retry: 1000" first; then per event
//   id: <id>\nevent: <ban|unban|policy>\ndata: <one JSON object>\n\n
// A request's Last-Event-ID (or ?last_event_id=) resumes after that id from the log (the last
// 10,000 events); without one the stream starts with the next event.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/http/server.h"
#include "persistence/ban_keeper.h"

namespace tally::daemon {

// One event as its SSE lines ("id:", "event:", "data:" and the blank line).
std::string RenderSseEvent(const persistence::BanEvent& e);

class BanEventHub : public std::enable_shared_from_this<BanEventHub> {
 public:
  static constexpr size_t kMaxEventsPerPiece = 256;

  BanEventHub(const persistence::BanKeeper& keeper, std::chrono::milliseconds heartbeat);
  ~BanEventHub();
  // Starts the hub's thread.
  void Start();
  // New events were committed: wake the waiting streams. Cheap (a notify).
  void Notify();
  // Ends every stream; later ones end at once. Joins the thread.
  void Stop();

  // The body of one stream resuming after `last_event_id` (nullopt: from the next event).
  BodySource Stream(std::optional<uint64_t> last_event_id);
  size_t waiting_streams() const;

 private:
  struct Cursor {
    uint64_t after = 0;
    bool started = false;
  };
  struct Waiter {
    std::shared_ptr<Cursor> cursor;
    EmitPiece emit;
  };
  // Emits the next piece for `cursor`, or parks it; caller holds mu_.
  void NextLocked(const std::shared_ptr<Cursor>& cursor, EmitPiece emit);
  // The events after cursor->after as one piece ("" when none); advances the cursor.
  std::string Take(Cursor& cursor) const;
  void Run();

  const persistence::BanKeeper& keeper_;
  const std::chrono::milliseconds heartbeat_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Waiter> waiters_;  // guarded by mu_
  bool notified_ = false;        // guarded by mu_
  bool stopped_ = false;         // guarded by mu_
  std::thread thread_;
};

}  // namespace tally::daemon
