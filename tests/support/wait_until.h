// WaitUntil: the one way a test waits for observable state (a metric, a total, a log line, a
// process exit). Header-only so every test target can use it without linking the support
// library.
#pragma once

#include <chrono>
#include <thread>

namespace tally::testing {

// Calls `reached` until it returns true or `timeout_ms` passes, sleeping `poll_ms` between
// calls; true when the state was reached (it is checked once more at the deadline). The sleep
// here only paces the polling: callers assert the result, so a state never reached fails the
// test instead of passing by luck.
template <typename Predicate>
bool WaitUntil(Predicate&& reached, int timeout_ms, int poll_ms = 10) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (reached()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

}  // namespace tally::testing
