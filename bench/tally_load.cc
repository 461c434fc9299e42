// tally-load: an end-to-end load generator for tallyd (and, with --readback none or floor,
// for the peers and the floor). Usage: tally-load --help; docs: bench/README.md.
//
// It pre-renders its payloads, sends them for --duration seconds at --rate (or flat out),
// waits for the receiver to catch up, makes tallyd flush, and reads back /metrics and the
// summary. Before/after snapshots are subtracted, so the figures are exact per run.
// Human-readable lines go to stderr; one JSON line goes to stdout.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>

#include "bench/tally_load_net.h"
#include "bench/tally_load_options.h"
#include "bench/tally_load_payload.h"
#include "bench/tally_load_readback.h"
#include "bench/tally_load_senders.h"

namespace tally::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return -1;
  }
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Polls the receiver until every sent line is accounted for (received or dropped by the
// kernel), or nothing changed for 500 ms, or o.settle_s passed. Returns the last snapshot
// and, in *active_s, the time from the start of sending to the last change seen.
Snapshot Settle(const Options& o, const Snapshot& before, uint64_t sent_events, double send_s,
                Clock::time_point sent_end, double* active_s) {
  Snapshot last = ReadCounters(o);
  *active_s = send_s;
  Clock::time_point last_change = sent_end;
  const Clock::time_point deadline = sent_end + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(o.settle_s));
  while (last.error.empty()) {
    uint64_t seen =
        (last.received() - before.received()) + (last.kernel_drops - before.kernel_drops) * o.lines;
    Clock::time_point now = Clock::now();
    if (seen >= sent_events || now >= deadline ||
        now - last_change > std::chrono::milliseconds(500)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Snapshot next = ReadCounters(o);
    if (next.error.empty() && next.received() != last.received()) {
      last_change = Clock::now();
      *active_s = send_s + std::chrono::duration<double>(last_change - sent_end).count();
    }
    last = next;
  }
  return last;
}

int Run(const Options& o) {
  Clock::time_point t0 = Clock::now();
  Pool pool = BuildPool(o);
  fprintf(stderr,
          "tally-load: %zu pre-rendered %s of %u lines over %llu keys (%.1f MB) in %.2f s\n",
          pool.chunks.size(), o.transport == "http" ? "requests" : "datagrams", o.lines,
          static_cast<unsigned long long>(pool.distinct_keys), pool.bytes.size() / 1e6,
          std::chrono::duration<double>(Clock::now() - t0).count());

  const bool tallyd = o.readback == "tallyd";
  Snapshot before;
  std::string flushed_by;
  if (o.readback != "none") {
    if (tallyd) {
      flushed_by = FlushTallyd(o);
      ReadSummary(o, &before);
    }
    Snapshot counters = ReadCounters(o);
    if (!counters.error.empty() || !before.error.empty()) {
      fprintf(stderr, "tally-load: read-back before the run failed: %s%s\n", counters.error.c_str(),
              before.error.c_str());
      return 1;
    }
    std::copy(std::begin(counters.lines), std::end(counters.lines), before.lines);
    before.kernel_drops = counters.kernel_drops;
    before.proc_drops = counters.proc_drops;
  }

  SendTotals sent;
  if (o.transport == "http") {
    sent = SendHttp(pool, o);
  } else {
    std::string error;
    int fd =
        o.transport == "udp" ? ConnectUdp(o.target, &error) : ConnectUnixDatagram(o.target, &error);
    if (fd < 0) {
      fprintf(stderr, "tally-load: %s\n", error.c_str());
      return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    sent = SendDatagrams(fd, pool, o);
    close(fd);
  }
  Clock::time_point sent_end = Clock::now();
  if (!sent.error.empty()) {
    fprintf(stderr, "tally-load: sender: %s\n", sent.error.c_str());
  }
  fprintf(stderr,
          "sent: %llu %s, %llu events (%llu successes, %llu failures) in %.3f s = %.0f events/s; "
          "%llu send errors\n",
          static_cast<unsigned long long>(sent.messages),
          o.transport == "http" ? "requests" : "datagrams",
          static_cast<unsigned long long>(sent.events),
          static_cast<unsigned long long>(sent.successes),
          static_cast<unsigned long long>(sent.failures), sent.seconds,
          sent.events / std::max(sent.seconds, 1e-9),
          static_cast<unsigned long long>(sent.send_errors));

  std::ostringstream json;
  json << "{\"label\":\"" << o.label << "\",\"transport\":\"" << o.transport
       << "\",\"lines_per_msg\":" << o.lines << ",\"keys\":" << o.keys << ",\"skew\":\"" << o.skew
       << "\",\"offered_eps\":" << o.rate << ",\"send_s\":" << sent.seconds
       << ",\"sent_msgs\":" << sent.messages << ",\"sent_events\":" << sent.events
       << ",\"sent_successes\":" << sent.successes << ",\"sent_failures\":" << sent.failures
       << ",\"send_errors\":" << sent.send_errors
       << ",\"sent_eps\":" << static_cast<uint64_t>(sent.events / std::max(sent.seconds, 1e-9));
  if (o.transport == "http") {
    json << ",\"http_accepted\":" << sent.http_accepted
         << ",\"http_rejected\":" << sent.http_rejected;
  }
  if (o.wait_flush) {
    double p50 = Percentile(sent.latencies_ms, 0.5);
    double p99 = Percentile(sent.latencies_ms, 0.99);
    json << ",\"latency_p50_ms\":" << p50 << ",\"latency_p99_ms\":" << p99;
    fprintf(stderr, "wait=flush latency over %zu requests: p50 %.2f ms, p99 %.2f ms\n",
            sent.latencies_ms.size(), p50, p99);
  }
  int rc = sent.error.empty() ? 0 : 1;
  if (o.readback != "none") {
    double active_s = sent.seconds;
    Snapshot after = Settle(o, before, sent.events, sent.seconds, sent_end, &active_s);
    if (tallyd && after.error.empty()) {
      flushed_by = FlushTallyd(o);
      ReadSummary(o, &after);
    }
    if (!after.error.empty()) {
      fprintf(stderr, "tally-load: read-back failed: %s\n", after.error.c_str());
      return 1;
    }
    uint64_t accepted = after.lines[0] - before.lines[0];
    uint64_t rejected = after.received() - before.received() - accepted;
    uint64_t drops = after.kernel_drops - before.kernel_drops;
    int64_t lost = static_cast<int64_t>(sent.events) - static_cast<int64_t>(accepted);
    double accepted_eps = accepted / std::max(active_s, 1e-9);
    fprintf(stderr,
            "received: %llu accepted, %llu not accepted (ignored/malformed/refused); kernel drops "
            "%llu datagrams; lost %lld of %llu events (%.4f%%); accepted %.0f events/s over "
            "%.3f s\n",
            static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected),
            static_cast<unsigned long long>(drops), static_cast<long long>(lost),
            static_cast<unsigned long long>(sent.events),
            sent.events ? 100.0 * static_cast<double>(lost) / sent.events : 0.0, accepted_eps,
            active_s);
    if (after.proc_drops >= 0) {
      int64_t proc = after.proc_drops - before.proc_drops;
      fprintf(stderr, "kernel drops in /proc/net/udp for the port: %lld datagrams (%lld lines)\n",
              static_cast<long long>(proc), static_cast<long long>(proc) * o.lines);
      json << ",\"proc_udp_drops\":" << proc;
    }
    json << ",\"accepted\":" << accepted << ",\"rejected\":" << rejected
         << ",\"kernel_drops\":" << drops << ",\"lost\":" << lost
         << ",\"accepted_eps\":" << static_cast<uint64_t>(accepted_eps)
         << ",\"active_s\":" << active_s;
    if (after.rcvbuf >= 0) {
      json << ",\"rcvbuf\":" << after.rcvbuf;
    }
    if (tallyd) {
      int64_t total = after.total - before.total;
      int64_t ok = after.success - before.success;
      int64_t bad = after.failure - before.failure;
      bool exact = flushed_by.size() > 0 && total == static_cast<int64_t>(accepted) && lost == 0 &&
                   ok == static_cast<int64_t>(sent.successes) &&
                   bad == static_cast<int64_t>(sent.failures);
      fprintf(stderr,
              "persisted (summary delta after %s): %lld total, %lld successes, %lld failures; "
              "%s\n",
              flushed_by.empty() ? "NO flush" : flushed_by.c_str(), static_cast<long long>(total),
              static_cast<long long>(ok), static_cast<long long>(bad),
              exact ? "exact: persisted == sent, by outcome" : "NOT exact");
      json << ",\"persisted_total\":" << total << ",\"persisted_successes\":" << ok
           << ",\"persisted_failures\":" << bad << ",\"exact\":" << (exact ? "true" : "false");
    }
  }
  json << "}";
  printf("%s\n", json.str().c_str());
  return rc;
}

}  // namespace
}  // namespace tally::bench

int main(int argc, char** argv) {
  tally::bench::Options o;
  std::string error = tally::bench::ParseOptions(argc, argv, &o);
  if (error == "help") {
    fputs(tally::bench::Usage(), stdout);
    return 0;
  }
  if (!error.empty()) {
    fprintf(stderr, "tally-load: %s (see --help)\n", error.c_str());
    return 2;
  }
  return tally::bench::Run(o);
}
