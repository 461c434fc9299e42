// The daemon's thread names and background priority (threads.h).
#include "daemon/threads.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "daemon/log.h"

namespace tally::daemon {
namespace {

// Relaxed: written once at start-up before the threads that read it are created (thread
// creation orders the write before their reads).
std::atomic<int> background_nice{0};

}  // namespace

void NameThisThread(const std::string& name) {
  char cut[16] = {};
  std::memcpy(cut, name.data(), std::min(name.size(), sizeof(cut) - 1));
  pthread_setname_np(pthread_self(), cut);  // fails only for a name over 15 bytes: none here
}

void SetBackgroundNice(int nice) { background_nice.store(nice, std::memory_order_relaxed); }

void BecomeBackgroundThread(const std::string& name) {
  NameThisThread(name);
  const int nice = background_nice.load(std::memory_order_relaxed);
  if (nice == 0) {
    return;
  }
  // Linux: PRIO_PROCESS with a thread id reads and sets that thread's nice value alone.
  // Relative to the value it started with (the process's: a unit's Nice=), at most 19.
  const auto tid = static_cast<id_t>(gettid());
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);  // -1 is also a valid nice value
  const int target = std::min(19, (errno == 0 ? now : 0) + nice);
  static std::atomic<bool> warned{false};
  // Relaxed exchange: only says whether this is the first failure; nothing is published.
  if (setpriority(PRIO_PROCESS, tid, target) != 0 &&
      !warned.exchange(true, std::memory_order_relaxed)) {
    LogMain()->warn(
        "cannot lower the background threads' priority (--background-nice {}): {}; they keep "
        "the I/O threads' (a sandbox without setpriority?)",
        nice, std::strerror(errno));
  }
}

}  // namespace tally::daemon
