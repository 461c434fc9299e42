#include "daemon/ops/process_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>

namespace tally::daemon {

std::optional<uint64_t> ResidentMemoryBytes() {
  FILE* f = std::fopen("/proc/self/statm", "re");
  if (f == nullptr) {
    return std::nullopt;
  }
  unsigned long long size = 0;
  unsigned long long resident = 0;
  int read = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  long page = sysconf(_SC_PAGESIZE);
  if (read != 2 || page <= 0) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(page);
}

std::optional<uint64_t> OpenDescriptors() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) {
    return std::nullopt;
  }
  uint64_t n = 0;
  while (const dirent* e = readdir(dir)) {
    n += e->d_name[0] == '.' ? 0 : 1;
  }
  closedir(dir);
  return n > 0 ? n - 1 : 0;  // the directory stream's own descriptor
}

}  // namespace tally::daemon
