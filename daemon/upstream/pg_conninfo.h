// The PostgreSQL sink's connection string: --postgres-url plus the password of
// --postgres-password-file, as one libpq keyword/value string.
//
// Pure functions over libpq's own parser (PQconninfoParse), so a URL libpq would refuse is
// refused at start-up (exit 2), never later. Thread-safe.
#pragma once

#include <exception>
#include <string>

#include "core/status.h"

namespace tally::daemon {

// What the sink connects with. `password` empty: libpq finds one itself (PGPASSFILE,
// ~/.pgpass, or the URL's own), or the server needs none.
struct PgSinkOptions {
  std::string url;  // a libpq connection string or postgres:// URI; empty: no sink
  std::string password;
  bool create_schema = false;  // create api_keys and provider_groups when missing
};

// The keyword/value string for `options` (url's settings, the password added, and
// application_name=tallyd and connect_timeout=10 unless the url sets them). InvalidArgument
// naming --postgres-url when libpq cannot parse it; the message never repeats the url,
// which may hold a password.
core::StatusOr<std::string> BuildConninfo(const PgSinkOptions& options);

// An exception's message from libpq or libpqxx on one line: newlines and tabs become
// spaces, trailing blanks go (libpq's messages end in newlines and carry hints on their own
// lines; a log line must stay one line).
std::string PgMessage(const std::exception& e);

}  // namespace tally::daemon
