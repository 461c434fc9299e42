#include "daemon/config.h"

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace tally::daemon {
namespace po = boost::program_options;
using core::Status;
using core::StatusOr;

#ifndef TALLYD_VERSION
#define TALLYD_VERSION "0.0.0"
#endif

std::string Endpoint::ToString() const {
  if (!enabled()) {
    return "off";
  }
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

StatusOr<Endpoint> ParseEndpoint(const std::string& text) {
  if (text.empty() || text == "off") {
    return Endpoint{};
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return Status::InvalidArgument("expected HOST:PORT or off, got '" + text + "'");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument("'" + host + "' is not an IP address");
  }
  std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("bad port '" + port_text + "'");
  }
  unsigned long port = std::stoul(port_text);
  if (port > 65535) {
    return Status::InvalidArgument("port " + port_text + " is out of range");
  }
  return Endpoint{host, static_cast<uint16_t>(port)};
}

bool IsLoopback(const std::string& host) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

std::string Config::Redacted() const {
  std::ostringstream out;
  out << "data-dir=" << data_dir << " udp-listen=" << udp_listen.ToString()
      << " http-listen=" << http_listen.ToString()
      << " unix-socket=" << (unix_socket.empty() ? "off" : unix_socket)
      << " flush-interval-ms=" << flush_interval_ms << " udp-rcvbuf=" << udp_rcvbuf
      << " io-threads=" << io_threads << " max-keys=" << max_keys
      << " max-body-bytes=" << max_body_bytes << " max-connections=" << max_connections
      << " metric-prefix=" << metric_prefix << " log-level=" << log_level
      << " admin-token=" << (admin_token.empty() ? "(unset)" : "(set)")
      << " internal-token=" << (internal_token.empty() ? "(unset)" : "(set)")
      << " wal-recovery=" << wal_recovery
      << " checkpoint-root=" << (checkpoint_root.empty() ? "(any)" : checkpoint_root);
  return out.str();
}

namespace {

StatusOr<std::string> ReadTokenFile(const std::string& option, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument("--" + option + ": cannot read '" + path + "'");
  }
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) {
    return Status::InvalidArgument("--" + option + ": '" + path + "' holds no token");
  }
  return token;
}

}  // namespace

ParsedArgs ParseArgs(int argc, const char* const* argv) {
  ParsedArgs result;
  Config c;
  std::string udp = c.udp_listen.ToString();
  std::string http = c.http_listen.ToString();
  std::string admin_token_file;
  std::string internal_token_file;
  std::string config_file;

  po::options_description opts("tallyd options");
  // clang-format off
  opts.add_options()
      ("help", "print this help and exit")
      ("version", "print the version and exit")
      ("config", po::value(&config_file),
       "INI file of `option = value` lines, same names (command line wins); default: none")
      ("data-dir", po::value(&c.data_dir)->default_value(c.data_dir),
       "RocksDB directory (default under systemd: $STATE_DIRECTORY)")
      ("udp-listen", po::value(&udp)->default_value(udp), "UDP HOST:PORT, or off")
      ("http-listen", po::value(&http)->default_value(http), "HTTP HOST:PORT, or off")
      ("unix-socket", po::value(&c.unix_socket)->default_value("", "off"),
       "Unix datagram socket PATH (mode 0660), or off")
      ("flush-interval-ms", po::value(&c.flush_interval_ms)->default_value(c.flush_interval_ms),
       "flush period in milliseconds (10..3600000)")
      ("udp-rcvbuf", po::value(&c.udp_rcvbuf)->default_value(c.udp_rcvbuf),
       "SO_RCVBUF bytes per UDP socket")
      ("io-threads", po::value(&c.io_threads)->default_value(0),
       "I/O threads; 0: the number of cores")
      ("max-keys", po::value(&c.max_keys)->default_value(c.max_keys),
       "most distinct API keys counted in memory")
      ("max-body-bytes", po::value(&c.max_body_bytes)->default_value(c.max_body_bytes),
       "largest HTTP request body (413 past it)")
      ("max-connections", po::value(&c.max_connections)->default_value(c.max_connections),
       "most concurrent HTTP connections")
      ("metric-prefix", po::value(&c.metric_prefix)->default_value(c.metric_prefix),
       "statsd metric name prefix")
      ("log-level", po::value(&c.log_level)->default_value(c.log_level),
       "error, warn, info or debug")
      ("admin-token", po::value(&c.admin_token),
       "bearer token for /admin; default: none, or $TALLYD_ADMIN_TOKEN")
      ("admin-token-file", po::value(&admin_token_file), "file holding the admin token")
      ("internal-token", po::value(&c.internal_token),
       "X-Internal-Token for /internal and /v1/ingest; default: none, or "
       "$TALLYD_INTERNAL_TOKEN")
      ("internal-token-file", po::value(&internal_token_file),
       "file holding the internal token")
      ("wal-recovery", po::value(&c.wal_recovery)->default_value(c.wal_recovery),
       "a damaged write-ahead log at start: strict (refuse to start) or point-in-time "
       "(recover to the last good record, losing what follows)")
      ("checkpoint-root", po::value(&c.checkpoint_root),
       "directory that POST /admin/checkpoint targets must lie under; default: anywhere "
       "outside the data dir; under systemd the tallyd-checkpoints state directory");
  // clang-format on

  auto fail = [&](const std::string& line) {
    result.exit_code = 2;
    result.output = "tallyd: " + line;
    return result;
  };

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) {
      std::ostringstream out;
      out << "usage: tallyd [options]\n" << opts;
      result.output = out.str();
      return result;
    }
    if (vm.count("version")) {
      result.output = std::string("tallyd ") + TALLYD_VERSION;
      return result;
    }
    if (vm.count("config")) {
      std::string path = vm["config"].as<std::string>();
      std::error_code ec;
      if (std::filesystem::is_directory(path, ec)) {
        return fail("--config: '" + path + "' is a directory");
      }
      std::ifstream in(path);
      if (!in) {
        return fail("--config: cannot read '" + path + "': " + std::strerror(errno));
      }
      try {
        // Options already stored from the command line keep their values: it wins.
        po::store(po::parse_config_file(in, opts), vm);
      } catch (const po::error& e) {
        return fail("--config " + path + ": " + e.what());
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return fail(e.what());
  }
  // Under systemd, StateDirectory= sets $STATE_DIRECTORY (colon-separated when it names
  // several); its first entry is the data directory unless --data-dir was given.
  if (vm["data-dir"].defaulted()) {
    if (const char* state = std::getenv("STATE_DIRECTORY"); state != nullptr && *state != 0) {
      std::string dirs = state;
      c.data_dir = dirs.substr(0, dirs.find(':'));
    }
  }

  // Under systemd, the StateDirectory= entry named tallyd-checkpoints (the unit's) is the
  // checkpoint root unless --checkpoint-root was given.
  const bool checkpoint_root_given = vm.count("checkpoint-root") != 0;
  if (!checkpoint_root_given) {
    if (const char* state = std::getenv("STATE_DIRECTORY"); state != nullptr) {
      std::istringstream dirs(state);
      for (std::string d; std::getline(dirs, d, ':');) {
        if (std::filesystem::path(d).filename() == "tallyd-checkpoints") {
          c.checkpoint_root = d;
        }
      }
    }
  }
  if (c.wal_recovery != "strict" && c.wal_recovery != "point-in-time") {
    return fail("--wal-recovery: must be strict or point-in-time");
  }
  if (checkpoint_root_given) {
    std::error_code ec;
    if (c.checkpoint_root.empty() || c.checkpoint_root.front() != '/' ||
        !std::filesystem::is_directory(c.checkpoint_root, ec)) {
      return fail("--checkpoint-root: must be the absolute path of an existing directory");
    }
  }

  for (auto [name, text, target] : {std::tuple{"udp-listen", &udp, &c.udp_listen},
                                    std::tuple{"http-listen", &http, &c.http_listen}}) {
    StatusOr<Endpoint> ep = ParseEndpoint(*text);
    if (!ep.ok()) {
      return fail(std::string("--") + name + ": " + ep.status().message());
    }
    *target = *ep;
  }
  if (c.unix_socket == "off") {
    c.unix_socket.clear();
  }
  if (c.flush_interval_ms < 10 || c.flush_interval_ms > 3'600'000) {
    return fail("--flush-interval-ms: must be within 10..3600000");
  }
  if (c.max_keys < 1 || c.max_keys > (uint64_t{1} << 32)) {
    return fail("--max-keys: must be within 1..4294967296");
  }
  if (c.io_threads > 256) {
    return fail("--io-threads: must be within 0..256");
  }
  if (c.udp_rcvbuf < 4096 || c.udp_rcvbuf > (uint64_t{1} << 31)) {
    return fail("--udp-rcvbuf: must be within 4096..2147483648");
  }
  if (c.max_body_bytes < 1024) {
    return fail("--max-body-bytes: must be at least 1024");
  }
  if (c.max_connections < 1) {
    return fail("--max-connections: must be at least 1");
  }
  if (c.metric_prefix.empty() || c.metric_prefix.find_first_of(":|@# \n") != std::string::npos) {
    return fail("--metric-prefix: must be non-empty, without ':', '|', '@', '#' or spaces");
  }
  if (c.log_level != "error" && c.log_level != "warn" && c.log_level != "info" &&
      c.log_level != "debug") {
    return fail("--log-level: must be error, warn, info or debug");
  }
  if (c.io_threads == 0) {
    unsigned n = std::thread::hardware_concurrency();
    c.io_threads = n == 0 ? 1 : n;
  }

  for (auto [name, file, env, target] :
       {std::tuple{"admin-token-file", &admin_token_file, "TALLYD_ADMIN_TOKEN", &c.admin_token},
        std::tuple{"internal-token-file", &internal_token_file, "TALLYD_INTERNAL_TOKEN",
                   &c.internal_token}}) {
    if (!file->empty()) {
      StatusOr<std::string> token = ReadTokenFile(name, *file);
      if (!token.ok()) {
        return fail(token.status().message());
      }
      *target = *token;
    } else if (target->empty()) {
      if (const char* value = std::getenv(env); value != nullptr) {
        *target = value;
      }
    }
  }

  bool http_public = c.http_listen.enabled() && !IsLoopback(c.http_listen.host);
  if (http_public && (c.admin_token.empty() || c.internal_token.empty())) {
    return fail(
        "--http-listen: a non-loopback address needs both --admin-token and "
        "--internal-token");
  }
  result.config = std::move(c);
  return result;
}

}  // namespace tally::daemon
