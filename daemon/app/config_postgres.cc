#include "daemon/app/config_postgres.h"

#include <boost/program_options.hpp>

#include "daemon/app/tokens.h"

namespace tally::daemon {
namespace po = boost::program_options;

void DescribePostgresOptions(po::options_description& opts, PgSinkOptions& options,
                             RawPostgresOptions& raw) {
  // clang-format off
  opts.add_options()
      ("postgres-url", po::value(&options.url),
       "PostgreSQL to apply committed deltas to (ez-api's api_keys and provider_groups), a "
       "libpq connection string or postgresql:// URI; default: none (no sink)")
      ("postgres-password-file", po::value(&raw.password_file),
       "file holding the PostgreSQL password (a regular file of at most 4096 bytes); "
       "default: libpq's own ($PGPASSFILE, ~/.pgpass)")
      ("postgres-create-schema",
       po::value(&options.create_schema)->default_value(false, "false")->implicit_value(true, "true"),
       "create ez-api's api_keys and provider_groups when missing, as gorm would (for trials "
       "and tests)");
  // clang-format on
}

core::Status ValidatePostgresOptions(const RawPostgresOptions& raw, PgSinkOptions& options) {
  if (options.url.empty()) {
    if (raw.password_file_given) {
      return core::Status::InvalidArgument("--postgres-password-file: needs --postgres-url");
    }
    if (raw.create_schema_given && options.create_schema) {
      return core::Status::InvalidArgument("--postgres-create-schema: needs --postgres-url");
    }
    return core::Status::Ok();
  }
  if (raw.password_file_given) {
    // A password is a token by ReadTokenFile's rules: visible ASCII, one line.
    core::StatusOr<std::string> password =
        ReadTokenFile("postgres-password-file", raw.password_file);
    if (!password.ok()) {
      return password.status();
    }
    options.password = *password;
  }
  core::StatusOr<std::string> conninfo = BuildConninfo(options);
  return conninfo.ok() ? core::Status::Ok() : conninfo.status();
}

}  // namespace tally::daemon
