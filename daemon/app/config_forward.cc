#include "daemon/app/config_forward.h"

#include <boost/url/parse.hpp>
#include <filesystem>

#include "daemon/app/config.h"
#include "daemon/app/tokens.h"
#include "persistence/outbox_store.h"

namespace tally::daemon {
namespace po = boost::program_options;
using core::Status;

void DescribeForwardOptions(po::options_description& opts, ForwardConfig& c) {
  // clang-format off
  opts.add_options()
      ("forward-url", po::value(&c.url),
       "forward every committed flush to this upstream (a central tallyd or ez-api): "
       "http(s)://HOST[:PORT][/PATH]; default: off")
      ("forward-token-file", po::value(&c.token_file),
       "file holding the upstream's X-Internal-Token (a regular file of at most 4096 bytes)")
      ("forward-ca-file", po::value(&c.ca_file),
       "CA bundle (PEM) for an https forward URL; default: the system's CA store")
      ("source-id", po::value(&c.source_id),
       "this host's id in forwarded batches (1..128 visible characters, no ':'); default: the "
       "one stored in the data dir, else the host name and a random suffix");
  // clang-format on
}

Status ValidateForward(ForwardConfig& c) {
  if (!c.source_id.empty() && !persistence::OutboxStore::ValidSource(c.source_id)) {
    return Status::InvalidArgument(
        "--source-id: must be 1 to 128 visible ASCII characters other than ':'");
  }
  if (c.url.empty()) {
    if (!c.token_file.empty() || !c.ca_file.empty()) {
      return Status::InvalidArgument(
          "--forward-token-file and --forward-ca-file need --forward-url");
    }
    return Status::Ok();
  }
  boost::system::result<boost::urls::url_view> u = boost::urls::parse_absolute_uri(c.url);
  if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->encoded_host().empty() ||
      u->has_query() || u->has_fragment() || u->has_userinfo()) {
    return Status::InvalidArgument(
        "--forward-url: must be http(s)://HOST[:PORT][/PATH] without user, query or fragment");
  }
  c.tls = u->scheme() == "https";
  c.host = std::string(u->encoded_host_name());
  if (u->host_type() == boost::urls::host_type::ipv6) {
    c.host = std::string(u->encoded_host_address());
  }
  c.port = u->has_port() ? std::string(u->port()) : (c.tls ? "443" : "80");
  c.base_path = std::string(u->encoded_path());
  while (!c.base_path.empty() && c.base_path.back() == '/') {
    c.base_path.pop_back();
  }
  if (!c.tls && !c.ca_file.empty()) {
    return Status::InvalidArgument("--forward-ca-file: needs an https --forward-url");
  }
  if (!c.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(c.ca_file, ec)) {
      return Status::InvalidArgument("--forward-ca-file: not a readable regular file");
    }
  }
  if (!c.token_file.empty()) {
    core::StatusOr<std::string> token = ReadTokenFile("forward-token-file", c.token_file);
    if (!token.ok()) {
      return token.status();
    }
    c.token = *token;
  }
  return Status::Ok();
}

void DescribeHttpTlsOptions(po::options_description& opts, HttpTlsConfig& c) {
  // clang-format off
  opts.add_options()
      ("http-tls-cert", po::value(&c.cert),
       "PEM certificate chain: the HTTP API serves TLS (with --http-tls-key); default: plain HTTP")
      ("http-tls-key", po::value(&c.key), "PEM private key of --http-tls-cert");
  // clang-format on
}

Status ValidateHttpTls(const HttpTlsConfig& c) {
  if (c.cert.empty() != c.key.empty()) {
    return Status::InvalidArgument("--http-tls-cert and --http-tls-key: give both or neither");
  }
  for (const auto& [name, path] :
       {std::pair{"--http-tls-cert", &c.cert}, std::pair{"--http-tls-key", &c.key}}) {
    std::error_code ec;
    if (!path->empty() && !std::filesystem::is_regular_file(*path, ec)) {
      return Status::InvalidArgument(std::string(name) + ": not a readable regular file");
    }
  }
  return Status::Ok();
}

std::string RedactedForward(const ForwardConfig& c) {
  if (c.url.empty()) {
    return " forward-url=off";
  }
  return " forward-url=" + c.url + " forward-token=" + (c.token.empty() ? "(unset)" : "(set)") +
         " source-id=" + (c.source_id.empty() ? "(stored)" : c.source_id) +
         " outbox-max-bytes=" + std::to_string(c.outbox_max_bytes) +
         " outbox-batch-keys=" + std::to_string(c.outbox_batch_keys);
}

void DescribeForwardNumericOptions(po::options_description& opts, NumericText& numeric) {
  auto value = [&numeric](const char* name) { return NumericValue(numeric, name); };
  // clang-format off
  opts.add_options()
      ("forward-timeout-ms", value("forward-timeout-ms"),
       "timeout of one forwarded request, connect to answer (100..600000)")
      ("forward-retry-min-ms", value("forward-retry-min-ms"),
       "first retry delay of a failed forward; doubles, with jitter (10..600000)")
      ("forward-retry-max-ms", value("forward-retry-max-ms"),
       "longest retry delay of a failed forward (10..3600000)")
      ("outbox-max-bytes", value("outbox-max-bytes"),
       "outbox size past which /readyz fails and ingestion refuses new lines "
       "(65536..1125899906842624)")
      ("outbox-batch-keys", value("outbox-batch-keys"),
       "most keys in one outbox batch, so in one upstream request: a bigger flush goes as "
       "several batches (100..1000000)");
  // clang-format on
}

void AppendForwardNumericOptions(std::vector<NumericRange>* r) {
  r->push_back({"forward-timeout-ms", 100, 600'000,
                [](const Config& c) -> uint64_t { return c.forward.timeout_ms; },
                [](Config& c, uint64_t v) { c.forward.timeout_ms = static_cast<uint32_t>(v); }});
  r->push_back({"forward-retry-min-ms", 10, 600'000,
                [](const Config& c) -> uint64_t { return c.forward.retry_min_ms; },
                [](Config& c, uint64_t v) { c.forward.retry_min_ms = static_cast<uint32_t>(v); }});
  r->push_back({"forward-retry-max-ms", 10, 3'600'000,
                [](const Config& c) -> uint64_t { return c.forward.retry_max_ms; },
                [](Config& c, uint64_t v) { c.forward.retry_max_ms = static_cast<uint32_t>(v); }});
  r->push_back({"outbox-max-bytes", uint64_t{1} << 16, uint64_t{1} << 50,
                [](const Config& c) -> uint64_t { return c.forward.outbox_max_bytes; },
                [](Config& c, uint64_t v) { c.forward.outbox_max_bytes = v; }});
  r->push_back(
      {"outbox-batch-keys", 100, 1'000'000,
       [](const Config& c) -> uint64_t { return c.forward.outbox_batch_keys; },
       [](Config& c, uint64_t v) { c.forward.outbox_batch_keys = static_cast<uint32_t>(v); }});
}

}  // namespace tally::daemon
