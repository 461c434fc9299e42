// Config: every option of tallyd, parsed in one place (command line, environment, --config
// file), validated into a Status, and logged once with secrets redacted.
//
// Precedence, for every option: command line > environment > file > default. The
// environment holds $TALLYD_ADMIN_TOKEN, $TALLYD_INTERNAL_TOKEN and $STATE_DIRECTORY (the
// data directory). A token and a token file for the same role, from any two places, is an
// error: which one is meant cannot be guessed.
//
// Numeric options are canonical decimals within the range in NumericOptions(); a sign, a
// non-digit or a value outside the range is exit 2 with one line naming the option and its
// range. Token files must be regular files of at most kMaxTokenFileBytes. The metric prefix
// must be a valid statsd name (ValidMetricPrefix). No error line ever echoes a value from a
// configuration file line that could hold a secret: it names the file, the line number and
// the option only.
#pragma once

#include <boost/program_options/value_semantic.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "daemon/app/config_bans.h"
#include "daemon/app/config_forward.h"
#include "daemon/app/config_mapping.h"
#include "daemon/app/config_windows.h"
#include "daemon/endpoint.h"
#include "daemon/upstream/pg_conninfo.h"

namespace tally::daemon {

struct Config {
  std::string data_dir = "./tallyd-data";
  Endpoint udp_listen{"127.0.0.1", 8125};
  Endpoint http_listen{"127.0.0.1", 8126};
  std::string unix_socket;  // empty: off
  uint32_t flush_interval_ms = 1000;
  uint64_t udp_rcvbuf = 8 * 1024 * 1024;
  uint32_t io_threads = 0;  // 0: the number of cores
  // Nice value of every thread but the I/O threads (daemon/threads.h); RocksDB's background
  // threads go to 19 whenever it is above 0. 0: all threads at the process's priority.
  uint32_t background_nice = 10;
  uint64_t max_keys = 1'000'000;
  uint64_t max_body_bytes = 4 * 1024 * 1024;
  uint32_t max_connections = 10'000;
  std::string metric_prefix = "apikey";
  std::string log_level = "info";
  std::string admin_token;
  std::string internal_token;
  // What a damaged write-ahead log does at start: "strict" (refuse to start, exit 1) or
  // "point-in-time" (recover to the last good record, log an error, report it in /metrics).
  std::string wal_recovery = "strict";
  // POST /admin/checkpoint targets must lie under this directory (symlinks resolved).
  // Empty: anywhere outside the data dir. Under systemd: the tallyd-checkpoints entry of
  // $STATE_DIRECTORY unless given.
  std::string checkpoint_root;
  MappingOptions mapping;  // --mapping-file, --mapping-preset (config_mapping.h)
  WindowsConfig windows;   // --retention-* (config_windows.h)
  BanConfig bans;          // --ban-* (config_bans.h)
  // Forwarding committed flushes upstream, and the outbox (config_forward.h).
  ForwardConfig forward;
  // The HTTP API over TLS (config_forward.h).
  HttpTlsConfig http_tls;
  // The PostgreSQL sink (daemon/app/config_postgres.h); url empty: none.
  PgSinkOptions postgres;

  // One line per option, tokens shown as "(set)" or "(unset)".
  std::string Redacted() const;
};

// The range of one numeric option (both ends included), and where it lives in the Config.
struct NumericRange {
  const char* name;  // without "--"
  uint64_t min;
  uint64_t max;
  uint64_t (*get)(const Config& config);                // its default, as text for --help
  void (*set)(Config& config, uint64_t checked_value);  // a value within min..max
};
// Every numeric option with its range, in --help order: the one table ParseArgs reads.
const std::vector<NumericRange>& NumericOptions();

// The numeric options' values by name, as read: text until checked against their range (a
// program_options unsigned would wrap "-1" around). ParseArgs presets each to its default.
using NumericText = std::map<std::string, std::string>;
// The value of the numeric option `name` in an options_description (config_*.cc describe
// their own): reads into text[name], whose preset is shown as the default in --help.
boost::program_options::typed_value<std::string>* NumericValue(NumericText& text,
                                                               const std::string& name);

inline constexpr size_t kMaxMetricPrefixBytes = 64;

// A statsd name: 1..64 bytes of [A-Za-z0-9_-] in dot-separated non-empty segments (no
// leading, trailing or doubled dot).
bool ValidMetricPrefix(const std::string& prefix);

// What ParseArgs decided: run with a config, or exit now with a code after printing `output`.
struct ParsedArgs {
  std::optional<Config> config;
  int exit_code = 0;
  std::string output;  // --help / --version text (stdout), or the one-line error (stderr)
};

// Parses argv, the file named by --config, and the TALLYD_*_TOKEN environment variables.
// Errors give exit code 2 and one line naming the option and the problem.
ParsedArgs ParseArgs(int argc, const char* const* argv);

}  // namespace tally::daemon
