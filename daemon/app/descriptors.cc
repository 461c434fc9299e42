#include "daemon/app/descriptors.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "daemon/log.h"

namespace tally::daemon {

uint64_t RaiseOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    LogMain()->warn("cannot read the open-files limit: {}", std::strerror(errno));
    return 1024;
  }
  const rlim_t before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      LogMain()->warn("cannot raise the open-files limit from {} to {}: {}", before, limit.rlim_max,
                      std::strerror(errno));
      return before;
    }
    LogMain()->info("open-files limit raised from {} to the hard limit {}", before, limit.rlim_max);
  } else {
    LogMain()->info("open-files limit {} (the hard limit)", before);
  }
  return limit.rlim_cur;
}

uint64_t ReservedDescriptors(uint32_t io_threads) {
  return kReservedDescriptors + kDescriptorsPerIoThread * io_threads;
}

core::StatusOr<uint32_t> EffectiveMaxConnections(uint32_t asked, uint64_t nofile,
                                                 uint32_t io_threads) {
  const uint64_t reserve = ReservedDescriptors(io_threads);
  if (nofile <= reserve) {
    return core::Status::InvalidArgument(
        "the open-files limit " + std::to_string(nofile) +
        " leaves no descriptor for HTTP connections: tallyd keeps " + std::to_string(reserve) +
        " for RocksDB, its listeners and threads; raise LimitNOFILE= (ulimit -n)");
  }
  const uint64_t room = nofile - reserve;
  if (room >= asked) {
    return asked;
  }
  LogHttp()->warn(
      "--max-connections {} lowered to {}: the open-files limit {} minus {} descriptors kept "
      "for RocksDB, the listeners and {} I/O threads (docs/operations.md, \"Descriptor "
      "limits\")",
      asked, room, nofile, reserve, io_threads);
  return static_cast<uint32_t>(room);
}

}  // namespace tally::daemon
