// floor: the bare minimum a UDP receiver can do on this machine. A recvmmsg loop that only
// counts lines (newline-separated, non-empty), with the same batch and buffer sizes as
// tallyd's receiver. It is the yardstick tallyd and the peers are compared against.
//
// usage: floor [--listen 127.0.0.1:8125] [--control 127.0.0.1:8129] [--rcvbuf 8388608]
//              [--threads 1]
// The control port answers every TCP connection with one JSON line and closes it:
//   {"lines":N,"datagrams":N,"drops":N,"rcvbuf":N}
// drops are the kernel's receive-queue drops (SO_RXQ_OVFL). On SIGTERM/SIGINT it prints the
// same line on stdout and exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kBatch = 32;           // tallyd's DatagramReceiver::kBatch
constexpr size_t kMaxDatagram = 65536;  // tallyd's DatagramReceiver::kMaxDatagram
constexpr size_t kControlSpace = CMSG_SPACE(sizeof(uint32_t));

std::atomic<bool> g_stop{false};  // set by the signal handler; relaxed reads suffice (a flag)

struct alignas(64) Counts {
  // One writer (its receive thread); relaxed, since readers only want a recent value.
  std::atomic<uint64_t> lines{0};
  std::atomic<uint64_t> datagrams{0};
  std::atomic<uint64_t> drops{0};
};
static_assert(alignof(Counts) == 64);

bool ParseHostPort(const std::string& text, sockaddr_in* addr) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  *addr = {};
  addr->sin_family = AF_INET;
  int port = std::atoi(text.c_str() + colon + 1);
  addr->sin_port = htons(static_cast<uint16_t>(port));
  return port > 0 && port < 65536 &&
         inet_pton(AF_INET, text.substr(0, colon).c_str(), &addr->sin_addr) == 1;
}

uint64_t CountLines(const char* p, size_t n) {
  uint64_t lines = 0;
  const char* end = p + n;
  while (p < end) {
    const char* nl = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = nl ? nl : end;
    lines += stop > p ? 1 : 0;
    p = stop + 1;
  }
  return lines;
}

void Receive(int fd, Counts* counts) {
  std::vector<char> buffers(kBatch * kMaxDatagram);
  std::vector<char> control(kBatch * kControlSpace);
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  uint64_t lines = 0;
  uint64_t datagrams = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (size_t i = 0; i < kBatch; ++i) {
      iovs[i] = {buffers.data() + i * kMaxDatagram, kMaxDatagram};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = control.data() + i * kControlSpace;
      msgs[i].msg_hdr.msg_controllen = kControlSpace;
    }
    // MSG_WAITFORONE: block for the first datagram only, then take what is queued.
    int n = recvmmsg(fd, msgs, kBatch, MSG_WAITFORONE, nullptr);
    if (n <= 0) {
      continue;  // EAGAIN from SO_RCVTIMEO (to notice g_stop), or EINTR
    }
    for (int i = 0; i < n; ++i) {
      lines += CountLines(static_cast<const char*>(iovs[i].iov_base), msgs[i].msg_len);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr;
           c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          uint32_t d = 0;
          std::memcpy(&d, CMSG_DATA(c), sizeof d);
          counts->drops.store(d, std::memory_order_relaxed);
        }
      }
    }
    datagrams += static_cast<uint64_t>(n);
    counts->lines.store(lines, std::memory_order_relaxed);
    counts->datagrams.store(datagrams, std::memory_order_relaxed);
  }
}

std::string Report(const std::vector<Counts>& all, int rcvbuf) {
  uint64_t lines = 0, datagrams = 0, drops = 0;
  for (const Counts& c : all) {
    lines += c.lines.load(std::memory_order_relaxed);
    datagrams += c.datagrams.load(std::memory_order_relaxed);
    drops += c.drops.load(std::memory_order_relaxed);
  }
  return "{\"lines\":" + std::to_string(lines) + ",\"datagrams\":" + std::to_string(datagrams) +
         ",\"drops\":" + std::to_string(drops) + ",\"rcvbuf\":" + std::to_string(rcvbuf) + "}\n";
}

int Fail(const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:8125";
  std::string control = "127.0.0.1:8129";
  int rcvbuf = 8 << 20;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--listen") {
      listen = argv[i + 1];
    } else if (k == "--control") {
      control = argv[i + 1];
    } else if (k == "--rcvbuf") {
      rcvbuf = std::atoi(argv[i + 1]);
    } else if (k == "--threads") {
      threads = std::max(1, std::min(64, std::atoi(argv[i + 1])));
    } else {
      fprintf(stderr, "floor: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  sockaddr_in udp_addr{}, ctl_addr{};
  if (!ParseHostPort(listen, &udp_addr) || !ParseHostPort(control, &ctl_addr)) {
    fprintf(stderr, "floor: --listen and --control take IPv4:PORT\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop.store(true, std::memory_order_relaxed); };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  std::vector<int> fds;
  int granted = 0;
  for (int t = 0; t < threads; ++t) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    timeval tv{0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socklen_t len = sizeof granted;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &len);
    if (bind(fd, reinterpret_cast<sockaddr*>(&udp_addr), sizeof udp_addr) != 0) {
      return Fail("bind udp");
    }
    fds.push_back(fd);
  }
  int ctl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ctl, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ctl, reinterpret_cast<sockaddr*>(&ctl_addr), sizeof ctl_addr) != 0 ||
      ::listen(ctl, 16) != 0) {
    return Fail("bind control");
  }
  fprintf(stderr, "floor: udp %s (%d thread(s), SO_RCVBUF %d), control %s\n", listen.c_str(),
          threads, granted, control.c_str());

  std::vector<Counts> counts(fds.size());
  std::vector<std::thread> receivers;
  for (size_t t = 0; t < fds.size(); ++t) {
    receivers.emplace_back(Receive, fds[t], &counts[t]);
  }
  while (!g_stop.load(std::memory_order_relaxed)) {
    pollfd p{ctl, POLLIN, 0};
    if (poll(&p, 1, 200) == 1) {
      int c = accept4(ctl, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        std::string line = Report(counts, granted);
        (void)!write(c, line.data(), line.size());
        close(c);
      }
    }
  }
  for (std::thread& t : receivers) {
    t.join();
  }
  fputs(Report(counts, granted).c_str(), stdout);
  return 0;
}
