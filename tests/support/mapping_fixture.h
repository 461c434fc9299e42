// Mapping fixtures (tests/fixtures/mapping/<preset>.lines): a gateway's statsd lines as its
// documentation names them, and what tallyd must make of them, in `# expect-...` comments:
//   # expect-key: <id> success <n> failure <n>
//   # expect-lines: accepted <n> ignored <n> malformed <n> refused <n>
//   # expect-rule: <rule> <lines matched>
//   # expect-without-key: <rule> <lines>
// Other '#' lines are comments; every other non-empty line is a statsd line. Used by the
// preset unit tests and the end-to-end test over UDP.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tally::testing {

struct MappingFixture {
  std::vector<std::string> lines;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> keys;  // id -> successes, failures
  uint64_t accepted = 0, ignored = 0, malformed = 0, refused = 0;
  std::map<std::string, uint64_t> rules;
  std::map<std::string, uint64_t> without_key;
};

inline std::string MappingSourceFile(const std::string& relative) {
  return std::string(TALLY_SOURCE_DIR) + "/" + relative;
}

inline std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(MappingSourceFile(relative));
  if (!in) {
    throw std::runtime_error("cannot read " + relative);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline MappingFixture ReadMappingFixture(const std::string& preset) {
  std::istringstream in(ReadSourceFile("tests/fixtures/mapping/" + preset + ".lines"));
  MappingFixture f;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string hash, directive, word;
    if (line.empty()) {
      continue;
    }
    if (line[0] != '#') {
      f.lines.push_back(line);
      continue;
    }
    words >> hash >> directive;
    if (directive == "expect-key:") {
      uint64_t id = 0, s = 0, fl = 0;
      words >> id >> word >> s >> word >> fl;
      f.keys[id] = {s, fl};
    } else if (directive == "expect-lines:") {
      words >> word >> f.accepted >> word >> f.ignored >> word >> f.malformed >> word >> f.refused;
    } else if (directive == "expect-rule:") {
      words >> word;
      words >> f.rules[word];
    } else if (directive == "expect-without-key:") {
      words >> word;
      words >> f.without_key[word];
    }
  }
  return f;
}

}  // namespace tally::testing
