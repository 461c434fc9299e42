// FaultProxy: a TCP proxy on a loopback port, in front of one HTTP upstream, that injects
// the faults a forwarder must survive (issue 17's fleet test). It reads each request whole
// (headers and Content-Length body), then, by the fault drawn for it:
//   kPass          forwards it and relays the answer;
//   kDrop          closes the client's connection before forwarding anything;
//   kDelay         forwards it, then holds the answer for `delay` before relaying it (past
//                  the client's timeout, the client has given up: the upstream applied it);
//   kResetAfterSend forwards it, reads the answer, then resets the client's connection
//                  (RST) instead of relaying it: applied upstream, answer lost;
//   kRefuse        answers `refuse_status` itself, upstream untouched.
// With no upstream (port 0) or an upstream that refuses, the client's connection is closed.
// One thread per connection; thread-safe setters.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace tally::testing {

class FaultProxy {
 public:
  enum Fault { kPass, kDrop, kDelay, kResetAfterSend, kRefuse, kFaults };

  FaultProxy();
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  void SetUpstream(uint16_t port) { upstream_.store(port); }
  // Each request draws its fault with these weights (kFaults of them); default: all pass.
  void SetWeights(std::vector<unsigned> weights);
  // The next `n` requests get `fault` whatever the weights say.
  void ForceNext(Fault fault, unsigned n);
  void SetDelay(std::chrono::milliseconds d) { delay_ms_.store(d.count()); }
  void SetRefuseStatus(unsigned status) { refuse_status_.store(status); }
  // Requests that got each fault so far.
  uint64_t count(Fault f) const { return counts_[f].load(); }

 private:
  void Accept();
  void Serve(int client);
  Fault Draw();

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<uint16_t> upstream_{0};
  std::atomic<int64_t> delay_ms_{1000};
  std::atomic<unsigned> refuse_status_{400};
  std::atomic<bool> stop_{false};
  std::array<std::atomic<uint64_t>, kFaults> counts_{};
  std::mutex mu_;
  std::vector<unsigned> weights_{1, 0, 0, 0, 0};  // guarded by mu_
  std::mt19937 rng_{12345};                       // guarded by mu_
  Fault forced_ = kPass;                          // guarded by mu_
  unsigned forced_left_ = 0;                      // guarded by mu_
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // guarded by mu_
};

}  // namespace tally::testing
