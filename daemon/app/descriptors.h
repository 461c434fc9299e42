// Descriptors: the open-files limit tallyd runs under, and how many HTTP connections it
// leaves room for (docs/operations.md, "Descriptor limits").
//
// At start tallyd raises its soft RLIMIT_NOFILE to the hard limit, as most daemons do. HTTP
// connections then get what is left once a reserve is kept for everything else: RocksDB
// (its WAL, manifest and table files: tallyd leaves max_open_files unbounded, and a handful
// of files is what its data needs), the listeners, the epoll and event descriptors of each
// I/O thread, a checkpoint's links, the logs. An idle, unauthenticated client can then never
// take the descriptor a flush needs: past the cap it gets 503.
//
// Thread safety: call from the main thread at start, before the I/O threads run.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace tally::daemon {

inline constexpr uint64_t kReservedDescriptors = 256;
inline constexpr uint64_t kDescriptorsPerIoThread = 4;

// Raises the soft RLIMIT_NOFILE to the hard limit and logs the result; returns the soft limit
// in force afterwards (unchanged if raising failed, which is logged).
uint64_t RaiseOpenFilesLimit();

// The descriptors kept out of the HTTP connections' reach for `io_threads` I/O threads.
uint64_t ReservedDescriptors(uint32_t io_threads);

// min(asked, nofile - ReservedDescriptors(io_threads)): the connection cap in force. Logs a
// warning when it is below `asked`; InvalidArgument (tallyd does not start) when the limit
// leaves no connection at all.
core::StatusOr<uint32_t> EffectiveMaxConnections(uint32_t asked, uint64_t nofile,
                                                 uint32_t io_threads);

}  // namespace tally::daemon
