// Daemon: owns every part of a running tallyd and starts and stops them in order.
//
//   Start: open the store, bind every listener, start the I/O threads and the flusher.
//   Stop:  stop accepting; drain the socket buffers; let in-flight HTTP requests finish
//          (the flusher still runs, so wait=flush requests complete); final flush.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "core/counter_table.h"
#include "core/status.h"
#include "daemon/api.h"
#include "daemon/config.h"
#include "daemon/datagram_receiver.h"
#include "daemon/flusher.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "persistence/store.h"

namespace tally::daemon {

class Daemon {
 public:
  explicit Daemon(Config config);
  ~Daemon();

  // Opens the store and binds every listener, then starts the threads.
  core::Status Start();
  // Blocks the calling thread until SIGINT or SIGTERM. Call BlockSignals() first, before
  // any thread starts, so the signals reach only this wait.
  static void BlockSignals();
  static int WaitForSignal();
  // The orderly stop; returns the process exit code (0 when everything was flushed).
  int Stop();

 private:
  struct IoThread {
    boost::asio::io_context io{1};
    ThreadCounters* counters = nullptr;
    std::vector<std::unique_ptr<DatagramReceiver>> receivers;
    std::unique_ptr<HttpListener> http;
    std::thread thread;
  };

  uint64_t KernelDrops() const;

  Config config_;
  std::unique_ptr<persistence::Store> store_;
  std::unique_ptr<core::CounterTable> table_;
  std::unique_ptr<Flusher> flusher_;
  CounterRegistry counters_;
  std::unique_ptr<Api> api_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::atomic<uint32_t> connections_{0};
  // Relaxed: flags read by /readyz; no data is published through them.
  std::atomic<bool> listening_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace tally::daemon
