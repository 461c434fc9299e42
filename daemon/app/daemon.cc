#include "daemon/app/daemon.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>

#include "core/clock.h"
#include "daemon/app/descriptors.h"
#include "daemon/app/listen_guard.h"
#include "daemon/app/postgres_start.h"
#include "daemon/app/store_log.h"
#include "daemon/log.h"
#include "daemon/threads.h"

namespace tally::daemon {
namespace asio = boost::asio;
using core::Status;

namespace {

// A waiting event stream gets a comment line this often (api/ban_events.h).
constexpr std::chrono::milliseconds kEventHeartbeat{15'000};

// The descriptor thread `thread` uses for an inherited socket: thread 0 takes it itself,
// the others a dup.
core::StatusOr<int> DupFor(int fd, uint32_t thread) {
  if (thread == 0) {
    return fd;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    return Status::IoError(std::string("dup of an inherited socket: ") + std::strerror(errno));
  }
  return copy;
}

}  // namespace

Daemon::Daemon(Config config) : config_(std::move(config)) {}

Daemon::~Daemon() {
  forwarder_.reset();
  pg_consumer_.reset();
  for (auto& t : threads_) {
    t->io.stop();
    if (t->thread.joinable()) {
      t->thread.join();
    }
  }
  // The API pool's tasks use the store, the flusher and the I/O threads' io_contexts (their
  // answers are posted there): they finish before any of those goes.
  api_.reset();
  // The flusher's last flush (if Stop was never called) still reports to the monitor.
  if (monitor_) {
    monitor_->StopSupervisor();
  }
  flusher_.reset();
  if (outbox_) {
    SetProcessForwardMetrics(nullptr);  // the receivers are gone; counters_ goes next
  }
}

void Daemon::FlushNow() {
  if (flusher_) {
    flusher_->Wake();
  }
}

Status Daemon::Start() {
  LogMain()->info("starting: {}", config_.Redacted());
  SetBackgroundNice(static_cast<int>(config_.background_nice));  // before any thread starts
  if (config_.mapping.mapping != nullptr) {
    LogMain()->info("mapping rules: {} ({}), tried on lines the own protocol ignores",
                    config_.mapping.mapping->size(), fmt::join(MappingRuleNames(), ", "));
  }
  core::StatusOr<InheritedSockets> inherited = TakeInheritedSockets();
  if (!inherited.ok()) {
    return inherited.status();
  }
  if (inherited->empty() && !config_.udp_listen.enabled() && !config_.http_listen.enabled() &&
      config_.unix_socket.empty()) {
    return Status::InvalidArgument(
        "every listener is off (--udp-listen, --http-listen, --unix-socket) and no socket was "
        "passed by the service manager");
  }
  for (int fd : inherited->http) {
    if (!BoundToLoopback(fd) && (config_.admin_token.empty() || config_.internal_token.empty())) {
      return Status::InvalidArgument(
          "the inherited HTTP socket is not on loopback: set both --admin-token and "
          "--internal-token");
    }
  }
  open_files_ = RaiseOpenFilesLimit();  // before RocksDB and the sockets take any
  if (Status s = OpenStore(); !s.ok()) {
    return s;
  }
  TALLY_RETURN_IF_ERROR(StartBans());
  // --postgres-url: the schema checked now (exit 1 naming a missing column); the sink reads
  // the outbox that OpenUpstream opens.
  core::StatusOr<std::unique_ptr<PgSink>> pg =
      StartPostgresSink(config_.postgres, &counters_.process.postgres);
  TALLY_RETURN_IF_ERROR(pg.status());
  pg_sink_ = std::move(pg).value();
  TALLY_RETURN_IF_ERROR(OpenUpstream());
  try {
    table_ = std::make_unique<core::CounterTable>(config_.max_keys);
  } catch (const std::exception& e) {
    return Status::IoError("cannot allocate the counter table for --max-keys " +
                           std::to_string(config_.max_keys) + ": " + e.what());
  }
  flusher_ = std::make_unique<Flusher>(*table_, *store_,
                                       std::chrono::milliseconds(config_.flush_interval_ms));
  monitor_ = std::make_unique<ServiceMonitor>(*table_, counters_, *flusher_,
                                              [this] { return KernelDrops(); });
  flusher_->SetOnDuration([m = monitor_.get()](double seconds) { m->OnFlushDuration(seconds); });
  flusher_->SetOnAttempt([m = monitor_.get()](const FlushStats& s) { m->OnFlushAttempt(s); });
  flusher_->SetFlushDue([b = bans_.get()] { return b->ReleaseDue(core::UnixNowNs()); });
  api_ = std::make_unique<Api>(ApiContextFor());

  TALLY_RETURN_IF_ERROR(OpenListeners(*inherited));

  // Relaxed: written before the I/O threads start (see ProcessMetrics).
  counters_.process.started_unix_ns.store(core::UnixNowNs(), std::memory_order_relaxed);
  flusher_->Start();
  if (forwarder_) {
    forwarder_->Start();
  }
  if (pg_consumer_) {
    pg_consumer_->Start();
  }
  for (size_t i = 0; i < threads_.size(); ++i) {
    IoThread* raw = threads_[i].get();
    for (auto& r : raw->receivers) {
      r->Start();
    }
    for (auto& h : raw->http) {
      h->Start();
    }
    raw->counters->loop_heartbeat_ns.Set(SteadyNowNs());
    Heartbeat(raw);
    raw->thread = std::thread([raw, i] {
      NameThisThread("tally-io-" + std::to_string(i));
      SetThisThreadCounters(raw->counters);
      raw->io.run();
    });
  }
  listening_.store(true, std::memory_order_relaxed);
  monitor_->Ready();
  LogMain()->info("ready{}", monitor_->notifier().enabled() ? " (READY=1 sent to systemd)" : "");
  return Status::Ok();
}

Status Daemon::OpenStore() {
  const uint64_t t0 = SteadyNowNs();
  core::StatusOr<std::unique_ptr<persistence::Store>> store =
      persistence::Store::Open(config_.data_dir, StoreOptionsFor(config_));
  if (!store.ok()) {
    if (store.status().message().starts_with("write-ahead log damaged")) {
      return core::Status::Corruption(
          store.status().message() +
          ". Refusing to start. Back up the data dir; --wal-recovery=point-in-time starts "
          "from the last good record (docs/operations.md, \"The write-ahead log\")");
    }
    return store.status();
  }
  store_ = std::move(store).value();
  store_->AddParticipant(&group_metrics_);
  // Then what the flushes' participants keep in memory: the window journal's open minutes
  // and the ban rule's keys. (Loaded side by side on two threads they took as long in all,
  // measured with 1M keys on 2 vCPUs: each read slowed beside the other and RocksDB's own
  // work after the open.)
  const uint64_t t1 = SteadyNowNs();
  windows_ = std::make_unique<persistence::WindowStore>(store_->db(), core::SystemClock::Get(),
                                                        config_.windows.retention);
  TALLY_RETURN_IF_ERROR(windows_->Load());
  const uint64_t t2 = SteadyNowNs();
  bans_ = std::make_unique<persistence::BanKeeper>(config_.bans.policy, &failure_codes_);
  TALLY_RETURN_IF_ERROR(store_->AddKeyObserver(bans_.get()));
  const uint64_t t3 = SteadyNowNs();
  store_->AddParticipant(windows_.get());
  store_->AddParticipant(bans_.get());
  if (store_->health().wal_damage_skipped) {
    LogStore()->error(
        "started past a damaged write-ahead log (--wal-recovery=point-in-time): flushes "
        "after the damage are lost; tallyd_store_wal_damage_recovered is 1");
  }
  const auto secs = [](uint64_t ns) { return static_cast<double>(ns) / 1e9; };
  LogStore()->info(
      "opened {}: epoch {}, {} groups, {} keys in {:.3f} s (records {:.3f} s, window journal "
      "{:.3f} s, ban rule {:.3f} s)",
      config_.data_dir, store_->epoch(), store_->live_groups(), store_->live_keys(), secs(t3 - t0),
      secs(t1 - t0), secs(t2 - t1), secs(t3 - t2));
  return Status::Ok();
}

Status Daemon::StartBans() {
  ban_hub_ = std::make_shared<BanEventHub>(*bans_, kEventHeartbeat);
  bans_->SetOnEvents([hub = ban_hub_.get()] { hub->Notify(); });
  bans_->SetOnWithheld([](uint64_t key, const std::string& reason) {
    // At most one line a minute; the count is tallyd_bans_withheld_total.
    static std::atomic<int64_t> next_log_ns{0};
    const auto now = static_cast<int64_t>(SteadyNowNs());
    // Relaxed: a rate limit; a race logs one line more or less.
    if (now >= next_log_ns.load(std::memory_order_relaxed)) {
      next_log_ns.store(now + int64_t{60'000'000'000}, std::memory_order_relaxed);
      LogStore()->warn(
          "ban of api key {} withheld ({}): it is its provider group's last active key "
          "(keep_one_active); further ones are counted in tallyd_bans_withheld_total",
          key, reason);
    }
  });
  ban_hub_->Start();
  const core::BanPolicy p = bans_->policy();
  LogStore()->info("ban rule: {} keys banned, policy {}", bans_->stats().banned_now,
                   p == config_.bans.policy ? "from the options" : "set by PUT /admin/ban-policy");
  return Status::Ok();
}

Status Daemon::ClaimAddresses(const InheritedSockets& inherited, Endpoint* udp,
                              Endpoint* http) const {
  *udp = config_.udp_listen;
  *http = config_.http_listen;
  // Our own sockets: refuse an address another process holds, and with port 0 let every
  // thread share the port the kernel picks (app/listen_guard.h).
  if (inherited.udp.empty() && udp->enabled()) {
    core::StatusOr<uint16_t> port = ClaimPort("--udp-listen", *udp, SOCK_DGRAM);
    if (!port.ok()) {
      return port.status();
    }
    udp->port = *port;
  }
  if (inherited.http.empty() && http->enabled()) {
    core::StatusOr<uint16_t> port = ClaimPort("--http-listen", *http, SOCK_STREAM);
    if (!port.ok()) {
      return port.status();
    }
    http->port = *port;
  }
  if (!config_.unix_socket.empty()) {
    TALLY_RETURN_IF_ERROR(CheckUnixSocketFree(config_.unix_socket));
  }
  return Status::Ok();
}

core::StatusOr<std::unique_ptr<Daemon::IoThread>> Daemon::NewIoThread(
    uint32_t i, const InheritedSockets& inherited, const Endpoint& udp_ep, const Endpoint& http_ep,
    const HttpLimits& limits) {
  auto t = std::make_unique<IoThread>(i);
  t->counters = counters_.NewBlock();
  auto add_udp = [&](int fd, Transport transport, int shared) {
    t->receivers.push_back(std::make_unique<DatagramReceiver>(t->io, fd, transport, *table_,
                                                              config_.metric_prefix, *t->counters));
    t->receivers.back()->SetMapping(config_.mapping.mapping);
    t->receivers.back()->SetFailureCodes(&failure_codes_);
    t->shared_socket.push_back(shared);
  };
  // UDP: the inherited sockets, shared by every thread through dup(); else one socket per
  // thread with SO_REUSEPORT.
  for (size_t k = 0; k < inherited.udp.size(); ++k) {
    core::StatusOr<int> fd = DupFor(inherited.udp[k], i);
    if (!fd.ok()) {
      return fd.status();
    }
    add_udp(*fd, Transport::kUdp, static_cast<int>(k));
    t->receivers.back()->SetInherited();
  }
  if (inherited.udp.empty() && config_.udp_listen.enabled()) {
    uint64_t granted = 0;
    core::StatusOr<int> fd = OpenUdpSocket(udp_ep, config_.udp_rcvbuf, &granted);
    if (!fd.ok()) {
      return fd.status();
    }
    if (i == 0) {
      LogUdp()->info("listening on {} with {} sockets, SO_RCVBUF {} bytes (asked {})",
                     udp_ep.ToString(), config_.io_threads, granted, config_.udp_rcvbuf);
    }
    add_udp(*fd, Transport::kUdp, -1);
  }
  // Unix datagrams: thread 0 only.
  if (i == 0 && !config_.unix_socket.empty()) {
    core::StatusOr<int> fd = OpenUnixSocket(config_.unix_socket, config_.udp_rcvbuf);
    if (!fd.ok()) {
      return fd.status();
    }
    LogUdp()->info("listening on unix socket {}", config_.unix_socket);
    add_udp(*fd, Transport::kUnix, -1);
  }
  // HTTP: as UDP.
  for (int inherited_fd : inherited.http) {
    core::StatusOr<int> fd = DupFor(inherited_fd, i);
    if (!fd.ok()) {
      return fd.status();
    }
    t->http.push_back(std::make_unique<HttpListener>(
        t->io, *fd, *api_, limits, counters_.process.http_connections, *t->counters));
  }
  if (inherited.http.empty() && config_.http_listen.enabled()) {
    core::StatusOr<int> fd = OpenTcpListener(http_ep);
    if (!fd.ok()) {
      return fd.status();
    }
    t->http.push_back(std::make_unique<HttpListener>(
        t->io, *fd, *api_, limits, counters_.process.http_connections, *t->counters));
  }
  return t;
}

Status Daemon::OpenListeners(InheritedSockets& inherited) {
  HttpLimits limits;
  limits.max_body_bytes = config_.max_body_bytes;
  limits.max_connections = config_.max_connections;
  if (!inherited.http.empty() || config_.http_listen.enabled()) {
    core::StatusOr<uint32_t> cap =
        EffectiveMaxConnections(config_.max_connections, open_files_, config_.io_threads);
    if (!cap.ok()) {
      return cap.status();
    }
    limits.max_connections = *cap;
  }
  Endpoint udp_ep;
  Endpoint http_ep;
  if (Status s = ClaimAddresses(inherited, &udp_ep, &http_ep); !s.ok()) {
    return s;
  }
  for (uint32_t i = 0; i < config_.io_threads; ++i) {
    core::StatusOr<std::unique_ptr<IoThread>> t =
        NewIoThread(i, inherited, udp_ep, http_ep, limits);
    if (!t.ok()) {
      return t.status();
    }
    threads_.push_back(std::move(t).value());
  }
  TALLY_RETURN_IF_ERROR(SetUpHttpTls());
  for (int fd : inherited.udp) {
    uint64_t granted = 0;
    TALLY_RETURN_IF_ERROR(PrepareInheritedUdp(fd, config_.udp_rcvbuf, &granted));
    LogUdp()->info(
        "listening on inherited UDP socket {} (port {}), shared by {} threads, "
        "SO_RCVBUF {} bytes",
        fd, BoundPort(fd), config_.io_threads, granted);
  }
  for (int fd : inherited.http) {
    LogHttp()->info("listening on inherited TCP socket {} (port {}), shared by {} threads", fd,
                    BoundPort(fd), config_.io_threads);
  }
  if (inherited.http.empty() && config_.http_listen.enabled()) {
    LogHttp()->info("listening on {} with {} sockets", http_ep.ToString(), config_.io_threads);
  }
  return Status::Ok();
}

std::vector<std::string> Daemon::MappingRuleNames() const {
  std::vector<std::string> names;
  const core::Mapping* m = config_.mapping.mapping.get();
  for (size_t i = 0; m != nullptr && i < m->size(); ++i) {
    names.push_back(m->rule_name(i));
  }
  return names;
}

ApiContext Daemon::ApiContextFor() {
  auto kernel_drops = [this] { return KernelDrops(); };
  return ApiContext{
      .tokens = {config_.admin_token, config_.internal_token},
      .stopping = stopping_,
      .counting = {config_.metric_prefix, config_.max_keys, *table_, *flusher_, *store_,
                   counters_.process, config_.mapping.mapping, &failure_codes_, sources_.get()},
      .records = {*store_, *table_},
      .ops = {config_.flush_interval_ms, config_.data_dir, config_.checkpoint_root, *table_,
              *store_, *flusher_, counters_, kernel_drops, listening_, stopping_, &group_metrics_,
              MappingRuleNames(), windows_.get(), bans_.get(),
              [hub = ban_hub_] { return hub->waiting_streams(); }, outbox_.get(), sources_.get(),
              config_.forward.outbox_max_bytes},
      .windows = {*store_, *windows_},
      .bans = {store_.get(), bans_.get(), ban_hub_},
      .upstream = {outbox_.get(), sources_.get(), config_.forward.outbox_max_bytes},
  };
}

void Daemon::Heartbeat(IoThread* t) {
  t->heartbeat.expires_after(std::chrono::seconds(1));
  t->heartbeat.async_wait([t](const boost::system::error_code& ec) {
    if (ec) {
      return;  // cancelled by Stop
    }
    t->counters->loop_heartbeat_ns.Set(SteadyNowNs());
    Heartbeat(t);
  });
}

uint64_t Daemon::KernelDrops() const {
  // A socket's own drop counter; receivers sharing an inherited socket all report it, so
  // take the largest report per shared socket and sum the rest.
  uint64_t total = 0;
  std::vector<uint64_t> shared;
  for (const auto& t : threads_) {
    for (size_t i = 0; i < t->receivers.size(); ++i) {
      uint64_t drops = t->receivers[i]->kernel_drops();
      int k = t->shared_socket[i];
      if (k < 0) {
        total += drops;
        continue;
      }
      if (shared.size() <= static_cast<size_t>(k)) {
        shared.resize(k + 1, 0);
      }
      shared[k] = std::max(shared[k], drops);
    }
  }
  for (uint64_t d : shared) {
    total += d;
  }
  return total;
}

int Daemon::Stop() {
  LogMain()->info("stopping");
  if (monitor_) {
    monitor_->Stopping();
  }
  stopping_.store(true, std::memory_order_relaxed);
  // The event streams end first: each holds its connection open until told.
  if (ban_hub_) {
    ban_hub_->Stop();
  }
  // 0: a flush now, so requests waiting for one (?wait=flush) are answered before step 3
  // waits for them: 200 when it commits, 503 at once when flushes fail (a full disk).
  if (flusher_) {
    flusher_->BeginStop();
  }
  // The forwarder and the PostgreSQL sink: a batch in flight stays in the outbox (sent or
  // applied again at the next start; the receiver's mark makes that a replay).
  if (forwarder_) {
    forwarder_->Stop();
  }
  if (pg_consumer_) {
    pg_consumer_->Stop();
  }
  // 1-3: on each I/O thread, close the acceptor and idle connections and drain the
  // datagram sockets; the thread ends when its last in-flight request is answered.
  for (auto& t : threads_) {
    IoThread* raw = t.get();
    asio::post(raw->io, [raw] {
      raw->heartbeat.cancel();
      for (size_t i = 0; i < raw->receivers.size(); ++i) {
        raw->receivers[i]->DrainAndClose();
      }
      for (auto& h : raw->http) {
        h->Stop();
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
  // 4: the API pool's queued store work finishes (its answers go to stopped io_contexts,
  // which stay alive until ~Daemon) before the flusher and the store it uses stop.
  api_.reset();
  // 5: the final flush (the supervisor must not wake a flusher that is stopping).
  if (monitor_) {
    monitor_->StopSupervisor();
  }
  bool flushed = flusher_ ? flusher_->Stop() : true;
  if (monitor_) {
    monitor_->FinalReport();
  }
  LogMain()->info("stopped{}", flushed ? "" : " with unflushed counts");
  return flushed ? 0 : 1;
}

}  // namespace tally::daemon
