#include "daemon/api/query.h"

#include <algorithm>
#include <boost/url/parse_query.hpp>
#include <charconv>
#include <vector>

namespace tally::daemon {
namespace urls = boost::urls;
namespace {

urls::encoding_opts QueryDecoding() {
  urls::encoding_opts opts;
  opts.space_as_plus = true;  // application/x-www-form-urlencoded, as browsers and Go send
  return opts;
}

}  // namespace

core::Status CheckQuery(std::string_view query) {
  boost::system::result<urls::params_encoded_view> params = urls::parse_query(query);
  if (!params) {
    return core::Status::InvalidArgument("bad percent-encoding in the query string");
  }
  std::vector<std::string> names;
  for (const urls::param_pct_view& p : *params) {
    std::string name = p.key.decode(QueryDecoding());
    if (name.empty()) {
      continue;  // "a=1&&b=2", a stray '&'
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return core::Status::InvalidArgument("query parameter " + name + " is given twice");
    }
    names.push_back(std::move(name));
  }
  return core::Status::Ok();
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  boost::system::result<urls::params_encoded_view> params = urls::parse_query(query);
  if (!params) {
    return std::nullopt;
  }
  for (const urls::param_pct_view& p : *params) {
    if (p.key.decode(QueryDecoding()) == name) {
      return p.has_value ? p.value.decode(QueryDecoding()) : std::string();
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> ParseId(std::string_view text) {
  // Canonical decimal only: from_chars alone would take "01" and "005".
  if (text.empty() || text.size() > 19 || text[0] < '1' || text[0] > '9') {
    return std::nullopt;
  }
  uint64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id > (uint64_t{1} << 63) - 1) {
    return std::nullopt;
  }
  return id;
}

namespace {

// What an id must look like, for an error naming `name`.
std::string IdRule(std::string_view name, bool allow_zero) {
  return std::string(name) + " must be an integer from " + (allow_zero ? "0" : "1") +
         " to 2^63-1 in canonical decimal (no sign, no leading zero)";
}

}  // namespace

core::StatusOr<std::optional<uint64_t>> IdParam(std::string_view query, std::string_view name,
                                                bool allow_zero) {
  std::optional<std::string> raw = QueryParam(query, name);
  if (!raw) {
    return std::optional<uint64_t>();
  }
  if (allow_zero && *raw == "0") {
    return std::optional<uint64_t>(0);
  }
  if (std::optional<uint64_t> id = ParseId(*raw)) {
    return id;
  }
  return core::Status::InvalidArgument(IdRule(name, allow_zero));
}

core::StatusOr<std::optional<uint64_t>> GroupIdParam(std::string_view query) {
  return IdParam(query, "group_id", /*allow_zero=*/true);
}

core::StatusOr<uint64_t> PathId(std::string_view segment) {
  if (std::optional<uint64_t> id = ParseId(segment)) {
    return *id;
  }
  return core::Status::InvalidArgument(IdRule("the id", /*allow_zero=*/false));
}

}  // namespace tally::daemon
