// The forwarding options (issue 17): where committed flushes go upstream, as whom, and how
// big the outbox may grow. Held by Config (config.h) as `forward`; described and checked
// here, hooked into ParseArgs by config.cc.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace tally::daemon {

struct ForwardConfig {
  // "http://HOST[:PORT][/PATH]" or "https://..."; empty: no forwarding, no outbox.
  std::string url;
  std::string token_file;  // --forward-token-file: X-Internal-Token for the upstream
  std::string token;       // read from token_file
  std::string ca_file;     // --forward-ca-file: CA bundle for https (default: the system's)
  std::string source_id;   // --source-id; empty: the stored one, or host name + random suffix
  uint32_t timeout_ms = 10'000;
  uint32_t retry_min_ms = 1'000;
  uint32_t retry_max_ms = 60'000;  // a retry_min_ms above it is taken as it
  uint64_t outbox_max_bytes = uint64_t{1} << 30;
  uint32_t outbox_batch_keys = 20'000;  // keys per outbox batch (one upstream request)
  // Parsed from url.
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;  // without a trailing '/'
};

// The raw text of the forwarding options before they are checked.
struct RawForwardOptions {
  std::string url;
};

// The HTTP API over TLS (--http-tls-cert, --http-tls-key): both or neither.
struct HttpTlsConfig {
  std::string cert;  // PEM certificate chain
  std::string key;   // PEM private key
  bool enabled() const { return !cert.empty(); }
};
void DescribeHttpTlsOptions(boost::program_options::options_description& opts, HttpTlsConfig& c);
core::Status ValidateHttpTls(const HttpTlsConfig& c);

// Adds the forwarding options to `opts`, reading into `c`.
void DescribeForwardOptions(boost::program_options::options_description& opts, ForwardConfig& c);
// Checks the URL, the source id, the retry range, and reads the token file.
core::Status ValidateForward(ForwardConfig& c);

struct NumericRange;
// Appends the forwarding options' numeric ranges (--forward-timeout-ms, --forward-retry-min-ms,
// --forward-retry-max-ms, --outbox-max-bytes, --outbox-batch-keys) to NumericOptions()'s table.
void AppendForwardNumericOptions(std::vector<NumericRange>* ranges);
// Their lines of --help, reading into `numeric` (NumericText, config.h, preset to their
// defaults).
void DescribeForwardNumericOptions(boost::program_options::options_description& opts,
                                   std::map<std::string, std::string>& numeric);
// " forward-url=... source-id=..." for Config::Redacted (no token).
std::string RedactedForward(const ForwardConfig& c);

}  // namespace tally::daemon
