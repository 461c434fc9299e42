// Helpers of the forwarding tests (issue 17): a central tallyd and edges forwarding to it
// through a FaultProxy, and what they read back (totals, per-key totals, outbox state).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/fault_proxy.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {

// A file holding the internal token, for --forward-token-file.
std::string WriteForwardToken(const TempDir& dir);

// Edge arguments: tokens, --forward-url to `proxy_port`, fast flushes and retries, `more`.
std::vector<std::string> EdgeArgs(const std::string& token_file, uint16_t proxy_port,
                                  std::vector<std::string> more = {});

// Total requests on the summary (-1 when it does not answer).
int64_t TotalRequests(uint16_t http_port);
// Every live key's total_requests (GET /admin/api-keys).
std::map<uint64_t, int64_t> KeyTotals(uint16_t http_port);
// A metric's value, or -1.
double Metric(uint16_t http_port, const std::string& series);

}  // namespace tally::testing
