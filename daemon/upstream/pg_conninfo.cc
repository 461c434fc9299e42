#include "daemon/upstream/pg_conninfo.h"

#include <libpq-fe.h>

#include <map>

namespace tally::daemon {
namespace {

// A libpq keyword/value value: single-quoted, with ' and \ escaped by a backslash.
std::string Quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '\'';
  return out;
}

}  // namespace

core::StatusOr<std::string> BuildConninfo(const PgSinkOptions& options) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &error);
  if (parsed == nullptr) {
    PQfreemem(error);
    return core::Status::InvalidArgument(
        "--postgres-url: not a libpq connection string or postgresql:// URI");
  }
  std::map<std::string, std::string> settings;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) {
      settings[o->keyword] = o->val;
    }
  }
  PQconninfoFree(parsed);
  if (!options.password.empty()) {
    settings["password"] = options.password;
  }
  settings.try_emplace("application_name", "tallyd");
  settings.try_emplace("connect_timeout", "10");
  std::string out;
  for (const auto& [key, value] : settings) {
    out += (out.empty() ? "" : " ") + key + "=" + Quote(value);
  }
  return out;
}

std::string PgMessage(const std::exception& e) {
  std::string out;
  for (const char* c = e.what(); *c != 0; ++c) {
    char ch = (*c == '\n' || *c == '\t' || *c == '\r') ? ' ' : *c;
    if (ch != ' ' || (!out.empty() && out.back() != ' ')) {
      out += ch;
    }
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

}  // namespace tally::daemon
