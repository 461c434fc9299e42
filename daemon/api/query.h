// Request targets: one parsing rule for every endpoint (Boost.URL, RFC 3986).
//  - The target is origin-form ("/path?query") or absolute-form ("http://host/path?query",
//    whose host is ignored); anything else is a 400. Path segments and query names and values
//    are percent-decoded ('+' in the query is a space), and a malformed escape is a 400.
//  - Routes match the decoded path segment by segment ("/admin/%61pi-keys/1" is
//    "/admin/api-keys/1"; a trailing '/' is an empty segment and matches nothing).
//  - A query parameter name given twice is a 400; unknown parameters are ignored.
//  - Ids, in paths and queries alike, are canonical decimal: digits only, no sign, no leading
//    zero, 1..2^63-1 ("0" only where a parameter allows it, as group_id's unassigned group).
//
// The only place in daemon/ that reads ids and query parameters. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tally::daemon {

// Checks a raw query string: every escape well-formed and no parameter name twice.
// InvalidArgument naming the problem.
core::Status CheckQuery(std::string_view query);
// The decoded value of `name` in a raw query string "a=1&b=%32" (a name without '=' has the
// value ""), or nullopt when absent or when the query does not parse.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);
// A canonical decimal id in 1..2^63-1, or nullopt ("01", "+1", "1 " and "0" are not).
std::optional<uint64_t> ParseId(std::string_view text);
// The id parameter `name` of a raw query: nullopt when absent; with `allow_zero`, "0" too.
// InvalidArgument (its message naming the parameter and the rule) for anything else.
core::StatusOr<std::optional<uint64_t>> IdParam(std::string_view query, std::string_view name,
                                                bool allow_zero);
// The group_id parameter (summaries, key lists): absent, 0 (the unassigned group) or an id.
core::StatusOr<std::optional<uint64_t>> GroupIdParam(std::string_view query);
// The {id} segment of a path, decoded: an id, or InvalidArgument stating the rule.
core::StatusOr<uint64_t> PathId(std::string_view segment);

}  // namespace tally::daemon
