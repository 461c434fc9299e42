// Socket activation: the listening sockets systemd (tallyd.socket) hands to tallyd.
//
// Protocol (sd_listen_fds(3)): descriptors 3 .. 3+$LISTEN_FDS-1, meant for us when
// $LISTEN_PID is our pid, named by the colon-separated $LISTEN_FDNAMES (FileDescriptorName=).
// A descriptor named "udp" or "http" must be of that kind; any other name (systemd's default
// is the socket unit's name) is sorted by its socket type: a bound AF_INET/AF_INET6 datagram
// socket is UDP, a listening stream socket is HTTP. Inherited Unix datagram sockets are
// refused (use --unix-socket): the receiver's orderly stop shuts a Unix socket down for
// reading, which cannot be undone for the next instance.
//
// An inherited socket replaces the listener tallyd would otherwise bind for that transport
// (--udp-listen, --http-listen are then not bound). Because the service manager keeps its
// own copy open, datagrams and connections queue in the kernel while tallyd restarts and are
// read by the next instance. The receivers of an inherited UDP socket skip their stop fence
// (DatagramReceiver::SetInherited): they drain what is queued and close their dup, and the
// socket keeps taking datagrams from every sender for the next instance. At start an
// inherited UDP socket is disconnected (DisconnectUdp) in case an older instance left it
// fenced.
//
// Per-thread sockets: when tallyd binds its own UDP and HTTP sockets, each I/O thread gets a
// socket of its own (SO_REUSEPORT) and the kernel spreads the load. An inherited socket is a
// single socket, so every I/O thread gets a dup() of it and all of them wait on the same
// kernel queue: readiness wakes every thread, the first recvmmsg/accept wins, the others see
// EAGAIN. Throughput per socket is then bounded by one queue; bind tallyd's own sockets when
// that matters more than keeping datagrams across restarts.
//
// Thread safety: call once, at startup, before any thread starts.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tally::daemon {

struct InheritedSockets {
  std::vector<int> udp;   // bound UDP sockets (AF_INET / AF_INET6, SOCK_DGRAM)
  std::vector<int> http;  // listening TCP sockets
  bool empty() const { return udp.empty() && http.empty(); }
};

// Takes the descriptors passed by the service manager, marks them close-on-exec and
// non-blocking, and unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES. Empty when tallyd was
// not socket-activated (no LISTEN_FDS, or LISTEN_PID names another process). An error names
// the first descriptor that is not a usable socket or whose name contradicts its type.
core::StatusOr<InheritedSockets> TakeInheritedSockets();

// The classification step alone: sorts `count` descriptors starting at `first_fd`, named by
// `names` (colon-separated, may be shorter or empty). Used by TakeInheritedSockets and tests.
core::StatusOr<InheritedSockets> ClassifySockets(int first_fd, int count, std::string_view names);

// True when `fd` is bound to a loopback address (127.0.0.0/8, ::1 or v4-mapped loopback).
bool BoundToLoopback(int fd);

// Undoes a connect() on a UDP socket (connect to AF_UNSPEC): it takes datagrams from every
// sender again. It keeps its port when the port was bound explicitly (as systemd binds);
// an ephemeral port would be given up.
void DisconnectUdp(int fd);

// Prepares an inherited UDP socket: enables SO_RXQ_OVFL (kernel drop counts) and raises its
// receive buffer to `rcvbuf` if it is smaller, never lowering what the socket unit set
// (ReceiveBuffer=). *granted receives the resulting SO_RCVBUF.
core::Status PrepareInheritedUdp(int fd, uint64_t rcvbuf, uint64_t* granted);

}  // namespace tally::daemon
