#include "daemon/metrics.h"

namespace tally::daemon {
namespace {

thread_local ThreadCounters* tls_counters = nullptr;
ThreadCounters fallback_counters;  // for threads the Daemon did not set up (tests)

}  // namespace

ThreadCounters& ThisThreadCounters() {
  return tls_counters != nullptr ? *tls_counters : fallback_counters;
}

void SetThisThreadCounters(ThreadCounters* counters) { tls_counters = counters; }

namespace {
ForwardMetrics fallback_forward;
// Release/acquire: a receiver that sees the Daemon's block sees it constructed.
std::atomic<ForwardMetrics*> process_forward{&fallback_forward};
}  // namespace

ForwardMetrics& ProcessForwardMetrics() { return *process_forward.load(std::memory_order_acquire); }
void SetProcessForwardMetrics(ForwardMetrics* metrics) {
  process_forward.store(metrics != nullptr ? metrics : &fallback_forward,
                        std::memory_order_release);
}

}  // namespace tally::daemon
