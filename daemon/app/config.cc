#include "daemon/app/config.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include "daemon/app/config_file.h"
#include "daemon/app/config_postgres.h"
#include "daemon/app/tokens.h"

namespace tally::daemon {
namespace po = boost::program_options;
using core::Status;
using core::StatusOr;

#ifndef TALLYD_VERSION
#define TALLYD_VERSION "0.0.0"
#endif

std::string Config::Redacted() const {
  std::ostringstream out;
  out << "data-dir=" << data_dir << " udp-listen=" << udp_listen.ToString()
      << " http-listen=" << http_listen.ToString()
      << " unix-socket=" << (unix_socket.empty() ? "off" : unix_socket)
      << " flush-interval-ms=" << flush_interval_ms << " udp-rcvbuf=" << udp_rcvbuf
      << " io-threads=" << io_threads << " background-nice=" << background_nice
      << " max-keys=" << max_keys << " max-body-bytes=" << max_body_bytes
      << " max-connections=" << max_connections << " metric-prefix=" << metric_prefix
      << " log-level=" << log_level
      << " admin-token=" << (admin_token.empty() ? "(unset)" : "(set)")
      << " internal-token=" << (internal_token.empty() ? "(unset)" : "(set)")
      << " wal-recovery=" << wal_recovery
      << " checkpoint-root=" << (checkpoint_root.empty() ? "(any)" : checkpoint_root) << " "
      << mapping.Redacted() << " retention-minute=" << windows.retention_minute
      << " retention-hour=" << windows.retention_hour << " retention-day=" << windows.retention_day
      << " " << BanOptionsText(bans) << RedactedForward(forward)
      << " postgres-url=" << (postgres.url.empty() ? "(unset)" : "(set)");
  return out.str();
}

namespace {

// The table entry of a numeric option stored in Config::*Member.
template <auto Member>
NumericRange Numeric(const char* name, uint64_t min, uint64_t max) {
  using Field = std::remove_reference_t<decltype(std::declval<Config&>().*Member)>;
  return {name, min, max, [](const Config& c) -> uint64_t { return c.*Member; },
          [](Config& c, uint64_t v) { c.*Member = static_cast<Field>(v); }};
}

}  // namespace

const std::vector<NumericRange>& NumericOptions() {
  static const std::vector<NumericRange> ranges = [] {
    std::vector<NumericRange> r = {
        Numeric<&Config::flush_interval_ms>("flush-interval-ms", 10, 3'600'000),
        Numeric<&Config::udp_rcvbuf>("udp-rcvbuf", 4096, uint64_t{1} << 30),
        Numeric<&Config::io_threads>("io-threads", 0, 256),
        Numeric<&Config::background_nice>("background-nice", 0, 19),
        Numeric<&Config::max_keys>("max-keys", 1, 1'000'000'000),
        Numeric<&Config::max_body_bytes>("max-body-bytes", 1024, uint64_t{1} << 30),
        Numeric<&Config::max_connections>("max-connections", 1, 1'000'000),
    };
    AppendForwardNumericOptions(&r);
    AppendBanNumericOptions(&r);
    return r;
  }();
  return ranges;
}

po::typed_value<std::string>* NumericValue(NumericText& text, const std::string& name) {
  std::string& value = text[name];
  return po::value(&value)->default_value(value);
}

bool ValidMetricPrefix(const std::string& prefix) {
  if (prefix.empty() || prefix.size() > kMaxMetricPrefixBytes || prefix.front() == '.' ||
      prefix.back() == '.' || prefix.find("..") != std::string::npos) {
    return false;
  }
  for (char c : prefix) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

namespace {

// "--NAME: must be an integer within MIN..MAX", or the value.
StatusOr<uint64_t> ParseRanged(const NumericRange& range, const std::string& text) {
  bool digits = !text.empty() && text.size() <= 20 &&
                text.find_first_not_of("0123456789") == std::string::npos;
  uint64_t value = 0;
  for (char c : digits ? text : std::string()) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - d) / 10) {
      digits = false;
      break;
    }
    value = value * 10 + d;
  }
  if (!digits || value < range.min || value > range.max) {
    return Status::InvalidArgument(std::string("--") + range.name + ": must be an integer within " +
                                   std::to_string(range.min) + ".." + std::to_string(range.max));
  }
  return value;
}

// The options as read, before they are checked into a Config: endpoints, numbers and token
// files are text until then.
struct RawOptions {
  std::string udp;
  std::string http;
  std::string admin_token_file;
  std::string internal_token_file;
  std::string config_file;
  NumericText numeric;
  BanRawOptions bans;
  RawPostgresOptions postgres;
};

// The option table of --help, reading into `c` and `raw`.
void DescribeOptions(po::options_description& opts, Config& c, RawOptions& raw) {
  raw.udp = c.udp_listen.ToString();
  raw.http = c.http_listen.ToString();
  for (const NumericRange& r : NumericOptions()) {
    raw.numeric[r.name] = std::to_string(r.get(c));
  }
  auto numeric = [&raw](const char* name) { return NumericValue(raw.numeric, name); };
  // clang-format off
  opts.add_options()
      ("help", "print this help and exit")
      ("version", "print the version and exit")
      ("config", po::value(&raw.config_file),
       "INI file of `option = value` lines, same names; the command line and the "
       "environment win over it; default: none")
      ("data-dir", po::value(&c.data_dir)->default_value(c.data_dir),
       "RocksDB directory (default under systemd: $STATE_DIRECTORY)")
      ("udp-listen", po::value(&raw.udp)->default_value(raw.udp), "UDP HOST:PORT, or off")
      ("http-listen", po::value(&raw.http)->default_value(raw.http), "HTTP HOST:PORT, or off")
      ("unix-socket", po::value(&c.unix_socket)->default_value("", "off"),
       "Unix datagram socket PATH (mode 0660), or off")
      ("flush-interval-ms", numeric("flush-interval-ms"),
       "flush period in milliseconds (10..3600000)")
      ("udp-rcvbuf", numeric("udp-rcvbuf"),
       "SO_RCVBUF bytes per UDP socket (4096..1073741824)")
      ("io-threads", numeric("io-threads"),
       "I/O threads; 0: the number of cores (0..256)")
      ("background-nice", numeric("background-nice"),
       "nice value of the threads that are not I/O threads (flusher, API, RocksDB at 19); "
       "0: as the I/O threads (0..19)")
      ("max-keys", numeric("max-keys"),
       "most distinct API keys counted in memory (1..1000000000)")
      ("max-body-bytes", numeric("max-body-bytes"),
       "largest HTTP request body, 413 past it (1024..1073741824)")
      ("max-connections", numeric("max-connections"),
       "most concurrent HTTP connections (1..1000000)")
      ("metric-prefix", po::value(&c.metric_prefix)->default_value(c.metric_prefix),
       "statsd metric name prefix: [A-Za-z0-9_-] segments joined by '.', at most 64 bytes")
      ("log-level", po::value(&c.log_level)->default_value(c.log_level),
       "error, warn, info or debug")
      ("admin-token", po::value(&c.admin_token),
       "bearer token for /admin; default: none, or $TALLYD_ADMIN_TOKEN")
      ("admin-token-file", po::value(&raw.admin_token_file),
       "file holding the admin token (a regular file of at most 4096 bytes)")
      ("internal-token", po::value(&c.internal_token),
       "X-Internal-Token for /internal and /v1/ingest; default: none, or "
       "$TALLYD_INTERNAL_TOKEN")
      ("internal-token-file", po::value(&raw.internal_token_file),
       "file holding the internal token (a regular file of at most 4096 bytes)")
      ("wal-recovery", po::value(&c.wal_recovery)->default_value(c.wal_recovery),
       "a damaged write-ahead log at start: strict (refuse to start) or point-in-time "
       "(recover to the last good record, losing what follows)")
      ("checkpoint-root", po::value(&c.checkpoint_root),
       "directory that POST /admin/checkpoint targets must lie under; default: anywhere "
       "outside the data dir; under systemd the tallyd-checkpoints state directory");
  // clang-format on
  DescribeForwardNumericOptions(opts, raw.numeric);
  DescribeMappingOptions(opts, c.mapping);
  DescribeWindowsOptions(opts, c.windows);
  DescribeBanOptions(opts, c.bans, raw.bans, raw.numeric);
  DescribeForwardOptions(opts, c.forward);
  DescribeHttpTlsOptions(opts, c.http_tls);
  DescribePostgresOptions(opts, c.postgres, raw.postgres);
}

// Where each option came from: the command line, the --config file (with its line).
struct Sources {
  std::vector<std::string> on_command_line;
  std::vector<std::string> in_file;
  std::vector<int> file_lines;  // beside in_file
  std::string config_path;
  bool checkpoint_root_given = false;

  static bool Has(const std::vector<std::string>& where, const std::string& name) {
    return std::find(where.begin(), where.end(), name) != where.end();
  }
  bool OnCommandLine(const std::string& name) const { return Has(on_command_line, name); }
  bool InFile(const std::string& name) const { return Has(in_file, name); }
  // An error about an option's value: "--config FILE line N: " first when the value came
  // from the file, so the line can be found (the value itself is not repeated).
  Status ValueError(const std::string& name, const std::string& message) const {
    auto it = std::find(in_file.begin(), in_file.end(), name);
    if (OnCommandLine(name) || it == in_file.end()) {
      return Status::InvalidArgument(message);
    }
    return Status::InvalidArgument(
        "--config " + config_path + " line " +
        std::to_string(file_lines[static_cast<size_t>(it - in_file.begin())]) + ": " + message);
  }
};

// "unexpected argument 'X': ..." naming X when it is short visible ASCII (it may be a
// mistyped token's value, so never more).
std::string UnexpectedArgument(const std::vector<std::string>& tokens) {
  std::string arg = tokens.empty() ? std::string() : tokens.front();
  bool show = !arg.empty() && arg.size() <= 64 &&
              std::all_of(arg.begin(), arg.end(), [](char ch) { return ch > ' ' && ch < 0x7f; });
  return "unexpected argument" + (show ? " '" + arg + "'" : std::string()) +
         ": tallyd takes options only (--help lists them)";
}

// Reads the command line, then the --config file under it (the command line wins). Sets
// result->output and returns false for --help and --version; InvalidArgument for a bad one.
StatusOr<bool> ReadSources(int argc, const char* const* argv, po::options_description& opts,
                           Sources* sources, ParsedArgs* result) {
  po::variables_map vm;
  try {
    // No guessing: "--flush" is not --flush-interval-ms. No positional arguments either.
    po::parsed_options command_line =
        po::command_line_parser(argc, argv)
            .options(opts)
            .style(po::command_line_style::unix_style & ~po::command_line_style::allow_guessing)
            .run();
    for (const po::option& o : command_line.options) {
      if (o.string_key.empty() || o.position_key >= 0) {
        return Status::InvalidArgument(UnexpectedArgument(o.original_tokens));
      }
      sources->on_command_line.push_back(o.string_key);
    }
    po::store(command_line, vm);
    if (vm.count("help")) {
      std::ostringstream out;
      out << "usage: tallyd [options]\n" << opts;
      result->output = out.str();
      return false;
    }
    if (vm.count("version")) {
      result->output = std::string("tallyd ") + TALLYD_VERSION;
      return false;
    }
    if (vm.count("print-mapping-preset")) {
      StatusOr<std::string> preset =
          PrintMappingPreset(vm["print-mapping-preset"].as<std::string>());
      if (!preset.ok()) {
        return preset.status();
      }
      result->output = std::move(preset).value();
      return false;
    }
    if (vm.count("config")) {
      sources->config_path = vm["config"].as<std::string>();
      StatusOr<std::vector<FileOption>> file = ReadConfigFile(sources->config_path, opts);
      if (!file.ok()) {
        return file.status();
      }
      po::parsed_options parsed(&opts);
      for (const FileOption& o : *file) {
        sources->in_file.push_back(o.name);
        sources->file_lines.push_back(o.line);
        parsed.options.emplace_back(o.name, std::vector<std::string>{o.value});
      }
      // Options already stored from the command line keep their values: it wins.
      po::store(parsed, vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return Status::InvalidArgument(e.what());
  }
  sources->checkpoint_root_given = vm.count("checkpoint-root") != 0;
  return true;
}

// Under systemd, StateDirectory= sets $STATE_DIRECTORY (colon-separated when it names
// several): its first entry is the data directory unless --data-dir is on the command line,
// and its entry named tallyd-checkpoints (the unit's) the checkpoint root unless
// --checkpoint-root was given.
void ApplyStateDirectory(const Sources& sources, Config& c) {
  const char* state = std::getenv("STATE_DIRECTORY");
  if (state == nullptr) {
    return;
  }
  if (!sources.OnCommandLine("data-dir") && *state != 0) {
    std::string dirs = state;
    c.data_dir = dirs.substr(0, dirs.find(':'));
  }
  if (!sources.checkpoint_root_given) {
    std::istringstream dirs(state);
    for (std::string d; std::getline(dirs, d, ':');) {
      if (std::filesystem::path(d).filename() == "tallyd-checkpoints") {
        c.checkpoint_root = d;
      }
    }
  }
}

// Endpoints, numbers, the metric prefix and the log level, checked into `c`.
Status CheckValues(const RawOptions& raw, const Sources& sources, Config& c) {
  if (c.wal_recovery != "strict" && c.wal_recovery != "point-in-time") {
    return Status::InvalidArgument("--wal-recovery: must be strict or point-in-time");
  }
  if (sources.checkpoint_root_given) {
    std::error_code ec;
    if (c.checkpoint_root.empty() || c.checkpoint_root.front() != '/' ||
        !std::filesystem::is_directory(c.checkpoint_root, ec)) {
      return Status::InvalidArgument(
          "--checkpoint-root: must be the absolute path of an existing directory");
    }
  }
  for (auto [name, text, target] : {std::tuple{"udp-listen", &raw.udp, &c.udp_listen},
                                    std::tuple{"http-listen", &raw.http, &c.http_listen}}) {
    StatusOr<Endpoint> ep = ParseEndpoint(*text);
    if (!ep.ok()) {
      return sources.ValueError(name, std::string("--") + name + ": " + ep.status().message());
    }
    *target = *ep;
  }
  if (c.unix_socket == "off") {
    c.unix_socket.clear();
  }
  for (const NumericRange& range : NumericOptions()) {
    StatusOr<uint64_t> value = ParseRanged(range, raw.numeric.at(range.name));
    if (!value.ok()) {
      return sources.ValueError(range.name, value.status().message());
    }
    range.set(c, *value);
  }
  if (!ValidMetricPrefix(c.metric_prefix)) {
    return sources.ValueError(
        "metric-prefix",
        "--metric-prefix: must be 1 to 64 bytes of [A-Za-z0-9_-] segments joined by single "
        "dots");
  }
  if (c.log_level != "error" && c.log_level != "warn" && c.log_level != "info" &&
      c.log_level != "debug") {
    return sources.ValueError("log-level", "--log-level: must be error, warn, info or debug");
  }
  if (Status s = ValidateWindowsOptions(c.windows); !s.ok()) {
    return s;
  }
  if (c.io_threads == 0) {
    unsigned n = std::thread::hardware_concurrency();
    c.io_threads = n == 0 ? 1 : n;
  }
  return Status::Ok();
}

// Per role: one source. A token and a token file given anywhere (command line, environment,
// config file) is an error; otherwise command line > environment > file. The token used is
// checked (CheckToken): an empty $TALLYD_*_TOKEN is exit 2 like an empty --*-token.
Status ReadTokens(const RawOptions& raw, const Sources& sources, Config& c) {
  for (auto [role, file, env, target] :
       {std::tuple{std::string("admin-token"), &raw.admin_token_file, "TALLYD_ADMIN_TOKEN",
                   &c.admin_token},
        std::tuple{std::string("internal-token"), &raw.internal_token_file, "TALLYD_INTERNAL_TOKEN",
                   &c.internal_token}}) {
    std::string file_option = role + "-file";
    const char* env_value = std::getenv(env);
    bool from_env = env_value != nullptr;
    bool token_cli = sources.OnCommandLine(role);
    bool token_file = sources.InFile(role);
    bool any_file = sources.OnCommandLine(file_option) || sources.InFile(file_option);
    if ((token_cli || from_env || token_file) && any_file) {
      return Status::InvalidArgument("--" + role + " and --" + file_option +
                                     " are both given (command line, $" + env +
                                     " or the config file): give one");
    }
    StatusOr<std::string> token = std::string();
    if (any_file) {
      token = ReadTokenFile(file_option, *file);
      if (!token.ok()) {
        return sources.ValueError(file_option, token.status().message());
      }
    } else if (token_cli || (token_file && !from_env)) {
      token = CheckToken("--" + role, *target);
      if (!token.ok()) {
        return sources.ValueError(role, token.status().message());
      }
    } else if (from_env) {
      token = CheckToken(std::string("$") + env, env_value);
      if (!token.ok()) {
        return token.status();
      }
    }
    *target = *token;
  }
  return Status::Ok();
}

}  // namespace

ParsedArgs ParseArgs(int argc, const char* const* argv) {
  ParsedArgs result;
  auto fail = [&result](const Status& s) {
    result.exit_code = 2;
    result.output = "tallyd: " + s.message();
    return result;
  };
  Config c;
  RawOptions raw;
  po::options_description opts("tallyd options");
  DescribeOptions(opts, c, raw);
  Sources sources;
  StatusOr<bool> run = ReadSources(argc, argv, opts, &sources, &result);
  if (!run.ok()) {
    return fail(run.status());
  }
  if (!*run) {
    return result;  // --help, --version
  }
  ApplyStateDirectory(sources, c);
  if (Status s = CheckValues(raw, sources, c); !s.ok()) {
    return fail(s);
  }
  if (Status s = ReadTokens(raw, sources, c); !s.ok()) {
    return fail(s);
  }
  if (Status s = ValidateMappingOptions(c.mapping); !s.ok()) {
    return fail(s);
  }
  if (Status s = ValidateBanOptions(raw.bans, c.bans); !s.ok()) {
    return fail(s);
  }
  if (Status s = ValidateForward(c.forward); !s.ok()) {
    return fail(s);
  }
  if (Status s = ValidateHttpTls(c.http_tls); !s.ok()) {
    return fail(s);
  }
  for (auto [name, given] :
       {std::pair{"postgres-password-file", &raw.postgres.password_file_given},
        std::pair{"postgres-create-schema", &raw.postgres.create_schema_given}}) {
    *given = sources.OnCommandLine(name) || sources.InFile(name);
  }
  if (Status s = ValidatePostgresOptions(raw.postgres, c.postgres); !s.ok()) {
    return fail(s);
  }
  bool http_public = c.http_listen.enabled() && !IsLoopback(c.http_listen.host);
  if (http_public && (c.admin_token.empty() || c.internal_token.empty())) {
    return fail(Status::InvalidArgument(
        "--http-listen: a non-loopback address needs both --admin-token and "
        "--internal-token"));
  }
  result.config = std::move(c);
  return result;
}

}  // namespace tally::daemon
