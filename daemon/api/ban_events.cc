#include "daemon/api/ban_events.h"

#include "daemon/http/json_writer.h"
#include "daemon/threads.h"

namespace tally::daemon {

using persistence::BanEvent;

std::string RenderSseEvent(const BanEvent& e) {
  JsonWriter w;
  w.BeginObject();
  w.Key("id").Uint(e.id);
  w.Key("type").String(persistence::BanEventTypeName(e.type));
  w.Key("at").Time(e.at);
  if (e.type == BanEvent::Type::kPolicy) {
    w.EndObject();
    // The policy as the API renders it (already JSON): spliced in before the closing brace.
    std::string data = w.Take();
    data.pop_back();
    data += ",\"policy\":" + e.reason + "}";
    return "id: " + std::to_string(e.id) + "\nevent: policy\ndata: " + data + "\n\n";
  }
  w.Key("api_key_id").Uint(e.key);
  w.Key("group_id").Uint(e.group_id);
  w.Key("rule").String(e.rule);
  if (e.type == BanEvent::Type::kBan) {
    w.Key("reason").String(e.reason);
    w.Key("ban_until").Time(e.ban_until_ns);
    w.Key("backoff_level").Uint(e.backoff_level);
  }
  w.EndObject();
  return "id: " + std::to_string(e.id) +
         "\nevent: " + std::string(persistence::BanEventTypeName(e.type)) + "\ndata: " + w.str() +
         "\n\n";
}

BanEventHub::BanEventHub(const persistence::BanKeeper& keeper, std::chrono::milliseconds heartbeat)
    : keeper_(keeper), heartbeat_(heartbeat) {}

BanEventHub::~BanEventHub() { Stop(); }

void BanEventHub::Start() {
  thread_ = std::thread([this] {
    BecomeBackgroundThread("tally-events");
    Run();
  });
}

void BanEventHub::Notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_one();
}

void BanEventHub::Stop() {
  std::vector<Waiter> ending;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    ending.swap(waiters_);
  }
  cv_.notify_one();
  for (Waiter& w : ending) {
    w.emit(std::string());  // the last chunk
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    thread_.join();
  }
}

size_t BanEventHub::waiting_streams() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

std::string BanEventHub::Take(Cursor& cursor) const {
  std::string piece;
  for (const BanEvent& e : keeper_.EventsAfter(cursor.after, kMaxEventsPerPiece)) {
    piece += RenderSseEvent(e);
    cursor.after = e.id;
  }
  return piece;
}

void BanEventHub::NextLocked(const std::shared_ptr<Cursor>& cursor, EmitPiece emit) {
  if (stopped_) {
    return emit(std::string());
  }
  std::string piece = cursor->started ? std::string() : std::string("retry: 1000\n\n");
  cursor->started = true;
  piece += Take(*cursor);
  if (!piece.empty()) {
    return emit(std::move(piece));
  }
  waiters_.push_back({cursor, std::move(emit)});
}

BodySource BanEventHub::Stream(std::optional<uint64_t> last_event_id) {
  auto cursor = std::make_shared<Cursor>();
  cursor->after = last_event_id ? *last_event_id : keeper_.last_event_id();
  return [self = shared_from_this(), cursor](EmitPiece emit) {
    std::lock_guard lock(self->mu_);
    self->NextLocked(cursor, std::move(emit));
  };
}

void BanEventHub::Run() {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    const bool woken = cv_.wait_for(lock, heartbeat_, [this] { return notified_ || stopped_; });
    if (stopped_) {
      break;
    }
    notified_ = false;
    std::vector<Waiter> waiting;
    waiting.swap(waiters_);
    for (Waiter& w : waiting) {
      std::string piece = Take(*w.cursor);
      if (!piece.empty()) {
        w.emit(std::move(piece));
      } else if (!woken) {
        w.emit(": keep-alive\n\n");  // a comment line: the peer must still take it
      } else {
        waiters_.push_back(std::move(w));
      }
    }
  }
}

}  // namespace tally::daemon
