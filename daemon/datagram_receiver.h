// DatagramReceiver: reads a UDP or Unix datagram socket in batches with recvmmsg and feeds
// every datagram to the parser and the counter table.
//
// Asio has no batch receive, so the receiver waits for readability with async_wait on the
// native descriptor and then empties the socket with non-blocking recvmmsg calls.
// One receiver per I/O thread; it runs only on its thread's io_context.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string>
#include <vector>

#include "core/counter_table.h"
#include "core/status.h"
#include "daemon/config.h"
#include "daemon/metrics.h"

namespace tally::daemon {

// Opens a UDP socket with SO_REUSEPORT, the requested SO_RCVBUF and SO_RXQ_OVFL, bound to
// `ep`. *granted_rcvbuf receives what the kernel actually gave.
core::StatusOr<int> OpenUdpSocket(const Endpoint& ep, uint64_t rcvbuf, uint64_t* granted_rcvbuf);
// Opens a Unix datagram socket at `path` (a stale socket there is replaced), mode 0660.
core::StatusOr<int> OpenUnixSocket(const std::string& path, uint64_t rcvbuf);
// The port a socket is bound to (0 for a Unix socket).
uint16_t BoundPort(int fd);

class DatagramReceiver {
 public:
  // Takes ownership of `fd`.
  DatagramReceiver(boost::asio::io_context& io, int fd, Transport transport,
                   core::CounterTable& table, std::string prefix, ThreadCounters& counters);
  ~DatagramReceiver();

  void Start();
  // Marks the socket as shared with whoever passed it in (systemd socket activation): the
  // stop then drains it without the fence below, so the kernel keeps queueing datagrams for
  // the next instance instead of refusing them. Call before Start.
  void SetInherited() { inherited_ = true; }
  // The orderly stop: fences the socket so no new datagram is queued to it (UDP: connect to
  // itself; Unix: shutdown(SHUT_RD), so senders get EPIPE), reads whatever it still holds,
  // and closes it ~20 ms later (a timer on the receiver's io_context keeps the thread running
  // until then). An inherited socket is drained and closed at once, unfenced. Call on the
  // receiver's own thread.
  void DrainAndClose();
  // Datagrams the kernel dropped on this socket for want of buffer space (SO_RXQ_OVFL).
  uint64_t kernel_drops() const;

 private:
  static constexpr size_t kBatch = 32;
  static constexpr size_t kMaxDatagram = 65536;
  // Receive buffers sit kBufferStride apart, not 64 KiB: at a power-of-two stride every
  // datagram of a batch would start in the same cache sets and evict the others before they
  // are parsed. 23 more cache lines per buffer spread their starts over the sets.
  static constexpr size_t kBufferStride = kMaxDatagram + 23 * 64;

  // Batches read per turn of the event loop before yielding to the thread's other work.
  static constexpr size_t kBatchesPerTurn = 16;
  enum class ReadResult { kEmpty, kBudgetSpent, kFailed };

  void Wait();
  // One turn: reads up to kBatchesPerTurn batches, then waits for readiness again if the
  // socket is empty or posts the next turn if it is not.
  void ReadSome();
  // Reads batches until the socket is empty or `max_batches` were read.
  ReadResult Read(size_t max_batches);
  void UpdateKernelDrops();

  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer drain_timer_;
  bool inherited_ = false;
  Transport transport_;
  core::CounterTable& table_;
  std::string prefix_;
  ThreadCounters& counters_;
  std::vector<char> buffers_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<char> control_;
  bool stopped_ = false;
  // Written by this receiver's thread, read by /metrics. Relaxed: a monotonic statistic.
  std::atomic<uint64_t> kernel_drops_{0};
};

}  // namespace tally::daemon
