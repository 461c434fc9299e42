// The process's own resource use, for /metrics: resident memory and open descriptors, read
// from /proc/self at scrape time (tallyd_process_resident_memory_bytes,
// tallyd_process_open_fds). Any thread; a few system calls per scrape.
#pragma once

#include <cstdint>
#include <optional>

namespace tally::daemon {

// VmRSS in bytes (/proc/self/statm), or nullopt where it cannot be read.
std::optional<uint64_t> ResidentMemoryBytes();
// Entries of /proc/self/fd (the descriptors open now), or nullopt where it cannot be read.
std::optional<uint64_t> OpenDescriptors();

}  // namespace tally::daemon
