// DatagramReceiver: reads a UDP or Unix datagram socket in batches with recvmmsg and feeds
// every datagram to the parser and the counter table.
//
// Asio has no batch receive, so the receiver waits for readability with async_wait on the
// native descriptor and then empties the socket with non-blocking recvmmsg calls.
// One receiver per I/O thread; it runs only on its thread's io_context.
//
// Rules it keeps (README "Transports", docs/reliability.md):
//   - A datagram is counted whole or not at all. Every UDP datagram fits the receive buffer
//     (kMaxUdpDatagram); a Unix datagram up to kMaxUnixDatagram is received whole, and a
//     longer one (its sender raised SO_SNDBUF) is cut by the kernel, so it is refused whole:
//     none of its lines count, and ThreadCounters::truncated_datagrams counts it.
//   - Descriptors passed with a Unix datagram (SCM_RIGHTS) never enter tallyd's descriptor
//     table: the receive passes no control buffer, so the kernel drops them itself. The
//     datagram's lines count as usual (the payload is the protocol; ancillary data is not),
//     and ThreadCounters::unix_datagrams_with_fds counts it.
//   - A receive error other than EAGAIN is counted (ThreadCounters::receive_errors), logged
//     at most once per 10 s, and retried after a backoff (1 ms doubling to 1 s). A receiver
//     that has failed for kDownAfter, or whose descriptor is no longer a socket (EBADF,
//     ENOTSOCK: retrying could read someone else's descriptor), is down:
//     ThreadCounters::receivers_down counts it and /healthz answers 503. The first
//     successful receive brings a failing receiver back up.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/counter_table.h"
#include "core/failure_codes.h"
#include "core/mapping.h"
#include "core/status.h"
#include "daemon/endpoint.h"
#include "daemon/log.h"
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
  // The largest datagram received whole. 65,536 bytes hold any UDP payload (65,527 at most).
  // A Unix datagram is bounded only by its sender's SO_SNDBUF (212,960 bytes at Linux's
  // default, 425,952 at the default net.core.wmem_max); 512 KiB covers both. The Unix
  // receiver's kBatch buffers reserve 16 MiB of address space, resident only as far as
  // datagrams have filled them.
  static constexpr size_t kMaxUdpDatagram = 65536;
  static constexpr size_t kMaxUnixDatagram = 512 * 1024;
  // A receiver whose reads have failed for this long is down (see above).
  static constexpr std::chrono::seconds kDownAfter{5};

  // Takes ownership of `fd`.
  DatagramReceiver(boost::asio::io_context& io, int fd, Transport transport,
                   core::CounterTable& table, std::string prefix, ThreadCounters& counters);
  ~DatagramReceiver();

  void Start();
  // Marks the socket as shared with whoever passed it in (systemd socket activation): the
  // stop then drains it without the fence below, so the kernel keeps queueing datagrams for
  // the next instance instead of refusing them. Call before Start.
  void SetInherited() { inherited_ = true; }
  // Mapping rules for the lines tallyd's own protocol ignores (--mapping-file); none unless
  // set. Call before Start.
  void SetMapping(std::shared_ptr<const core::Mapping> mapping) { mapping_ = std::move(mapping); }
  // Failures naming a code the ban rule wants go there too (core/failure_codes.h). Not
  // owned; call before Start.
  void SetFailureCodes(core::FailureCodes* codes) { codes_ = codes; }
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
  // Receive buffers sit max_datagram_ + kBufferPad apart, not a power of two: at such a
  // stride every datagram of a batch would start in the same cache sets and evict the
  // others before they are parsed. 23 more cache lines per buffer spread their starts.
  static constexpr size_t kBufferPad = 23 * 64;

  // Batches read per turn of the event loop before yielding to the thread's other work.
  static constexpr size_t kBatchesPerTurn = 16;
  static constexpr std::chrono::milliseconds kFirstBackoff{1};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};
  enum class ReadResult { kEmpty, kBudgetSpent, kFailed };

  void Wait();
  // One turn: reads up to kBatchesPerTurn batches, then waits for readiness again if the
  // socket is empty or posts the next turn if it is not; after an error, retries later.
  void ReadSome();
  // Reads batches until the socket is empty or `max_batches` were read. On kFailed,
  // last_errno_ holds the error, already counted.
  ReadResult Read(size_t max_batches);
  // After a failed read or wait: logs (rate-limited), marks the receiver down when the
  // failure is for good or has lasted kDownAfter, and schedules the retry.
  void OnError(int err);
  // After a read that worked: ends a failure streak.
  void OnSuccess();
  void SetDown(bool down);
  void UpdateKernelDrops();
  const char* transport_name() const;

  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer retry_timer_;
  bool inherited_ = false;
  Transport transport_;
  core::CounterTable& table_;
  core::FailureCodes* codes_ = nullptr;
  std::string prefix_;
  std::shared_ptr<const core::Mapping> mapping_;
  core::MappedCounts mapped_;  // this batch's lines per rule, added to counters_ after it
  ThreadCounters& counters_;
  size_t max_datagram_;
  size_t stride_;
  // Not value-initialized: pages are touched only as datagrams fill them.
  std::unique_ptr<char[]> buffers_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<char> control_;
  bool stopped_ = false;
  // The current failure streak: when it began (steady clock), the next retry's delay, the
  // last errno, and whether it has made the receiver down. Touched on this thread only.
  std::chrono::steady_clock::time_point failing_since_{};
  bool failing_ = false;
  bool down_ = false;
  std::chrono::milliseconds backoff_{kFirstBackoff};
  int last_errno_ = 0;
  RateLimiter error_log_{std::chrono::seconds(10)};
  // Written by this receiver's thread, read by /metrics. Relaxed: a monotonic statistic.
  std::atomic<uint64_t> kernel_drops_{0};
};

}  // namespace tally::daemon
