// Signals: what each signal a user can send does to tallyd (docs/operations.md, "Signals").
//
//   orderly stop (final flush, exit 0): SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGXCPU, SIGPWR
//   flush now:                          SIGUSR1
//   ignored (logged, rate-limited):     SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO (SIGPOLL),
//                                       SIGSTKFLT, SIGRTMIN..SIGRTMAX
//   ignored (SIG_IGN):                  SIGPIPE (a closed peer is an EPIPE on that connection),
//                                       SIGXFSZ (a write past RLIMIT_FSIZE fails with EFBIG:
//                                       the flush fails and its counts stay pending)
//   harmless (glibc's own handlers):   32 (SIGCANCEL) and 33 (SIGSETXID), reserved by glibc
//                                       below SIGRTMIN; BlockSignals arms 32's handler, which
//                                       ignores a 32 sent from outside the process
// Every other signal keeps its default action: SIGKILL and SIGSTOP cannot be caught, and the
// fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS) mean a bug.
//
// Thread safety: BlockSignals() must run on the main thread before any other thread starts,
// so every thread inherits the mask and the handled signals reach only WaitForStopSignal.
#pragma once

#include <functional>
#include <string>

namespace tally::daemon {

enum class SignalAction {
  kStop,
  kFlush,
  kIgnore,
};

// The action for `sig` in the table above; kIgnore for a signal outside it.
SignalAction ActionFor(int sig);

// "SIGTERM", "SIGRTMIN+3", ...
std::string SignalName(int sig);

// Blocks every handled signal in the calling thread, ignores SIGPIPE and SIGXFSZ, and arms
// glibc's SIGCANCEL handler (by cancelling a short-lived thread of its own).
void BlockSignals();

// Waits for the signals BlockSignals blocked: runs `flush_now` on SIGUSR1, logs an ignored
// one (at most one line per 10 s), and returns the first stop signal. Main thread only.
int WaitForStopSignal(const std::function<void()>& flush_now);

}  // namespace tally::daemon
