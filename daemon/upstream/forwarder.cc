#include "daemon/upstream/forwarder.h"

#include <boost/json.hpp>
#include <random>

#include "daemon/log.h"
#include "daemon/threads.h"

namespace tally::daemon {
namespace json = boost::json;

namespace {

constexpr uint64_t kMaxEntryRequests = uint64_t{1} << 40;  // ez-api's bound per entry

}  // namespace

std::string SequenceText(const core::DeltaBatch& batch) {
  std::string out = std::to_string(batch.first_sequence);
  if (batch.last_sequence != batch.first_sequence) {
    out += '-';
    out += std::to_string(batch.last_sequence);
  }
  return out;
}

std::string RenderBatchBody(const core::DeltaBatch& batch) {
  std::string out;
  out.reserve(16 + batch.deltas.size() * 64);
  out += "{\"keys\":[";
  bool first = true;
  auto entry = [&](uint64_t key, uint64_t successes, uint64_t failures) {
    out += first ? "{\"api_key_id\":" : ",{\"api_key_id\":";
    first = false;
    out += std::to_string(key);
    out += ",\"requests\":";
    out += std::to_string(successes + failures);
    out += ",\"success_requests\":";
    out += std::to_string(successes);
    out += "}";
  };
  for (const core::KeyDelta& d : batch.deltas) {
    uint64_t s = d.successes;
    uint64_t f = d.failures;
    do {
      const uint64_t take_s = std::min(s, kMaxEntryRequests);
      const uint64_t take_f = std::min(f, kMaxEntryRequests - take_s);
      entry(d.key, take_s, take_f);
      s -= take_s;
      f -= take_f;
    } while (s > 0 || f > 0);
  }
  out += "]}";
  return out;
}

AnswerClass ClassifyAnswer(unsigned status, const std::string& body, std::string* reason) {
  json::error_code ec;
  json::value doc = json::parse(body, ec);
  const json::object* obj = !ec && doc.is_object() ? &doc.get_object() : nullptr;
  std::string message;
  bool envelope_failed = false;
  if (obj != nullptr) {
    if (const json::value* e = obj->if_contains("error"); e != nullptr && e->is_string()) {
      message = std::string(e->get_string());
    }
    const json::value* code = obj->if_contains("code");
    const json::value* msg = obj->if_contains("message");
    if (code != nullptr && code->is_number() && msg != nullptr && msg->is_string()) {
      // ez-api's envelope: {"code":0,"message":"success","data":{...}}.
      envelope_failed = code->to_number<double>() != 0;
      if (message.empty()) {
        message = std::string(msg->get_string());
      }
    }
  }
  *reason = "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
  if (status >= 200 && status < 300) {
    return envelope_failed ? AnswerClass::kDead : AnswerClass::kAcked;
  }
  if (status == 408 || status == 429 || status >= 500) {
    return AnswerClass::kRetry;
  }
  return AnswerClass::kDead;
}

core::StatusOr<std::unique_ptr<Forwarder>> Forwarder::Create(ForwardTarget target,
                                                             persistence::OutboxStore& outbox,
                                                             ForwardMetrics& metrics) {
  core::StatusOr<std::unique_ptr<HttpPost>> post = HttpPost::Create(target.upstream);
  if (!post.ok()) {
    return post.status();
  }
  return std::unique_ptr<Forwarder>(
      new Forwarder(std::move(target), outbox, metrics, std::move(post).value()));
}

Forwarder::Forwarder(ForwardTarget target, persistence::OutboxStore& outbox,
                     ForwardMetrics& metrics, std::unique_ptr<HttpPost> post)
    : target_(std::move(target)), outbox_(outbox), metrics_(metrics), post_(std::move(post)) {}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Start() {
  thread_ = std::thread([this] {
    BecomeBackgroundThread("tally-forward");
    Run();
  });
}

void Forwarder::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  post_->Cancel();
  outbox_.Wake();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Forwarder::Pause(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop_.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(50), std::chrono::duration_cast<std::chrono::milliseconds>(
                                           until - std::chrono::steady_clock::now()) +
                                           std::chrono::milliseconds(1)));
  }
}

std::chrono::milliseconds Forwarder::Backoff(unsigned attempt, const PostResult& r) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const int64_t max = target_.retry_max.count();
  const int64_t min = std::min(target_.retry_min.count(), max);
  int64_t d = min;
  for (unsigned i = 0; i < attempt && d < max; ++i) {
    d *= 2;
  }
  d = std::min(d, max);
  d = std::uniform_int_distribution<int64_t>(d / 2, d)(rng);  // jitter
  if (r.retry_after) {
    d = std::max<int64_t>(
        d, std::chrono::duration_cast<std::chrono::milliseconds>(*r.retry_after).count());
  }
  return std::chrono::milliseconds(std::max<int64_t>(d, 1));
}

void Forwarder::Run() {
  RateLimiter retry_log(std::chrono::seconds(10));
  RateLimiter error_log(std::chrono::seconds(10));
  const std::string path = target_.base_path + "/internal/apikey-stats/flush";
  unsigned attempt = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    core::StatusOr<std::optional<core::DeltaBatch>> next = outbox_.Peek(kForwardConsumer);
    if (!next.ok()) {
      uint64_t suppressed = 0;
      if (error_log.Allow(&suppressed)) {
        LogUpstream()->error("cannot read the outbox: {} ({} more suppressed)",
                             next.status().ToString(), suppressed);
      }
      Pause(std::chrono::seconds(1));
      continue;
    }
    if (!*next) {
      outbox_.WaitForBatch(kForwardConsumer, std::chrono::seconds(1));
      continue;
    }
    const core::DeltaBatch& batch = **next;
    const std::string sequence = SequenceText(batch);
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Idempotency-Key", batch.source + ":" + sequence},
        {"Tally-Source", batch.source},
        {"Tally-Sequence", sequence},
    };
    if (!target_.token.empty()) {
      headers.emplace_back("X-Internal-Token", target_.token);
    }
    PostResult r = post_->Post(path, headers, RenderBatchBody(batch));
    if (stop_.load(std::memory_order_relaxed)) {
      break;  // the batch stays; the next start sends it again
    }
    std::string reason;
    AnswerClass cls = AnswerClass::kRetry;
    size_t retry_reason = 0;
    if (r.kind == PostResult::Kind::kAnswered) {
      cls = ClassifyAnswer(r.status, r.body, &reason);
      retry_reason = r.status == 408 ? 3 : r.status == 429 ? 4 : 2;
    } else {
      reason = r.error;
      retry_reason = r.kind == PostResult::Kind::kTimeout ? 0 : 1;
    }
    if (cls == AnswerClass::kRetry) {
      // Relaxed: statistics (ForwardMetrics).
      metrics_.retries[retry_reason].fetch_add(1, std::memory_order_relaxed);
      std::chrono::milliseconds delay = Backoff(attempt++, r);
      uint64_t suppressed = 0;
      if (retry_log.Allow(&suppressed)) {
        LogUpstream()->warn(
            "batch {}:{} not delivered ({}); retrying in {} ms ({} more suppressed)", batch.source,
            sequence, reason, delay.count(), suppressed);
      }
      Pause(delay);
      continue;
    }
    core::Status s = cls == AnswerClass::kAcked
                         ? outbox_.Ack(kForwardConsumer, batch.last_sequence)
                         : outbox_.DeadLetter(kForwardConsumer, batch, r.status, reason);
    if (!s.ok()) {
      // The batch stays the head: it is sent again (a tallyd upstream answers it as a replay).
      uint64_t suppressed = 0;
      if (error_log.Allow(&suppressed)) {
        LogUpstream()->error("cannot record the answer to batch {}:{}: {} ({} more suppressed)",
                             batch.source, sequence, s.ToString(), suppressed);
      }
      Pause(std::chrono::seconds(1));
      continue;
    }
    attempt = 0;
    if (cls == AnswerClass::kAcked) {
      metrics_.batches.fetch_add(1, std::memory_order_relaxed);
      metrics_.deltas.fetch_add(batch.deltas.size(), std::memory_order_relaxed);
    } else {
      metrics_.dead_letters.fetch_add(1, std::memory_order_relaxed);
      // Not rate limited: a dead letter is rare and each needs an operator's look.
      LogUpstream()->error(
          "batch {}:{} ({} keys) refused by the upstream ({}): moved to the dead letters "
          "(GET /admin/outbox)",
          batch.source, sequence, batch.deltas.size(), reason);
    }
  }
}

}  // namespace tally::daemon
