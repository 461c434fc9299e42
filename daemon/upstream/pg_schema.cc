#include "daemon/upstream/pg_schema.h"

#include <algorithm>
#include <map>
#include <pqxx/pqxx>
#include <vector>

#include "daemon/upstream/pg_conninfo.h"

namespace tally::daemon {
namespace {

// gorm's AutoMigrate of the seed model on PostgreSQL (gorm.io/driver/postgres): gorm.Model's
// id bigserial and three timestamptz, strings varchar(size) or text, int64/int/uint bigint,
// float64 decimal, bool boolean; uniqueIndex and index as named indexes.
constexpr const char* kCreateEzApi[] = {
    R"(CREATE TABLE IF NOT EXISTS "provider_groups" ("id" bigserial,"created_at" timestamptz,
"updated_at" timestamptz,"deleted_at" timestamptz,"name" varchar(255) NOT NULL,
"type" varchar(50) NOT NULL,"base_url" varchar(512) NOT NULL,"google_project" varchar(128),
"google_location" varchar(64),"static_headers" text,"headers_profile" varchar(64),
"models" text,"status" varchar(50) DEFAULT 'active',"total_requests" bigint DEFAULT 0,
"success_requests" bigint DEFAULT 0,"failure_requests" bigint DEFAULT 0,
"success_rate" decimal DEFAULT 0,"failure_rate" decimal DEFAULT 0,PRIMARY KEY ("id")))",
    R"(CREATE UNIQUE INDEX IF NOT EXISTS "idx_provider_groups_name" ON "provider_groups" ("name"))",
    R"(CREATE INDEX IF NOT EXISTS "idx_provider_groups_deleted_at" ON "provider_groups" ("deleted_at"))",
    R"(CREATE TABLE IF NOT EXISTS "api_keys" ("id" bigserial,"created_at" timestamptz,
"updated_at" timestamptz,"deleted_at" timestamptz,"group_id" bigint NOT NULL,
"api_key" text NOT NULL,"access_token" text,"refresh_token" text,"expires_at" timestamptz,
"account_id" varchar(255),"project_id" varchar(255),"weight" bigint DEFAULT 1,
"status" varchar(50) DEFAULT 'active',"auto_ban" boolean DEFAULT true,
"ban_reason" varchar(255),"ban_until" timestamptz,"total_requests" bigint DEFAULT 0,
"success_requests" bigint DEFAULT 0,"failure_requests" bigint DEFAULT 0,
"success_rate" decimal DEFAULT 0,"failure_rate" decimal DEFAULT 0,PRIMARY KEY ("id")))",
    R"(CREATE INDEX IF NOT EXISTS "idx_api_keys_deleted_at" ON "api_keys" ("deleted_at"))",
    R"(CREATE INDEX IF NOT EXISTS "idx_api_keys_group_id" ON "api_keys" ("group_id"))",
};

constexpr const char* kCreateSources =
    "CREATE TABLE IF NOT EXISTS tallyd_sources (source text PRIMARY KEY, "
    "last_sequence bigint NOT NULL, updated_at timestamptz NOT NULL)";

// The types each kind of column may have (information_schema's data_type spelling).
const std::vector<std::string> kIds = {"bigint", "integer", "smallint"};
const std::vector<std::string> kCounters = {"bigint", "numeric"};
const std::vector<std::string> kRates = {"numeric", "double precision", "real"};
const std::vector<std::string> kTimes = {"timestamp with time zone", "timestamp without time zone"};
const std::vector<std::string> kText = {"text", "character varying"};

struct Need {
  const char* table;
  const char* column;
  const std::vector<std::string>* types;
};

const std::vector<Need>& Needs() {
  static const std::vector<Need> needs = {
      {"api_keys", "id", &kIds},
      {"api_keys", "group_id", &kIds},
      {"api_keys", "total_requests", &kCounters},
      {"api_keys", "success_requests", &kCounters},
      {"api_keys", "failure_requests", &kCounters},
      {"api_keys", "success_rate", &kRates},
      {"api_keys", "failure_rate", &kRates},
      {"api_keys", "updated_at", &kTimes},
      {"api_keys", "deleted_at", &kTimes},
      {"provider_groups", "id", &kIds},
      {"provider_groups", "total_requests", &kCounters},
      {"provider_groups", "success_requests", &kCounters},
      {"provider_groups", "failure_requests", &kCounters},
      {"provider_groups", "success_rate", &kRates},
      {"provider_groups", "failure_rate", &kRates},
      {"provider_groups", "updated_at", &kTimes},
      {"tallyd_sources", "source", &kText},
      {"tallyd_sources", "last_sequence", &kCounters},
      {"tallyd_sources", "updated_at", &kTimes},
  };
  return needs;
}

std::string OneOf(const std::vector<std::string>& types) {
  std::string out;
  for (size_t i = 0; i < types.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + types[i];
  }
  return out;
}

core::Status Run(pqxx::connection_base& conn, const char* const* begin, const char* const* end) {
  try {
    pqxx::work tx(conn);
    for (const char* const* sql = begin; sql != end; ++sql) {
      tx.exec0(*sql);
    }
    tx.commit();
    return core::Status::Ok();
  } catch (const std::exception& e) {
    return core::Status::Unavailable(std::string("PostgreSQL: ") + PgMessage(e));
  }
}

}  // namespace

core::Status CreateEzApiTables(pqxx::connection_base& conn) {
  return Run(conn, std::begin(kCreateEzApi), std::end(kCreateEzApi));
}

core::Status EnsureSourcesTable(pqxx::connection_base& conn) {
  const char* const sql[] = {kCreateSources};
  core::Status s = Run(conn, std::begin(sql), std::end(sql));
  if (!s.ok()) {
    // Two tallyds creating it at the same moment: one loses the race on the catalog's
    // unique index; the table exists now.
    s = Run(conn, std::begin(sql), std::end(sql));
  }
  return s;
}

core::Status CheckSchema(pqxx::connection_base& conn) {
  std::map<std::pair<std::string, std::string>, std::string> found;  // (table, column) -> type
  std::vector<std::string> tables;
  try {
    pqxx::work tx(conn);
    pqxx::result r = tx.exec(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name IN "
        "('api_keys', 'provider_groups', 'tallyd_sources')");
    for (const pqxx::row& row : r) {
      std::string table = row[0].as<std::string>();
      found[{table, row[1].as<std::string>()}] = row[2].as<std::string>();
      tables.push_back(table);
    }
    tx.commit();
  } catch (const std::exception& e) {
    return core::Status::Unavailable(std::string("PostgreSQL: ") + PgMessage(e));
  }
  for (const Need& need : Needs()) {
    if (std::find(tables.begin(), tables.end(), need.table) == tables.end()) {
      return core::Status::Refused(std::string("PostgreSQL: no table ") + need.table +
                                   " in the connection's schema (--postgres-create-schema "
                                   "creates ez-api's tables)");
    }
    auto it = found.find({need.table, need.column});
    if (it == found.end()) {
      return core::Status::Refused(std::string("PostgreSQL: table ") + need.table +
                                   " has no column " + need.column + " (tallyd needs " +
                                   OneOf(*need.types) + ")");
    }
    const std::vector<std::string>& ok = *need.types;
    if (std::find(ok.begin(), ok.end(), it->second) == ok.end()) {
      return core::Status::Refused(std::string("PostgreSQL: ") + need.table + "." + need.column +
                                   " is " + it->second + "; tallyd needs " + OneOf(ok));
    }
  }
  return core::Status::Ok();
}

}  // namespace tally::daemon
