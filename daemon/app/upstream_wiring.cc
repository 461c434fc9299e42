// Daemon::OpenUpstream: the receiver's per-source marks, and with --forward-url the outbox
// and its forwarder (issue 17; daemon/upstream/forwarder.h).
#include "daemon/app/daemon.h"
#include "daemon/log.h"

namespace tally::daemon {

core::Status Daemon::OpenUpstream() {
  core::StatusOr<std::unique_ptr<persistence::SourcesStore>> sources =
      persistence::SourcesStore::Open(*store_);
  if (!sources.ok()) {
    return sources.status();
  }
  sources_ = std::move(sources).value();
  const ForwardConfig& f = config_.forward;
  if (f.url.empty()) {
    return core::Status::Ok();
  }
  ForwardMetrics& metrics = counters_.process.forward;
  persistence::OutboxOptions options;
  options.source = f.source_id;
  options.consumers = {kForwardConsumer};
  options.max_bytes = f.outbox_max_bytes;
  options.full = &metrics.outbox_full;
  core::StatusOr<std::unique_ptr<persistence::OutboxStore>> outbox =
      persistence::OutboxStore::Open(*store_, options);
  if (!outbox.ok()) {
    return outbox.status();
  }
  outbox_ = std::move(outbox).value();
  SetProcessForwardMetrics(&metrics);  // before the receivers start
  ForwardTarget target;
  target.upstream = {f.tls, f.host, f.port, f.ca_file, std::chrono::milliseconds(f.timeout_ms)};
  target.base_path = f.base_path;
  target.token = f.token;
  target.retry_min = std::chrono::milliseconds(f.retry_min_ms);
  target.retry_max = std::chrono::milliseconds(f.retry_max_ms);
  core::StatusOr<std::unique_ptr<Forwarder>> forwarder =
      Forwarder::Create(std::move(target), *outbox_, metrics);
  if (!forwarder.ok()) {
    return forwarder.status();
  }
  forwarder_ = std::move(forwarder).value();
  const persistence::OutboxStats s = outbox_->stats();
  LogUpstream()->info(
      "forwarding to {} as source {}: the outbox holds {} batches ({} bytes), {} dead letters, "
      "last sequence {}",
      f.url, outbox_->source(), s.batches, s.bytes(), s.dead_letters, s.last_sequence);
  return core::Status::Ok();
}

}  // namespace tally::daemon
