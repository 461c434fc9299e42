// Daemon::OpenUpstream: the receiver's per-source marks, and with --forward-url or
// --postgres-url the outbox with a consumer for each: the forwarder (issue 17;
// daemon/upstream/forwarder.h) and the PostgreSQL sink (issue 18; daemon/upstream/pg_consumer.h).
#include <boost/asio/ssl/context.hpp>

#include "daemon/app/daemon.h"
#include "daemon/log.h"

namespace tally::daemon {

core::Status Daemon::SetUpHttpTls() {
  if (!config_.http_tls.enabled()) {
    return core::Status::Ok();
  }
  auto tls = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  boost::system::error_code ec;
  tls->set_options(boost::asio::ssl::context::default_workarounds |
                       boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                       boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1,
                   ec);
  tls->use_certificate_chain_file(config_.http_tls.cert, ec);
  if (ec) {
    return core::Status::InvalidArgument("--http-tls-cert: cannot load: " + ec.message());
  }
  tls->use_private_key_file(config_.http_tls.key, boost::asio::ssl::context::pem, ec);
  if (ec) {
    return core::Status::InvalidArgument("--http-tls-key: cannot load: " + ec.message());
  }
  for (auto& t : threads_) {
    for (auto& h : t->http) {
      h->SetTls(tls);
    }
  }
  LogHttp()->info("the HTTP API serves TLS ({})", config_.http_tls.cert);
  return core::Status::Ok();
}

core::Status Daemon::OpenUpstream() {
  core::StatusOr<std::unique_ptr<persistence::SourcesStore>> sources =
      persistence::SourcesStore::Open(*store_);
  if (!sources.ok()) {
    return sources.status();
  }
  sources_ = std::move(sources).value();
  const ForwardConfig& f = config_.forward;
  if (f.url.empty() && pg_sink_ == nullptr) {
    return core::Status::Ok();
  }
  ForwardMetrics& metrics = counters_.process.forward;
  persistence::OutboxOptions options;
  options.source = f.source_id;
  // Each consumer keeps its own cursor; a batch goes once every one has it.
  if (!f.url.empty()) {
    options.consumers.push_back(kForwardConsumer);
  }
  if (pg_sink_ != nullptr) {
    options.consumers.push_back(kPostgresConsumer);
  }
  options.max_bytes = f.outbox_max_bytes;
  options.max_batch_keys = f.outbox_batch_keys;
  options.full = &metrics.outbox_full;
  core::StatusOr<std::unique_ptr<persistence::OutboxStore>> outbox =
      persistence::OutboxStore::Open(*store_, options);
  if (!outbox.ok()) {
    return outbox.status();
  }
  outbox_ = std::move(outbox).value();
  SetProcessForwardMetrics(&metrics);  // before the receivers start
  if (pg_sink_ != nullptr) {
    pg_source_ = std::make_unique<OutboxBatchSource>(*outbox_);
    pg_consumer_ =
        std::make_unique<PgConsumer>(pg_sink_.get(), pg_source_.get(), &counters_.process.postgres);
    LogPostgres()->info("applying the outbox of source {} to PostgreSQL", outbox_->source());
  }
  if (f.url.empty()) {
    return core::Status::Ok();
  }
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
