// The daemon's threads: their names, as `top -H`, `ps -L`, perf and gdb show them, and the
// lower CPU priority of every thread that is not an I/O thread (docs/operations.md,
// "Threads"). The I/O threads receive datagrams whose only buffer is the socket's: a few
// milliseconds off their CPU, behind a flush or a RocksDB memtable write, and the kernel
// drops datagrams (docs/performance.md, "Receiving thread stalls"). The others can wait.
#pragma once

#include <string>

namespace tally::daemon {

// Names the calling thread. Linux keeps at most 15 bytes; longer names are cut.
void NameThisThread(const std::string& name);

// The nice value background threads take (--background-nice, 0..19; 0 leaves them as the
// I/O threads). Set once at start-up, before any background thread starts.
void SetBackgroundNice(int nice);

// Names the calling thread and raises its nice value by that much, at most to 19 (a
// lower priority needs no privilege). Called first thing by every thread that is not an
// I/O thread.
void BecomeBackgroundThread(const std::string& name);

}  // namespace tally::daemon
