#include "daemon/ops/upstream_metrics.h"

#include <fmt/format.h>

#include "core/clock.h"

namespace tally::daemon {

std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void RenderUpstreamMetrics(std::string* out, const ForwardMetrics& forward,
                           const persistence::OutboxStore* outbox,
                           const persistence::SourcesStore* sources) {
  auto family = [out](std::string_view name, std::string_view type, std::string_view help) {
    *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto single = [&](std::string_view name, std::string_view type, std::string_view help,
                    auto value) {
    family(name, type, help);
    *out += fmt::format("{} {}\n", name, value);
  };
  persistence::OutboxStats s = outbox != nullptr ? outbox->stats() : persistence::OutboxStats{};
  const double age = s.oldest_created_at == 0
                         ? 0.0
                         : static_cast<double>(core::UnixNowNs() - s.oldest_created_at) / 1e9;
  single("tallyd_outbox_batches", "gauge", "Batches in the outbox, not yet sent or acknowledged.",
         s.batches);
  single("tallyd_outbox_bytes", "gauge",
         "Encoded bytes of the outbox's batches and dead letters (--outbox-max-bytes bounds it).",
         s.bytes());
  single("tallyd_outbox_oldest_age_seconds", "gauge",
         "Age of the oldest batch in the outbox (0 when empty).", age);
  single("tallyd_outbox_dead_letters", "gauge", "Batches in the outbox's dead letters.",
         s.dead_letters);
  single("tallyd_outbox_coalesced_total", "counter",
         "Flushes merged into a never-sent batch since start.", s.coalesced);
  // Relaxed loads: statistics (ForwardMetrics).
  single("tallyd_outbox_full", "gauge",
         "1 while the outbox is past --outbox-max-bytes: /readyz fails, new lines are refused.",
         forward.outbox_full.load(std::memory_order_relaxed) ? 1 : 0);
  single("tallyd_forward_batches_total", "counter", "Batches the upstream acknowledged (2xx).",
         forward.batches.load(std::memory_order_relaxed));
  single("tallyd_forward_deltas_total", "counter",
         "Key deltas in the batches the upstream acknowledged.",
         forward.deltas.load(std::memory_order_relaxed));
  family("tallyd_forward_retries_total", "counter",
         "Forward attempts to be retried, by reason (timeout, connection, 5xx, 408, 429).");
  for (size_t i = 0; i < ForwardMetrics::kRetryReasons.size(); ++i) {
    *out += fmt::format("tallyd_forward_retries_total{{reason=\"{}\"}} {}\n",
                        ForwardMetrics::kRetryReasons[i],
                        forward.retries[i].load(std::memory_order_relaxed));
  }
  single("tallyd_forward_dead_letters_total", "counter",
         "Batches the upstream refused for good (a 4xx other than 408 and 429), moved to the "
         "dead letters.",
         forward.dead_letters.load(std::memory_order_relaxed));
  family("tallyd_ingest_refused_total", "counter",
         "Valid lines refused whole, by reason (outbox_full: past --outbox-max-bytes).");
  *out += fmt::format("tallyd_ingest_refused_total{{reason=\"outbox_full\"}} {}\n",
                      forward.lines_refused_outbox_full.load(std::memory_order_relaxed));
  if (sources == nullptr) {
    return;
  }
  std::vector<persistence::SourceInfo> list = sources->List();
  family("tallyd_source_last_sequence", "gauge",
         "The highest sequence applied from each source (its high-water mark).");
  for (const auto& i : list) {
    *out += fmt::format("tallyd_source_last_sequence{{source=\"{}\"}} {}\n", EscapeLabel(i.source),
                        i.last_sequence);
  }
  family("tallyd_source_replays_total", "counter",
         "Batches answered as replays (at or below the source's mark, not applied) since start.");
  for (const auto& i : list) {
    *out += fmt::format("tallyd_source_replays_total{{source=\"{}\"}} {}\n", EscapeLabel(i.source),
                        i.replays);
  }
  family("tallyd_source_gaps_total", "counter",
         "Batches applied past a gap in the source's sequences since start.");
  for (const auto& i : list) {
    *out += fmt::format("tallyd_source_gaps_total{{source=\"{}\"}} {}\n", EscapeLabel(i.source),
                        i.gaps);
  }
}

}  // namespace tally::daemon
