// tallyd: a per-API-key request-outcome accumulator. See README.md.
#include <sys/stat.h>

#include <exception>
#include <iostream>

#include "daemon/app/config.h"
#include "daemon/app/daemon.h"
#include "daemon/log.h"
#include "daemon/ops/signals.h"

int main(int argc, char** argv) {
  using namespace tally::daemon;
  ParsedArgs args = ParseArgs(argc, argv);
  if (!args.config) {
    (args.exit_code == 0 ? std::cout : std::cerr) << args.output << "\n";
    return args.exit_code;
  }
  InitLogging(args.config->log_level);
  umask(027);      // data files readable by the owner and group only, never by others
  BlockSignals();  // before any thread starts: every thread inherits the mask
  Daemon daemon(std::move(*args.config));
  // Start reports failures as a Status; an exception escaping it (an allocation failing
  // deep in a library) is one line and exit 1 as well, never an abort.
  tally::core::Status started = tally::core::Status::Ok();
  try {
    started = daemon.Start();
  } catch (const std::exception& e) {
    started = tally::core::Status::IoError(e.what());
  }
  if (!started.ok()) {
    LogMain()->error("cannot start: {}", started.message());
    return 1;
  }
  int sig = WaitForStopSignal([&daemon] { daemon.FlushNow(); });
  LogMain()->info("received {}", SignalName(sig));
  return daemon.Stop();
}
