#include "daemon/app/config_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace tally::daemon {
namespace po = boost::program_options;
using core::Status;
using core::StatusOr;

StatusOr<std::vector<FileOption>> ReadConfigFile(const std::string& path,
                                                 const po::options_description& opts) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::InvalidArgument("--config: '" + path + "' is a directory");
  }
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument("--config: cannot read '" + path + "': " + std::strerror(errno));
  }
  auto trim = [](std::string s) {
    size_t b = s.find_first_not_of(" \t\r");
    size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  auto known = [&](const std::string& name) {
    return !name.empty() && name != "config" && name != "help" && name != "version" &&
           name != "print-mapping-preset" && opts.find_nothrow(name, false) != nullptr;
  };
  std::vector<FileOption> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string where = "--config " + path + " line " + std::to_string(number);
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') {
      continue;
    }
    size_t eq = line.find('=');
    // The leading option-name characters, named only if they are a real option.
    std::string name = trim(line.substr(0, eq));
    if (eq == std::string::npos) {
      size_t end = line.find_first_not_of("abcdefghijklmnopqrstuvwxyz-");
      std::string lead = line.substr(0, end);
      return Status::InvalidArgument(where + (known(lead) ? " (" + lead + ")" : std::string()) +
                                     ": expected `option = value`");
    }
    if (!known(name)) {
      bool printable =
          name.size() <= 64 && name.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == std::string::npos;
      return Status::InvalidArgument(where + ": unknown option" +
                                     (printable ? " '" + name + "'" : std::string()));
    }
    for (const FileOption& o : out) {
      if (o.name == name) {
        return Status::InvalidArgument(where + ": " + name + " is given twice");
      }
    }
    out.push_back({name, trim(line.substr(eq + 1)), number});
  }
  return out;
}

}  // namespace tally::daemon
