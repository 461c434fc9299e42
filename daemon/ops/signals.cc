#include "daemon/ops/signals.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

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

// A thread that waits in pause(), a cancellation point, until it is cancelled.
void* WaitToBeCancelled(void*) {
  while (true) {
    pause();
  }
  return nullptr;
}

// glibc reserves signal 32 (SIGCANCEL) and 33 (SIGSETXID): sigaction and sigprocmask refuse
// them. It installs 33's handler at start, but 32's only on the first pthread_cancel: until
// then 32 has its default action and kills the process. Cancelling a throwaway thread
// installs it; glibc's handler (nptl sigcancel_handler, glibc 2.36) ignores a 32 that was not
// sent by the process itself to one of its threads (si_pid, si_code SI_TKILL).
void InstallCancelHandler() {
  pthread_t thread;
  if (pthread_create(&thread, nullptr, WaitToBeCancelled, nullptr) != 0) {
    LogMain()->warn("cannot start a thread to arm glibc's SIGCANCEL handler: signal 32 kills");
    return;
  }
  pthread_cancel(thread);
  pthread_join(thread, nullptr);
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
  InstallCancelHandler();
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
