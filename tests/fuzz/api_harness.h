// ApiHarness: a real daemon::Api (real Store in a temporary directory, real CounterTable and
// Flusher) driven without a socket, for the fuzz targets that reach the router.
//
// The store lives under /dev/shm when it exists (tmpfs: a synced write costs no disk flush)
// and is removed at exit. Tokens are unset, so every endpoint is reachable without auth.
//
// Thread safety: Call() from one thread at a time (libFuzzer's).
#pragma once

#include <string>

#include "daemon/http/server.h"

namespace tally::fuzz {

class ApiHarness {
 public:
  // The process-wide harness, built on first use.
  static ApiHarness& Get();

  // Runs `req` through Api::Handle and waits for its answer (aborts after 30 s without one:
  // a request that is never answered is a bug). Checks the answer's shape: a status tallyd
  // documents, a JSON body that parses when the content type is JSON, and {"error":string}
  // on every 4xx/5xx. Aborts with a message on a broken check.
  daemon::Response Call(daemon::Request req);

  // The answer tallyd's HTTP session gives a request it cannot parse, for `ec` from Beast's
  // parser, or 0 when the session just closes the connection.
  static unsigned StatusForParseError(const boost::beast::error_code& ec);

  const std::string& data_dir() const;
  // Aborts if the store's invariant does not hold (persistence::Store::Verify).
  void VerifyStore();

 private:
  ApiHarness();
  struct State;
  State* state_;  // leaked on purpose: libFuzzer exits without running destructors reliably
};

// Aborts with `what` when `ok` is false.
void Check(bool ok, const std::string& what);

}  // namespace tally::fuzz
