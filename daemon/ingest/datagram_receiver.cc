#include "daemon/ingest/datagram_receiver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/ingest.h"

namespace tally::daemon {
namespace {

using core::Status;
using core::StatusOr;

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

constexpr size_t kControlSpace = CMSG_SPACE(sizeof(uint32_t));

}  // namespace

StatusOr<int> OpenUdpSocket(const Endpoint& ep, uint64_t rcvbuf, uint64_t* granted_rcvbuf) {
  bool v6 = ep.host.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Errno("udp socket");
  }
  int one = 1;
  int size = static_cast<int>(rcvbuf);
  // SO_RCVBUFFORCE passes rmem_max when we hold CAP_NET_ADMIN; otherwise SO_RCVBUF is capped.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
    Status s = Errno("udp setsockopt");
    close(fd);
    return s;
  }
  int granted = 0;
  socklen_t len = sizeof granted;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &len);
  *granted_rcvbuf = static_cast<uint64_t>(granted);

  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(ep.port);
    inet_pton(AF_INET6, ep.host.c_str(), &a->sin6_addr);
    addr_len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(ep.port);
    inet_pton(AF_INET, ep.host.c_str(), &a->sin_addr);
    addr_len = sizeof *a;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    Status s = Errno("udp bind " + ep.ToString());
    close(fd);
    return s;
  }
  return fd;
}

StatusOr<int> OpenUnixSocket(const std::string& path, uint64_t rcvbuf) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("unix socket path too long: " + path);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::InvalidArgument(path + " exists and is not a socket");
    }
    unlink(path.c_str());  // a stale socket from an earlier run
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Errno("unix socket");
  }
  int size = static_cast<int>(rcvbuf);
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  // The socket file is created with mode 0660 from the start (no window in which it is
  // more open): bind under a umask that clears the other bits, then chmod to be exact.
  // Called at startup, before any other thread creates files.
  mode_t old_mask = umask(0117);
  int bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old_mask);
  if (bound != 0 || chmod(path.c_str(), 0660) != 0) {
    Status s = Errno("unix bind " + path);
    close(fd);
    return s;
  }
  return fd;
}

uint16_t BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  return 0;
}

DatagramReceiver::DatagramReceiver(boost::asio::io_context& io, int fd, Transport transport,
                                   core::CounterTable& table, std::string prefix,
                                   ThreadCounters& counters)
    : socket_(io, fd),
      drain_timer_(io),
      retry_timer_(io),
      transport_(transport),
      table_(table),
      prefix_(std::move(prefix)),
      counters_(counters),
      max_datagram_(transport == Transport::kUnix ? kMaxUnixDatagram : kMaxUdpDatagram),
      stride_(max_datagram_ + kBufferPad),
      buffers_(new char[kBatch * stride_]),
      msgs_(kBatch),
      iovs_(kBatch),
      control_(kBatch * kControlSpace) {}

DatagramReceiver::~DatagramReceiver() = default;

void DatagramReceiver::Start() { Wait(); }

const char* DatagramReceiver::transport_name() const {
  return kTransportNames[static_cast<size_t>(transport_)];
}

void DatagramReceiver::Wait() {
  socket_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                     [this](const boost::system::error_code& ec) {
                       if (stopped_ || ec == boost::asio::error::operation_aborted) {
                         return;
                       }
                       if (ec) {
                         OnError(ec.value());
                         return;
                       }
                       ReadSome();
                     });
}

void DatagramReceiver::ReadSome() {
  if (stopped_) {
    return;
  }
  switch (Read(kBatchesPerTurn)) {
    case ReadResult::kEmpty:
      OnSuccess();
      Wait();
      break;
    case ReadResult::kBudgetSpent:
      OnSuccess();
      // A flood never empties the socket: give the thread's other work (HTTP sessions, the
      // stop) its turn, then carry on without waiting for readiness.
      boost::asio::post(socket_.get_executor(), [this] { ReadSome(); });
      break;
    case ReadResult::kFailed:
      OnError(last_errno_);
      break;
  }
}

void DatagramReceiver::OnError(int err) {
  const auto now = std::chrono::steady_clock::now();
  if (!failing_) {
    failing_ = true;
    failing_since_ = now;
    backoff_ = kFirstBackoff;
  }
  // The descriptor is not (or no longer) our socket: a retry could read a descriptor that
  // something else opened under the same number.
  const bool for_good = err == EBADF || err == ENOTSOCK;
  uint64_t suppressed = 0;
  if (error_log_.Allow(&suppressed)) {
    LogUdp()->error("{} socket: receive failed: {} ({} more since the last report){}",
                    transport_name(), std::strerror(err), suppressed,
                    for_good ? "; the receiver stops" : "; retrying");
  }
  if (for_good || now - failing_since_ >= kDownAfter) {
    SetDown(true);
  }
  if (for_good) {
    return;
  }
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      ReadSome();
    }
  });
}

void DatagramReceiver::OnSuccess() {
  if (!failing_) {
    return;
  }
  failing_ = false;
  if (down_) {
    LogUdp()->info(
        "{} socket: receiving again after {:.1f} s of errors", transport_name(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - failing_since_).count());
  }
  SetDown(false);
}

void DatagramReceiver::SetDown(bool down) {
  if (down == down_) {
    return;
  }
  down_ = down;
  OwnedGauge& gauge = counters_.receivers_down[static_cast<size_t>(transport_)];
  gauge.Set(down ? gauge.Get() + 1 : gauge.Get() - 1);
}

DatagramReceiver::ReadResult DatagramReceiver::Read(size_t max_batches) {
  const int fd = socket_.native_handle();
  // Unix: no control buffer, so descriptors a sender passes are never installed (the kernel
  // drops them and sets MSG_CTRUNC). UDP: room for the SO_RXQ_OVFL drop count.
  const bool unix_socket = transport_ == Transport::kUnix;
  for (size_t batch = 0; batch < max_batches; ++batch) {
    for (size_t i = 0; i < kBatch; ++i) {
      iovs_[i] = {buffers_.get() + i * stride_, max_datagram_};
      msgs_[i].msg_hdr = {};
      msgs_[i].msg_hdr.msg_iov = &iovs_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      msgs_[i].msg_hdr.msg_control = unix_socket ? nullptr : control_.data() + i * kControlSpace;
      msgs_[i].msg_hdr.msg_controllen = unix_socket ? 0 : kControlSpace;
    }
    // MSG_CMSG_CLOEXEC: were a descriptor ever installed, it would not leak into a child.
    int n = recvmmsg(fd, msgs_.data(), kBatch, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return ReadResult::kEmpty;
      }
      if (errno == EINTR) {
        continue;
      }
      last_errno_ = errno;
      counters_.receive_errors[static_cast<size_t>(transport_)].Add(1);
      counters_.receive_errno[static_cast<size_t>(transport_)].Set(
          static_cast<uint64_t>(last_errno_));
      return ReadResult::kFailed;
    }
    core::LineCounts counts;
    for (int i = 0; i < n; ++i) {
      msghdr& h = msgs_[i].msg_hdr;
      if (unix_socket && (h.msg_flags & MSG_CTRUNC) != 0) {
        counters_.unix_datagrams_with_fds.Add(1);  // SO_PASSCRED is off: only SCM_RIGHTS
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          uint32_t drops = 0;
          std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
          // Relaxed: this thread is the only writer; readers want a recent value.
          kernel_drops_.store(drops, std::memory_order_relaxed);
        }
      }
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        // Longer than max_datagram_: the kernel cut it and its tail is gone. Counting the
        // lines before the cut would count part of a datagram, so none of it counts.
        counters_.truncated_datagrams.Add(1);
        continue;
      }
      counts += IngestOrRefuse(
          std::string_view(static_cast<const char*>(iovs_[i].iov_base), msgs_[i].msg_len), prefix_,
          table_, mapping_.get(), &mapped_, codes_);
    }
    if (mapping_ != nullptr) {
      counters_.CountMapped(&mapped_, mapping_->size());
    }
    counters_.datagrams[static_cast<size_t>(transport_)].Add(static_cast<uint64_t>(n));
    counters_.CountLines(transport_, counts);
    if (static_cast<size_t>(n) < kBatch) {
      return ReadResult::kEmpty;
    }
  }
  return ReadResult::kBudgetSpent;
}

void DatagramReceiver::DrainAndClose() {
  stopped_ = true;
  boost::system::error_code ec;
  socket_.cancel(ec);
  retry_timer_.cancel();
  const int fd = socket_.native_handle();
  // 1. Stop new datagrams from reaching this socket while keeping the queued ones readable.
  //    UDP: connect to our own address; a connected socket only takes datagrams from its
  //    peer, and SO_REUSEPORT never picks a connected socket, so the other sockets of the
  //    group (or, once all are closed this way, an ICMP "port unreachable" that the
  //    sender's next send reports) take over. Unix: shutdown(SHUT_RD) makes senders get
  //    EPIPE instead of queueing.
  //    An inherited socket is not fenced: systemd holds it open for the next instance, and a
  //    fence would make the kernel refuse the datagrams sent during the restart. Whatever
  //    arrives after this drain stays queued for that instance.
  if (inherited_) {
    // Bounded: under a flood the queue never empties, and what is left stays queued for the
    // next instance.
    (void)Read(kBatchesPerTurn * 64);
    UpdateKernelDrops();
    boost::system::error_code close_ec;
    socket_.close(close_ec);
    return;
  }
  if (transport_ == Transport::kUnix) {
    (void)shutdown(fd, SHUT_RD);
  } else {
    sockaddr_storage self{};
    socklen_t len = sizeof self;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0) {
      if (self.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&self);
        if (a->sin_addr.s_addr == htonl(INADDR_ANY)) {
          a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }
      } else if (self.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&self);
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) {
          a->sin6_addr = in6addr_loopback;
        }
      }
      if (connect(fd, reinterpret_cast<sockaddr*>(&self), len) != 0) {
        LogUdp()->warn("could not fence the socket before draining it: {}", std::strerror(errno));
      }
    }
  }
  // 2. Read what is queued, then once more after a short pause for datagrams a softirq on
  //    another core was delivering while the fence went up; then close.
  (void)Read(SIZE_MAX);  // finite: the fence stops new datagrams
  drain_timer_.expires_after(std::chrono::milliseconds(20));
  drain_timer_.async_wait([this](const boost::system::error_code&) {
    (void)Read(SIZE_MAX);
    UpdateKernelDrops();
    boost::system::error_code close_ec;
    socket_.close(close_ec);
    // The socket's final count, which /metrics can no longer show once the process exits.
    LogUdp()->info("{} socket drained and closed; kernel drops: {}",
                   kTransportNames[static_cast<size_t>(transport_)], kernel_drops());
  });
}

void DatagramReceiver::UpdateKernelDrops() {
  // SO_MEMINFO reads the socket's drop count directly, also when no datagram arrived after
  // the drops (the SO_RXQ_OVFL control message only comes with a datagram).
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof meminfo;
  if (getsockopt(socket_.native_handle(), SOL_SOCKET, SO_MEMINFO, meminfo, &len) == 0 &&
      len > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    // Relaxed: this thread is the only writer; readers want a recent value.
    kernel_drops_.store(meminfo[SK_MEMINFO_DROPS], std::memory_order_relaxed);
  }
}

uint64_t DatagramReceiver::kernel_drops() const {
  // Relaxed: a statistic.
  return kernel_drops_.load(std::memory_order_relaxed);
}

}  // namespace tally::daemon
