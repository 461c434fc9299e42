// Daemon: owns every part of a running tallyd and starts and stops them in order.
//
//   Start: take the sockets systemd passed (socket activation), open the store, bind every
//          other listener, start the I/O threads and the flusher, then tell systemd READY=1.
//   Stop:  STOPPING=1; stop accepting; drain the socket buffers; let in-flight HTTP requests
//          finish (the flusher still runs, so wait=flush requests complete); final flush.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "core/counter_table.h"
#include "core/failure_codes.h"
#include "core/status.h"
#include "daemon/api/ban_events.h"
#include "daemon/api/router.h"
#include "daemon/app/config.h"
#include "daemon/http/server.h"
#include "daemon/ingest/datagram_receiver.h"
#include "daemon/ingest/flusher.h"
#include "daemon/metrics.h"
#include "daemon/ops/service_monitor.h"
#include "daemon/ops/socket_activation.h"
#include "daemon/upstream/forwarder.h"
#include "daemon/upstream/pg_consumer.h"
#include "daemon/upstream/pg_outbox_source.h"
#include "daemon/upstream/pg_sink.h"
#include "persistence/ban_keeper.h"
#include "persistence/outbox_store.h"
#include "persistence/sources_store.h"
#include "persistence/store.h"

namespace tally::daemon {

class Daemon {
 public:
  explicit Daemon(Config config);
  ~Daemon();

  // Opens the store and binds every listener, then starts the threads.
  core::Status Start();
  // Asks the flusher for a flush now (SIGUSR1); a no-op before Start.
  void FlushNow();
  // The orderly stop; returns the process exit code (0 when everything was flushed).
  int Stop();

 private:
  struct IoThread {
    explicit IoThread(size_t index) : index(index) {}
    size_t index;
    boost::asio::io_context io{1};
    boost::asio::steady_timer heartbeat{io};
    ThreadCounters* counters = nullptr;
    std::vector<std::unique_ptr<DatagramReceiver>> receivers;
    // Per receiver: which inherited UDP socket it shares (its dup), or -1 for a socket of
    // its own. Receivers sharing a socket all see that socket's one drop counter.
    std::vector<int> shared_socket;
    std::vector<std::unique_ptr<HttpListener>> http;
    std::thread thread;
  };

  // Opens the store (--wal-recovery's policy) and logs what it holds.
  core::Status OpenStore();
  // Registers the ban rule with the store and starts its event hub (app/daemon.cc).
  core::Status StartBans();
  // The receiver's sources and, with --forward-url, the outbox and the forwarder
  // (upstream_wiring.cc). After OpenStore, before the flusher starts.
  core::Status OpenUpstream();
  // With --http-tls-cert: every HTTP listener serves TLS (upstream_wiring.cc).
  core::Status SetUpHttpTls();
  // Binds (or adopts) every listener onto the I/O threads.
  core::Status OpenListeners(InheritedSockets& inherited);
  // The addresses tallyd binds itself: another process holding one is refused, and with port
  // 0 every thread shares the port the kernel picks (listen_guard.h).
  core::Status ClaimAddresses(const InheritedSockets& inherited, Endpoint* udp,
                              Endpoint* http) const;
  // I/O thread `i` with its receivers and HTTP listeners (not started).
  core::StatusOr<std::unique_ptr<IoThread>> NewIoThread(uint32_t i,
                                                        const InheritedSockets& inherited,
                                                        const Endpoint& udp_ep,
                                                        const Endpoint& http_ep,
                                                        const HttpLimits& limits);
  // What each endpoint group of the Api gets (daemon/api/router.h).
  ApiContext ApiContextFor();
  // The mapping rules' names by index, for /metrics (none without a mapping).
  std::vector<std::string> MappingRuleNames() const;
  // Each I/O thread stamps ThreadCounters::loop_heartbeat_ns once a second (/healthz).
  static void Heartbeat(IoThread* t);
  uint64_t KernelDrops() const;

  Config config_;
  uint64_t open_files_ = 0;     // the soft RLIMIT_NOFILE after RaiseOpenFilesLimit
  GroupMetrics group_metrics_;  // a participant of the store's flushes: declared before it
  std::unique_ptr<persistence::Store> store_;
  // The time windows, a participant of store_'s flushes (destroyed before it).
  std::unique_ptr<persistence::WindowStore> windows_;
  // The ban rule (issue 16): the codes ingest passes to it, the keeper that commits with each
  // flush (it outlives the flusher and the Api, declared after it), and the event streams.
  core::FailureCodes failure_codes_;
  std::unique_ptr<persistence::BanKeeper> bans_;
  std::shared_ptr<BanEventHub> ban_hub_;
  // Flush participants: they outlive every flush (the flusher's last one included).
  std::unique_ptr<persistence::SourcesStore> sources_;
  std::unique_ptr<persistence::OutboxStore>
      outbox_;  // null without --forward-url or --postgres-url
  std::unique_ptr<core::CounterTable> table_;
  std::unique_ptr<Flusher> flusher_;
  CounterRegistry counters_;
  // --postgres-url; null without it. After counters_, whose metrics it writes: destroyed
  // before them.
  std::unique_ptr<PgSink> pg_sink_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<ServiceMonitor> monitor_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::unique_ptr<Forwarder> forwarder_;  // null without --forward-url
  // The PostgreSQL sink's cursor in the outbox and its consumer thread; null without
  // --postgres-url. Declared after the outbox and the sink: destroyed before them.
  std::unique_ptr<OutboxBatchSource> pg_source_;
  std::unique_ptr<PgConsumer> pg_consumer_;
  // Relaxed: flags read by /readyz; no data is published through them.
  std::atomic<bool> listening_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace tally::daemon
