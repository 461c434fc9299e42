// The tokens the integration tests start tallyd with, and the request headers that carry
// them: one definition for every test file.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace tally::testing {

inline const std::map<std::string, std::string> kAdmin = {{"Authorization", "Bearer adm-token"}};
inline const std::map<std::string, std::string> kInternal = {{"X-Internal-Token", "int-token"}};

// tallyd's arguments for both tokens, then `more`.
inline std::vector<std::string> Tokens(std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--admin-token", "adm-token", "--internal-token", "int-token"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

}  // namespace tally::testing
