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

}  // namespace tally::daemon
