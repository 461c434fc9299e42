#include "daemon/ops_endpoints.h"

#include <sstream>

namespace tally::daemon {

Response ReadyResponse(const ApiContext& ctx) {
  if (ctx.stopping.load(std::memory_order_relaxed)) {
    return JsonError(http::status::service_unavailable, "stopping");
  }
  if (!ctx.listening.load(std::memory_order_relaxed)) {
    return JsonError(http::status::service_unavailable, "listeners not bound yet");
  }
  FlushStats stats = ctx.flusher.stats();
  if (stats.failing) {
    return JsonError(http::status::service_unavailable, "the last flush failed");
  }
  return JsonResponse(http::status::ok, R"({"status":"ready"})");
}

Response MetricsResponse(const ApiContext& ctx) {
  std::ostringstream out;
  const CounterRegistry& reg = ctx.counters;
  static const char* kResults[] = {"accepted", "ignored", "malformed", "refused"};
  out << "# HELP tallyd_lines_total Lines received, by transport and result.\n"
      << "# TYPE tallyd_lines_total counter\n";
  for (size_t t = 0; t < kTransports; ++t) {
    for (size_t r = 0; r < 4; ++r) {
      out << "tallyd_lines_total{transport=\"" << kTransportNames[t] << "\",result=\""
          << kResults[r] << "\"} "
          << reg.Sum([&](const ThreadCounters& c) -> const OwnedCounter& { return c.lines[t][r]; })
          << "\n";
    }
  }
  out << "# HELP tallyd_udp_kernel_drops_total Datagrams the kernel dropped (SO_RXQ_OVFL).\n"
      << "# TYPE tallyd_udp_kernel_drops_total counter\n"
      << "tallyd_udp_kernel_drops_total " << ctx.kernel_drops() << "\n";
  out << "# HELP tallyd_keys Distinct keys in the counter table.\n"
      << "# TYPE tallyd_keys gauge\n"
      << "tallyd_keys " << ctx.table.keys() << "\n";
  Response res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = out.str();
  res.prepare_payload();
  return res;
}

}  // namespace tally::daemon
