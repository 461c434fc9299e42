// Names the calling thread, as `top -H`, `ps -L`, perf and gdb show it (docs/operations.md,
// "Threads"). Linux keeps at most 15 bytes; longer names are cut.
#pragma once

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace tally::daemon {

inline void NameThisThread(const std::string& name) {
  char cut[16] = {};
  std::memcpy(cut, name.data(), std::min(name.size(), sizeof(cut) - 1));
  pthread_setname_np(pthread_self(), cut);  // fails only for a name over 15 bytes: none here
}

}  // namespace tally::daemon
