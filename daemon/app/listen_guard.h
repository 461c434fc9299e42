// Listen guard: makes sure tallyd is the only process on its addresses before it binds its
// per-thread SO_REUSEPORT sockets, and fixes the one port they share.
//
// SO_REUSEPORT lets every socket of the same user with the option set bind the same port,
// so a second tallyd (another --data-dir) would silently take half the traffic. ClaimPort
// binds a probe socket without SO_REUSEPORT first: that bind fails while any other socket
// holds the port. With port 0 the probe's port, chosen by the kernel, becomes the port of
// every thread's socket. The probe is closed before the real sockets bind; the window in
// between is a few system calls at start-up.
//
// Thread safety: call at start-up, before the I/O threads run.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "daemon/endpoint.h"

namespace tally::daemon {

// `type` is SOCK_DGRAM (UDP) or SOCK_STREAM (TCP). Returns the port to bind: ep.port, or
// the kernel's choice when ep.port is 0. An error says "address in use" when another socket
// holds the address; `option` (e.g. "--udp-listen") starts its message.
core::StatusOr<uint16_t> ClaimPort(const std::string& option, const Endpoint& ep, int type);

// OK when `path` does not exist or is a stale Unix socket nobody is bound to (safe to
// unlink); an "address in use" error when a process is receiving on it.
core::Status CheckUnixSocketFree(const std::string& path);

}  // namespace tally::daemon
