#include "daemon/ops/service_monitor.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "daemon/log.h"
#include "daemon/threads.h"

namespace tally::daemon {
namespace {

uint64_t Ns(std::chrono::nanoseconds d) { return static_cast<uint64_t>(d.count()); }

}  // namespace

ServiceMonitor::ServiceMonitor(const core::CounterTable& table, CounterRegistry& counters,
                               Flusher& flusher, std::function<uint64_t()> kernel_drops)
    : table_(table),
      counters_(counters),
      flusher_(flusher),
      kernel_drops_(std::move(kernel_drops)) {}

ServiceMonitor::~ServiceMonitor() { StopSupervisor(); }

void ServiceMonitor::Ready() {
  notifier_.Ready();
  SendStatus(flusher_.stats());
  if (notifier_.watchdog_timeout().count() > 0) {
    LogMain()->info("systemd watchdog: {} ms; the flusher pings it",
                    notifier_.watchdog_timeout().count() / 1000);
    supervisor_ = std::thread([this] {
      BecomeBackgroundThread("tally-monitor");
      Supervise();
    });
  }
}

void ServiceMonitor::Stopping() {
  notifier_.Stopping();
  notifier_.Status("stopping: draining sockets, then the final flush");
}

void ServiceMonitor::StopSupervisor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (supervisor_.joinable()) {
    supervisor_.join();
  }
}

void ServiceMonitor::Supervise() {
  const auto timeout =
      std::chrono::duration_cast<std::chrono::nanoseconds>(notifier_.watchdog_timeout());
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, timeout / 4, [this] { return stop_; })) {
    // Relaxed: see last_attempt_ns_.
    uint64_t last = last_attempt_ns_.load(std::memory_order_relaxed);
    if (SteadyNowNs() - last > Ns(timeout / 2)) {
      flusher_.Wake();  // a live flusher attempts now and pings; a stuck one cannot
    }
  }
}

void ServiceMonitor::OnFlushDuration(double seconds) {
  counters_.process.flush_seconds.Observe(seconds);
}

void ServiceMonitor::OnFlushAttempt(const FlushStats& stats) {
  const uint64_t now = SteadyNowNs();
  last_attempt_ns_.store(now, std::memory_order_relaxed);

  const auto watchdog = notifier_.watchdog_timeout();
  if (watchdog.count() > 0 && now - last_ping_ns_ >= Ns(watchdog / 4)) {
    notifier_.Watchdog();
    last_ping_ns_ = now;
  }
  if (stats.failing != last_failing_ || now - last_status_ns_ >= Ns(kStatusPeriod)) {
    SendStatus(stats);
    last_status_ns_ = now;
    last_failing_ = stats.failing;
  }
  WarnRepeats(now, /*force=*/false);
}

void ServiceMonitor::FinalReport() { WarnRepeats(SteadyNowNs(), /*force=*/true); }

void ServiceMonitor::SendStatus(const FlushStats& stats) {
  if (!notifier_.enabled()) {
    return;
  }
  std::string line = fmt::format("{} keys tracked; ", table_.keys());
  if (stats.failing) {
    line += fmt::format("flush FAILING ({} errors so far), {} keys pending", stats.errors,
                        stats.pending_keys);
  } else if (stats.last_ok_unix_ns == 0) {
    line += "no flush yet";
  } else {
    double ago = static_cast<double>(core::UnixNowNs() - stats.last_ok_unix_ns) / 1e9;
    line += fmt::format("last flush ok {:.1f} s ago in {:.1f} ms", ago < 0 ? 0 : ago,
                        stats.last_duration_s * 1000);
  }
  notifier_.Status(line);
}

void ServiceMonitor::Summarize(Repeat& r, uint64_t current, uint64_t now_ns, bool force,
                               const char* what) {
  if (current <= r.reported || (!force && now_ns < r.next_log_ns)) {
    return;
  }
  uint64_t period_s = static_cast<uint64_t>(kRepeatPeriod.count());
  LogMain()->warn("{} {} since the last report (at most one such line per {} s; see /metrics)",
                  current - r.reported, what, period_s);
  r.reported = current;
  r.next_log_ns = now_ns + Ns(kRepeatPeriod);
}

void ServiceMonitor::WarnRepeats(uint64_t now_ns, bool force) {
  uint64_t malformed = 0;
  uint64_t refused = 0;
  for (size_t t = 0; t < kTransports; ++t) {
    malformed += counters_.Sum(
        [t](const ThreadCounters& c) -> const OwnedCounter& { return c.lines[t][2]; });
    refused += counters_.Sum(
        [t](const ThreadCounters& c) -> const OwnedCounter& { return c.lines[t][3]; });
  }
  Summarize(malformed_, malformed, now_ns, force, "malformed lines");
  Summarize(refused_, refused, now_ns, force,
            "refused lines (sample rate below 1, or no room for a new key)");
  Summarize(drops_, kernel_drops_ ? kernel_drops_() : 0, now_ns, force,
            "datagrams dropped by the kernel (receive buffer full)");
  Summarize(truncated_, counters_.Sum([](const ThreadCounters& c) -> const OwnedCounter& {
    return c.truncated_datagrams;
  }),
            now_ns, force, "datagrams refused whole as too long (Unix: over 512 KiB)");

  size_t keys = table_.keys();
  size_t threshold = table_.max_keys() / 10 * 9;
  if (!keys_warned_ && keys >= threshold) {
    LogMain()->warn("{} keys tracked, {}% of --max-keys {}; new keys are refused past it", keys,
                    keys * 100 / table_.max_keys(), table_.max_keys());
    keys_warned_ = true;
  }
}

}  // namespace tally::daemon
