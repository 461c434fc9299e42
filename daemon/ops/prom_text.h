// PromText: builds the Prometheus text exposition (format 0.0.4) of /metrics: a HELP and a
// TYPE line per family, then its samples. Labels are passed already formatted
// (`name="value",...`; EscapeLabel in upstream_metrics.h escapes a value). Not thread-safe:
// one renderer per scrape, on the thread that answers it.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace tally::daemon {

class PromText {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(std::string_view name, std::string_view labels, uint64_t value) {
    out_ += fmt::format("{}{}{}{} {}\n", name, labels.empty() ? "" : "{", labels,
                        labels.empty() ? "" : "}", value);
  }
  void Sample(std::string_view name, std::string_view labels, double value) {
    out_ += fmt::format("{}{}{}{} {}\n", name, labels.empty() ? "" : "{", labels,
                        labels.empty() ? "" : "}", value);
  }
  // A family with a single unlabelled sample.
  template <typename T>
  void Single(std::string_view name, std::string_view type, std::string_view help, T value) {
    Family(name, type, help);
    Sample(name, "", value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace tally::daemon
