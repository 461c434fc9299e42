#include "daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include "daemon/log.h"

namespace tally::daemon {
namespace asio = boost::asio;
using core::Status;

Daemon::Daemon(Config config) : config_(std::move(config)) {}

Daemon::~Daemon() {
  for (auto& t : threads_) {
    t->io.stop();
    if (t->thread.joinable()) {
      t->thread.join();
    }
  }
}

void Daemon::BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int Daemon::WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

Status Daemon::Start() {
  LogMain()->info("starting: {}", config_.Redacted());
  core::StatusOr<std::unique_ptr<persistence::Store>> store =
      persistence::Store::Open(config_.data_dir);
  if (!store.ok()) {
    return store.status();
  }
  store_ = std::move(store).value();
  LogStore()->info("opened {}: epoch {}, {} groups, {} keys", config_.data_dir, store_->epoch(),
                   store_->live_groups(), store_->live_keys());
  table_ = std::make_unique<core::CounterTable>(config_.max_keys);
  flusher_ = std::make_unique<Flusher>(*table_, *store_,
                                       std::chrono::milliseconds(config_.flush_interval_ms));
  api_ = std::make_unique<Api>(ApiContext{config_, *table_, *store_, *flusher_, counters_,
                                          [this] { return KernelDrops(); }, listening_, stopping_});

  HttpLimits limits;
  limits.max_body_bytes = config_.max_body_bytes;
  limits.max_connections = config_.max_connections;
  for (uint32_t i = 0; i < config_.io_threads; ++i) {
    auto t = std::make_unique<IoThread>();
    t->counters = counters_.NewBlock();
    if (config_.udp_listen.enabled()) {
      uint64_t granted = 0;
      core::StatusOr<int> fd = OpenUdpSocket(config_.udp_listen, config_.udp_rcvbuf, &granted);
      if (!fd.ok()) {
        return fd.status();
      }
      if (i == 0) {
        LogUdp()->info("listening on {} with {} sockets, SO_RCVBUF {} bytes (asked {})",
                       config_.udp_listen.ToString(), config_.io_threads, granted,
                       config_.udp_rcvbuf);
      }
      t->receivers.push_back(std::make_unique<DatagramReceiver>(
          t->io, *fd, Transport::kUdp, *table_, config_.metric_prefix, *t->counters));
    }
    if (i == 0 && !config_.unix_socket.empty()) {
      core::StatusOr<int> fd = OpenUnixSocket(config_.unix_socket, config_.udp_rcvbuf);
      if (!fd.ok()) {
        return fd.status();
      }
      LogUdp()->info("listening on unix socket {}", config_.unix_socket);
      t->receivers.push_back(std::make_unique<DatagramReceiver>(
          t->io, *fd, Transport::kUnix, *table_, config_.metric_prefix, *t->counters));
    }
    if (config_.http_listen.enabled()) {
      core::StatusOr<int> fd = OpenTcpListener(config_.http_listen);
      if (!fd.ok()) {
        return fd.status();
      }
      t->http =
          std::make_unique<HttpListener>(t->io, *fd, *api_, limits, connections_, *t->counters);
    }
    threads_.push_back(std::move(t));
  }
  if (config_.http_listen.enabled()) {
    LogHttp()->info("listening on {}", config_.http_listen.ToString());
  }

  flusher_->Start();
  for (auto& t : threads_) {
    IoThread* raw = t.get();
    for (auto& r : raw->receivers) {
      r->Start();
    }
    if (raw->http) {
      raw->http->Start();
    }
    raw->thread = std::thread([raw] {
      SetThisThreadCounters(raw->counters);
      raw->io.run();
    });
  }
  listening_.store(true, std::memory_order_relaxed);
  LogMain()->info("ready");
  return Status::Ok();
}

uint64_t Daemon::KernelDrops() const {
  uint64_t total = 0;
  for (const auto& t : threads_) {
    for (const auto& r : t->receivers) {
      total += r->kernel_drops();
    }
  }
  return total;
}

int Daemon::Stop() {
  LogMain()->info("stopping");
  stopping_.store(true, std::memory_order_relaxed);
  // 1-3: on each I/O thread, close the acceptor and idle connections and drain the
  // datagram sockets; the thread ends when its last in-flight request is answered.
  for (auto& t : threads_) {
    IoThread* raw = t.get();
    asio::post(raw->io, [raw] {
      for (auto& r : raw->receivers) {
        r->DrainAndClose();
      }
      if (raw->http) {
        raw->http->Stop();
      }
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& t : threads_) {
    // io_context::run returns once no work is left; past the deadline, cut it short.
    while (!t->io.stopped() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!t->io.stopped()) {
      LogHttp()->warn("in-flight requests still open after 10 s; closing them");
      t->io.stop();
    }
    t->thread.join();
  }
  // 4: the final flush.
  bool flushed = flusher_ ? flusher_->Stop() : true;
  LogMain()->info("stopped{}", flushed ? "" : " with unflushed counts");
  return flushed ? 0 : 1;
}

}  // namespace tally::daemon
