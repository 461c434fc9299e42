// Forwarder: sends the outbox's batches upstream (issue 17), as the outbox consumer
// "forward" (persistence/outbox_store.h), on a thread of its own.
//
// One batch at a time, in order: the next leaves only after the previous one was answered,
// so a receiver's high-water mark never passes an unsent batch. Each batch is
//   POST <forward-url>/internal/apikey-stats/flush
//   X-Internal-Token: <--forward-token-file>   Idempotency-Key: <source>:<sequence>
//   Tally-Source: <source>   Tally-Sequence: <first>[-<last>]
//   {"keys":[{"api_key_id":K,"requests":S+F,"success_requests":S},...]}   (ez-api's body)
// where <sequence> is the batch's sequence, or "<first>-<last>" for a coalesced batch.
// Answers:
//   2xx (a plain JSON answer, or ez-api's envelope {"code":0,...})  acknowledged: Ack.
//   a timeout, a connection error, 5xx, 408, 429                     retried, with exponential
//       backoff from --forward-retry-min-ms to --forward-retry-max-ms (each delay drawn
//       between half and all of it), or after Retry-After's seconds when longer.
//   any other status, or a 2xx envelope with a non-zero code         a dead letter: logged,
//       counted, and the forwarder goes on with the next batch.
// Every outcome is counted in ForwardMetrics (daemon/metrics.h).
//
// Thread safety: Start and Stop from one thread (the Daemon's); the rest runs on the
// forwarder's thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/delta_batch.h"
#include "daemon/metrics.h"
#include "daemon/upstream/http_post.h"
#include "persistence/outbox_store.h"

namespace tally::daemon {

inline constexpr char kForwardConsumer[] = "forward";

struct ForwardTarget {
  UpstreamTarget upstream;
  std::string base_path;  // prefix of /internal/apikey-stats/flush, no trailing '/'
  std::string token;      // X-Internal-Token; empty: not sent
  std::chrono::milliseconds retry_min{1000};
  std::chrono::milliseconds retry_max{60'000};
};

// ez-api's flush body for `batch`; an entry above ez-api's 2^40 requests is split into
// several entries for the same key (receivers add them up).
std::string RenderBatchBody(const core::DeltaBatch& batch);
// "<first>" or "<first>-<last>".
std::string SequenceText(const core::DeltaBatch& batch);

// How an answer is taken.
enum class AnswerClass { kAcked, kRetry, kDead };
// 2xx with a plain body or an envelope of code 0: kAcked; 408, 429, 5xx: kRetry; the rest
// kDead. *reason gets the upstream's error message ({"error":...} or the envelope's message).
AnswerClass ClassifyAnswer(unsigned status, const std::string& body, std::string* reason);

class Forwarder {
 public:
  // InvalidArgument for a TLS set-up that fails.
  static core::StatusOr<std::unique_ptr<Forwarder>> Create(ForwardTarget target,
                                                           persistence::OutboxStore& outbox,
                                                           ForwardMetrics& metrics);
  ~Forwarder();  // Stop()s

  void Start();
  // Ends a request in flight (the batch stays in the outbox) and joins the thread.
  void Stop();

 private:
  Forwarder(ForwardTarget target, persistence::OutboxStore& outbox, ForwardMetrics& metrics,
            std::unique_ptr<HttpPost> post);
  void Run();
  // Sleeps `d` or until Stop.
  void Pause(std::chrono::milliseconds d);
  std::chrono::milliseconds Backoff(unsigned attempt, const PostResult& r);

  ForwardTarget target_;
  persistence::OutboxStore& outbox_;
  ForwardMetrics& metrics_;
  std::unique_ptr<HttpPost> post_;
  // Relaxed: a flag; Stop also wakes the outbox's wait and cancels the request in flight.
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tally::daemon
