#include "tests/support/forward_fleet.h"

#include <boost/json.hpp>
#include <fstream>

namespace tally::testing {

std::string WriteForwardToken(const TempDir& dir) {
  std::string path = dir.Sub("forward-token");
  std::ofstream(path) << "int-token\n";
  return path;
}

std::vector<std::string> EdgeArgs(const std::string& token_file, uint16_t proxy_port,
                                  std::vector<std::string> more) {
  std::vector<std::string> args = Tokens(
      {"--forward-url", "http://127.0.0.1:" + std::to_string(proxy_port), "--forward-token-file",
       token_file, "--flush-interval-ms", "100", "--forward-retry-min-ms", "20",
       "--forward-retry-max-ms", "300", "--forward-timeout-ms", "700"});
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

int64_t TotalRequests(uint16_t http_port) {
  HttpResult r = Http(http_port, "GET", "/admin/apikey-stats/summary", {}, kAdmin);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (r.status != 200 || ec || !v.is_object()) {
    return -1;
  }
  return v.at("total_requests").to_number<int64_t>();
}

std::map<uint64_t, int64_t> KeyTotals(uint16_t http_port) {
  std::map<uint64_t, int64_t> out;
  HttpResult r = Http(http_port, "GET", "/admin/api-keys", {}, kAdmin);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (r.status != 200 || ec) {
    return out;
  }
  const boost::json::array* keys = v.if_array();
  if (keys == nullptr && v.is_object() && v.as_object().contains("data")) {
    keys = v.at("data").if_array();
  }
  if (keys == nullptr) {
    return out;
  }
  for (const auto& k : *keys) {
    out[k.at("ID").to_number<uint64_t>()] = k.at("total_requests").to_number<int64_t>();
  }
  return out;
}

double Metric(uint16_t http_port, const std::string& series) {
  std::optional<double> v = ScrapeMetric(http_port, series);
  return v ? *v : -1;
}

}  // namespace tally::testing
