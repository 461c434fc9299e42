#include "daemon/app/config_mapping.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/mapping_presets.h"
#include "core/mapping_yaml.h"

namespace tally::daemon {
namespace po = boost::program_options;
using core::Status;
using core::StatusOr;

namespace {

// A rule file is a few kilobytes; this bound keeps a mistaken path (a log, a device) from
// being read whole.
constexpr std::uintmax_t kMaxMappingFileBytes = 1 << 20;

std::string PresetList() {
  std::string names;
  for (std::string_view n : core::MappingPresetNames()) {
    names += (names.empty() ? "" : ", ") + std::string(n);
  }
  return names;
}

StatusOr<std::string> ReadRuleFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::InvalidArgument("--mapping-file: '" + path + "' is not a regular file");
  }
  if (std::filesystem::file_size(path, ec) > kMaxMappingFileBytes) {
    return Status::InvalidArgument("--mapping-file: '" + path + "' is larger than 1 MiB");
  }
  std::ifstream in(path);
  if (!in) {
    return Status::InvalidArgument("--mapping-file: cannot read '" + path +
                                   "': " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string MappingOptions::Redacted() const {
  if (!file.empty()) {
    return "mapping=file:" + file;
  }
  return preset.empty() ? "mapping=off" : "mapping=preset:" + preset;
}

void DescribeMappingOptions(po::options_description& opts, MappingOptions& m) {
  const std::string presets = PresetList();
  // clang-format off
  opts.add_options()
      ("mapping-file", po::value(&m.file),
       "YAML rules that turn a gateway's own statsd lines into per-key outcomes (README "
       "\"Your gateway as it is\"); default: none")
      ("mapping-preset", po::value(&m.preset),
       ("a built-in rule file instead of --mapping-file: " + presets + "; default: none").c_str())
      ("print-mapping-preset", po::value<std::string>(),
       "print the built-in rule file NAME (to start a --mapping-file from) and exit");
  // clang-format on
}

Status ValidateMappingOptions(MappingOptions& m) {
  if (!m.file.empty() && !m.preset.empty()) {
    return Status::InvalidArgument("--mapping-file and --mapping-preset are both given: give one");
  }
  std::string text;
  std::string where;
  if (!m.file.empty()) {
    StatusOr<std::string> read = ReadRuleFile(m.file);
    if (!read.ok()) {
      return read.status();
    }
    text = std::move(read).value();
    where = "--mapping-file " + m.file;
  } else if (!m.preset.empty()) {
    std::optional<std::string_view> preset = core::MappingPreset(m.preset);
    if (!preset) {
      return Status::InvalidArgument("--mapping-preset: must be one of " + PresetList());
    }
    text = *preset;
    where = "--mapping-preset " + m.preset;
  } else {
    return Status::Ok();
  }
  StatusOr<std::shared_ptr<const core::Mapping>> mapping = core::LoadMapping(text, where);
  if (!mapping.ok()) {
    return mapping.status();
  }
  m.mapping = std::move(mapping).value();
  return Status::Ok();
}

StatusOr<std::string> PrintMappingPreset(const std::string& name) {
  std::optional<std::string_view> preset = core::MappingPreset(name);
  if (!preset) {
    return Status::InvalidArgument("--print-mapping-preset: must be one of " + PresetList());
  }
  std::string_view text = *preset;
  if (text.ends_with('\n')) {
    text.remove_suffix(1);  // main ends the output with one
  }
  return std::string(text);
}

}  // namespace tally::daemon
