// The PostgreSQL schema the sink writes into: ez-api's `api_keys` and `provider_groups`, as
// gorm migrates them from the seed model (../shared/reference/provider_group.go), and
// tallyd's own `tallyd_sources` (one high-water mark per source).
//
// Every function runs its statements on the connection it is given, from the caller's
// thread, and converts libpqxx's exceptions into a Status at this edge. Not thread-safe
// per connection (libpq's rule).
#pragma once

#include <string>

#include "core/status.h"

namespace pqxx {
class connection_base;
}

namespace tally::daemon {

// Creates api_keys and provider_groups (with gorm's indexes) when they do not exist: the
// DDL gorm's postgres dialect issues for the seed model (bigserial ids, text and varchar,
// bigint counters, decimal rates, timestamptz times, deleted_at indexed). For trying the
// sink out and for tests; the control plane owns these tables in production.
core::Status CreateEzApiTables(pqxx::connection_base& conn);

// Creates tallyd_sources(source text primary key, last_sequence bigint, updated_at
// timestamptz) when it does not exist.
core::Status EnsureSourcesTable(pqxx::connection_base& conn);

// Checks that every column the sink reads or writes exists in the connection's current
// schema with a usable type. Refused naming the first problem exactly ("PostgreSQL: table
// api_keys has no column failure_rate (tallyd needs numeric, double precision or real)";
// "PostgreSQL: api_keys.total_requests is text; tallyd needs bigint or numeric");
// Unavailable when the server cannot be asked.
core::Status CheckSchema(pqxx::connection_base& conn);

}  // namespace tally::daemon
