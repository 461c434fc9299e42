// Start-up of the PostgreSQL sink (--postgres-url): open it, check the schema, and decide
// what a failure means for the daemon.
#pragma once

#include <memory>

#include "core/status.h"
#include "daemon/metrics.h"
#include "daemon/upstream/pg_conninfo.h"
#include "daemon/upstream/pg_sink.h"

namespace tally::daemon {

// nullptr when `options.url` is empty. A schema PostgreSQL answered for but tallyd cannot
// use (a missing table or column, an unusable type) is an error naming it: the daemon exits
// 1. A PostgreSQL that cannot be reached is not: counting must not wait for it; the sink is
// returned, logs the failure, and checks the schema when it first connects.
core::StatusOr<std::unique_ptr<PgSink>> StartPostgresSink(const PgSinkOptions& options,
                                                          PostgresSinkMetrics* metrics);

}  // namespace tally::daemon
