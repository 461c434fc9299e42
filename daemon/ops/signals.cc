#include "daemon/ops/signals.h"

#include <signal.h>
#include <string.h>

#include <chrono>

#include "daemon/log.h"

namespace tally::daemon {
namespace {

// Every signal BlockSignals blocks and WaitForStopSignal waits for.
sigset_t HandledSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGPWR, SIGUSR1, SIGUSR2, SIGALRM,
                  SIGVTALRM, SIGPROF, SIGIO, SIGSTKFLT}) {
    sigaddset(&set, sig);
  }
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; ++sig) {
    sigaddset(&set, sig);
  }
  return set;
}

}  // namespace

SignalAction ActionFor(int sig) {
  switch (sig) {
    case SIGTERM:
    case SIGINT:
    case SIGHUP:
    case SIGQUIT:
    case SIGXCPU:
    case SIGPWR:
      return SignalAction::kStop;
    case SIGUSR1:
      return SignalAction::kFlush;
    default:
      return SignalAction::kIgnore;
  }
}

std::string SignalName(int sig) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  }
  const char* abbrev = sigabbrev_np(sig);
  return abbrev == nullptr ? "signal " + std::to_string(sig) : std::string("SIG") + abbrev;
}

void BlockSignals() {
  sigset_t set = HandledSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
}

int WaitForStopSignal(const std::function<void()>& flush_now) {
  sigset_t set = HandledSet();
  static RateLimiter ignored_limiter(std::chrono::seconds(10));
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) {
      continue;
    }
    switch (ActionFor(sig)) {
      case SignalAction::kStop:
        return sig;
      case SignalAction::kFlush:
        LogMain()->info("{}: flushing now", SignalName(sig));
        flush_now();
        break;
      case SignalAction::kIgnore:
        if (uint64_t suppressed = 0; ignored_limiter.Allow(&suppressed)) {
          LogMain()->info("{} ignored ({} other ignored signals since the last such line)",
                          SignalName(sig), suppressed);
        }
        break;
    }
  }
}

}  // namespace tally::daemon
