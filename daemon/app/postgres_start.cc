#include "daemon/app/postgres_start.h"

#include "daemon/log.h"

namespace tally::daemon {

core::StatusOr<std::unique_ptr<PgSink>> StartPostgresSink(const PgSinkOptions& options,
                                                          PostgresSinkMetrics* metrics) {
  if (options.url.empty()) {
    return std::unique_ptr<PgSink>();
  }
  core::StatusOr<std::string> conninfo = BuildConninfo(options);  // validated by ParseArgs
  if (!conninfo.ok()) {
    return conninfo.status();
  }
  auto sink = std::make_unique<PgSink>(*conninfo, metrics);
  core::Status s = sink->Open(options.create_schema);
  if (s.code() == core::Status::Code::kUnavailable) {
    LogPostgres()->error("{}; batches wait in the outbox until it answers", s.message());
  } else if (!s.ok()) {
    return s;
  } else {
    LogPostgres()->info("PostgreSQL schema checked{}",
                        options.create_schema ? " (ez-api's tables created if missing)" : "");
  }
  return sink;
}

}  // namespace tally::daemon
