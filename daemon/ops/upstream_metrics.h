// The forwarding and receiving metrics (issue 17): the outbox, the forwarder's outcomes, and
// the sources a central tallyd applies batches from. Appended to /metrics by RenderMetrics
// (endpoints.cc). Reads relaxed atomics and the stores' short locks only.
#pragma once

#include <string>

#include "daemon/metrics.h"
#include "persistence/outbox_store.h"
#include "persistence/sources_store.h"

namespace tally::daemon {

// Appends the tallyd_outbox_*, tallyd_forward_* and tallyd_source_* families to `out`.
// `outbox` null: forwarding is off (the outbox families then read 0).
void RenderUpstreamMetrics(std::string* out, const ForwardMetrics& forward,
                           const persistence::OutboxStore* outbox,
                           const persistence::SourcesStore* sources);

// A Prometheus label value with '\\', '"' and newlines escaped.
std::string EscapeLabel(const std::string& value);

}  // namespace tally::daemon
