// Record JSON: ProviderGroup and ApiKey as Go's encoding/json writes and reads ez-api's
// structs (shared/reference/provider_group.go), and the body of ez-api's internal flush.
//
// Rendering: gorm.Model's ID, CreatedAt, UpdatedAt, DeletedAt first (RFC 3339 UTC times,
// null when unset), then the tagged fields in declaration order with their omitempty; rates
// are computed from the counts; refresh_token is never written. expires_at and ban_until are
// rendered as Go's MarshalJSON renders the time.Time they were parsed into: same instant,
// nanoseconds, and the offset given (FormatTime), so a PUT comes back byte for byte.
//
// Parsing follows encoding/json where it matters to clients: field names match exactly or
// case-insensitively, unknown fields are ignored, null leaves a field at its default, and a
// value of the wrong type is an error. Counters, rates and timestamps in a body are ignored;
// refresh_token is read although Go's struct hides it (`json:"-"`). Missing fields keep the
// record's defaults (status "active", weight 1, auto_ban true, as gorm's defaults give).
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/counter_table.h"
#include "core/status.h"
#include "daemon/http/json_writer.h"
#include "persistence/records.h"

namespace tally::daemon {

// The five counter fields of a record or a summary, in ez-api's order.
void WriteTotals(JsonWriter& w, const core::Totals& t);
void WriteGroup(JsonWriter& w, const persistence::ProviderGroup& g);
void WriteKey(JsonWriter& w, const persistence::ApiKey& k);
std::string RenderGroup(const persistence::ProviderGroup& g);
std::string RenderKey(const persistence::ApiKey& k);
// A JSON array, in the given order.
std::string RenderGroups(const std::vector<persistence::ProviderGroup>& groups);
std::string RenderKeys(const std::vector<persistence::ApiKey>& keys);

// A parsed write body; id is the body's "ID" (0 when absent).
core::StatusOr<persistence::ProviderGroup> ParseGroup(std::string_view body);
core::StatusOr<persistence::ApiKey> ParseKey(std::string_view body);

// The most requests one entry of an internal flush may carry: far above any real flush
// interval's count, and low enough that totals cannot overflow.
inline constexpr int64_t kMaxFlushEntryRequests = int64_t{1} << 40;

// {"keys":[{"api_key_id":1,"requests":5,"success_requests":3}]}, validated as a whole:
// InvalidArgument ("invalid request body", or naming the entry and the rule) if it is not
// this JSON, or an entry has id 0 or above 2^63-1, a negative count, success_requests >
// requests, or requests above kMaxFlushEntryRequests. Deltas are in body order.
core::StatusOr<std::vector<core::KeyDelta>> ParseFlushBody(std::string_view body);

}  // namespace tally::daemon
