// The PostgreSQL sink's options (docs/operations.md, "PostgreSQL"): --postgres-url,
// --postgres-password-file, --postgres-create-schema. Described into the one option table
// and validated after it is read, like every other option (config.h).
#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>

#include "core/status.h"
#include "daemon/upstream/pg_conninfo.h"

namespace tally::daemon {

// What the option table reads before validation.
struct RawPostgresOptions {
  std::string password_file;
  bool password_file_given = false;  // set by the caller from where options came from
  bool create_schema_given = false;
};

// Adds the three options, reading into `options` and `raw`.
void DescribePostgresOptions(boost::program_options::options_description& opts,
                             PgSinkOptions& options, RawPostgresOptions& raw);

// Reads the password file and checks the URL with libpq's parser. InvalidArgument naming
// the option (exit 2): a password file or --postgres-create-schema without --postgres-url,
// an unparsable URL, an unreadable or invalid password file. Never echoes the URL or the
// password.
core::Status ValidatePostgresOptions(const RawPostgresOptions& raw, PgSinkOptions& options);

}  // namespace tally::daemon
