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
#include "core/status.h"
#include "daemon/api/router.h"
#include "daemon/app/config.h"
#include "daemon/http/server.h"
#include "daemon/ingest/datagram_receiver.h"
#include "daemon/ingest/flusher.h"
#include "daemon/metrics.h"
#include "daemon/ops/service_monitor.h"
#include "daemon/ops/socket_activation.h"
#include "daemon/upstream/pg_sink.h"
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
  // Each I/O thread stamps ThreadCounters::loop_heartbeat_ns once a second (/healthz).
  static void Heartbeat(IoThread* t);
  uint64_t KernelDrops() const;

  Config config_;
  uint64_t open_files_ = 0;  // the soft RLIMIT_NOFILE after RaiseOpenFilesLimit
  std::unique_ptr<persistence::Store> store_;
  std::unique_ptr<core::CounterTable> table_;
  std::unique_ptr<Flusher> flusher_;
  CounterRegistry counters_;
  // --postgres-url; null without it. After counters_, whose metrics it writes: destroyed
  // before them.
  std::unique_ptr<PgSink> pg_sink_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<ServiceMonitor> monitor_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  // Relaxed: flags read by /readyz; no data is published through them.
  std::atomic<bool> listening_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace tally::daemon
