#include "daemon/api/record_json.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <functional>
#include <optional>

#include "core/limits.h"
#include "persistence/record_rules.h"

namespace tally::daemon {
namespace json = boost::json;
using core::Status;
using core::StatusOr;
using persistence::ApiKey;
using persistence::ProviderGroup;

namespace {

// gorm.Model's fields, which have no json tags and keep their Go names.
template <typename Record>
void WriteModel(JsonWriter& w, const Record& r) {
  w.Key("ID")
      .Uint(r.id)
      .Key("CreatedAt")
      .Time(r.created_at)
      .Key("UpdatedAt")
      .Time(r.updated_at)
      .Key("DeletedAt")
      .Time(r.deleted_at);
}

void OmitEmpty(JsonWriter& w, std::string_view key, const std::string& value) {
  if (!value.empty()) {
    w.Key(key).String(value);
  }
}

// The four hex digits of a \uXXXX escape at s[pos], or nullopt.
std::optional<unsigned> Hex4(std::string_view s, size_t pos) {
  if (pos + 4 > s.size()) {
    return std::nullopt;
  }
  unsigned v = 0;
  for (size_t i = pos; i < pos + 4; ++i) {
    char c = s[i];
    unsigned d = c >= '0' && c <= '9'   ? c - '0'
                 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                        : 16;
    if (d == 16) {
      return std::nullopt;
    }
    v = v * 16 + d;
  }
  return v;
}

// Go's encoding/json reads an invalid UTF-8 byte, or a UTF-16 surrogate escape that is not
// half of a pair, inside a string as U+FFFD; Boost.JSON refuses both. This rewrites each of
// them, inside strings only, as the escape \ufffd, so the parse that follows gives Go's
// strings. Everything else is copied as is, for the parser to judge.
std::string CoerceStringsLikeGo(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  bool in_string = false;
  for (size_t i = 0; i < body.size();) {
    const auto c = static_cast<unsigned char>(body[i]);
    if (!in_string || c == '"') {
      in_string = in_string != (c == '"');
      out.push_back(static_cast<char>(c));
      ++i;
    } else if (c == '\\') {
      std::optional<unsigned> u = body.substr(i + 1, 1) == "u" ? Hex4(body, i + 2) : std::nullopt;
      if (!u || *u < 0xD800 || *u > 0xDFFF) {
        size_t n = std::min<size_t>(2, body.size() - i);  // one escape, judged by the parser
        out.append(body.substr(i, n));
        i += n;
        continue;
      }
      std::optional<unsigned> low =
          *u <= 0xDBFF && body.substr(i + 6, 2) == "\\u" ? Hex4(body, i + 8) : std::nullopt;
      if (low && *low >= 0xDC00 && *low <= 0xDFFF) {
        out.append(body.substr(i, 12));  // a pair
        i += 12;
      } else {
        out += "\\ufffd";
        i += 6;
      }
    } else if (c >= 0x80) {
      size_t n = Utf8SequenceLength(body, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(body.substr(i, n));
        i += n;
      }
    } else {
      out.push_back(static_cast<char>(c));
      ++i;
    }
  }
  return out;
}

// One settable field of a record: its JSON name and how to apply a value to it.
template <typename Record>
struct Field {
  std::string_view name;
  // Applies a non-null value; returns false if its type is wrong. nullptr: ignored field.
  std::function<bool(const json::value&, Record*)> set;
  // What a value must be, for the error when `set` refuses one (empty: the type says it).
  std::string_view format = {};
};

template <typename Record>
std::function<bool(const json::value&, Record*)> StringField(std::string Record::*member) {
  return [member](const json::value& v, Record* r) {
    if (!v.is_string()) {
      return false;
    }
    r->*member = std::string(v.get_string());
    return true;
  };
}

constexpr std::string_view kTimeFormat =
    "an RFC 3339 time as Go's time.Parse(time.RFC3339Nano) reads it, years 0000 to 9999";

// A time a control plane sets: kept as Go keeps it (instant, nanoseconds, offset).
template <typename Record>
std::function<bool(const json::value&, Record*)> TimeField(
    std::optional<core::OffsetTime> Record::*member) {
  return [member](const json::value& v, Record* r) {
    if (!v.is_string()) {
      return false;
    }
    std::optional<core::OffsetTime> t = ParseTime(v.get_string());
    if (!t) {
      return false;
    }
    r->*member = *t;
    return true;
  };
}

// An integer literal (Go refuses 5.0 or 1e3 for integer fields).
std::optional<int64_t> AsInt64(const json::value& v) {
  if (v.is_int64()) {
    return v.get_int64();
  }
  if (v.is_uint64() && v.get_uint64() <= core::kMaxId) {
    return static_cast<int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

std::optional<uint64_t> AsUint64(const json::value& v) {
  if (v.is_uint64()) {
    return v.get_uint64();
  }
  if (v.is_int64() && v.get_int64() >= 0) {
    return static_cast<uint64_t>(v.get_int64());
  }
  return std::nullopt;
}

template <typename Record>
bool SetId(const json::value& v, Record* r) {
  std::optional<uint64_t> id = AsUint64(v);
  if (!id) {
    return false;
  }
  r->id = *id;
  return true;
}

// Applies a JSON object to *record field by field, as encoding/json does: an exact name
// match first, then a case-insensitive one; unknown names are skipped; later duplicates win.
template <typename Record>
Status ApplyObject(std::string_view raw_body, const std::vector<Field<Record>>& fields,
                   Record* record) {
  const std::string body = CoerceStringsLikeGo(raw_body);
  json::error_code ec;
  json::value doc = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !doc.is_object()) {
    return Status::InvalidArgument("invalid request body: expected a JSON object");
  }
  for (const auto& [key, value] : doc.get_object()) {
    std::string_view name(key.data(), key.size());
    const Field<Record>* field = nullptr;
    for (const Field<Record>& f : fields) {
      if (f.name == name) {
        field = &f;
        break;
      }
    }
    if (field == nullptr) {
      for (const Field<Record>& f : fields) {
        if (boost::beast::iequals(f.name, name)) {
          field = &f;
          break;
        }
      }
    }
    if (field == nullptr || !field->set || value.is_null()) {
      continue;
    }
    if (!field->set(value, record)) {
      return Status::InvalidArgument(
          "invalid request body: field \"" + std::string(field->name) +
          "\" has the wrong type or format" +
          (field->format.empty() ? "" : ": expected " + std::string(field->format)));
    }
  }
  return Status::Ok();
}

template <typename Record>
void AddIgnored(std::vector<Field<Record>>* fields) {
  for (std::string_view name :
       {"CreatedAt", "UpdatedAt", "DeletedAt", "total_requests", "success_requests",
        "failure_requests", "success_rate", "failure_rate"}) {
    fields->push_back({name, nullptr});
  }
}

const std::vector<Field<ProviderGroup>>& GroupFields() {
  static const std::vector<Field<ProviderGroup>> fields = [] {
    using G = ProviderGroup;
    std::vector<Field<G>> f = {
        {"ID", SetId<G>},
        {"name", StringField<G>(&G::name)},
        {"type", StringField<G>(&G::type)},
        {"base_url", StringField<G>(&G::base_url)},
        {"google_project", StringField<G>(&G::google_project)},
        {"google_location", StringField<G>(&G::google_location)},
        {"static_headers", StringField<G>(&G::static_headers)},
        {"headers_profile", StringField<G>(&G::headers_profile)},
        {"models", StringField<G>(&G::models)},
        {"status", StringField<G>(&G::status)},
    };
    AddIgnored(&f);
    return f;
  }();
  return fields;
}

const std::vector<Field<ApiKey>>& KeyFields() {
  static const std::vector<Field<ApiKey>> fields = [] {
    using K = ApiKey;
    std::vector<Field<K>> f = {
        {"ID", SetId<K>},
        {"group_id",
         [](const json::value& v, K* k) {
           std::optional<uint64_t> id = AsUint64(v);
           if (id) {
             k->group_id = *id;
           }
           return id.has_value();
         }},
        {"api_key", StringField<K>(&K::api_key)},
        {"access_token", StringField<K>(&K::access_token)},
        {"refresh_token", StringField<K>(&K::refresh_token)},
        {"expires_at", TimeField<K>(&K::expires_at), kTimeFormat},
        {"account_id", StringField<K>(&K::account_id)},
        {"project_id", StringField<K>(&K::project_id)},
        {"weight",
         [](const json::value& v, K* k) {
           std::optional<int64_t> w = AsInt64(v);
           if (w) {
             k->weight = *w;
           }
           return w.has_value();
         }},
        {"status", StringField<K>(&K::status)},
        {"auto_ban",
         [](const json::value& v, K* k) {
           if (!v.is_bool()) {
             return false;
           }
           k->auto_ban = v.get_bool();
           return true;
         }},
        {"ban_reason", StringField<K>(&K::ban_reason)},
        {"ban_until", TimeField<K>(&K::ban_until), kTimeFormat},
    };
    AddIgnored(&f);
    return f;
  }();
  return fields;
}

}  // namespace

void WriteTotals(JsonWriter& w, const core::Totals& t) {
  w.Key("total_requests")
      .Int(t.total)
      .Key("success_requests")
      .Int(t.success)
      .Key("failure_requests")
      .Int(t.failure)
      .Key("success_rate")
      .Double(t.success_rate())
      .Key("failure_rate")
      .Double(t.failure_rate());
}

void WriteGroup(JsonWriter& w, const ProviderGroup& g) {
  w.BeginObject();
  WriteModel(w, g);
  w.Key("name").String(g.name).Key("type").String(g.type).Key("base_url").String(g.base_url);
  OmitEmpty(w, "google_project", g.google_project);
  OmitEmpty(w, "google_location", g.google_location);
  OmitEmpty(w, "static_headers", g.static_headers);
  OmitEmpty(w, "headers_profile", g.headers_profile);
  w.Key("models").String(g.models).Key("status").String(g.status);
  WriteTotals(w, g.totals);
  w.EndObject();
}

void WriteKey(JsonWriter& w, const ApiKey& k) {
  w.BeginObject();
  WriteModel(w, k);
  w.Key("group_id").Uint(k.group_id).Key("api_key").String(k.api_key);
  OmitEmpty(w, "access_token", k.access_token);
  if (k.expires_at) {
    w.Key("expires_at").Time(k.expires_at);
  }
  OmitEmpty(w, "account_id", k.account_id);
  OmitEmpty(w, "project_id", k.project_id);
  w.Key("weight")
      .Int(k.weight)
      .Key("status")
      .String(k.status)
      .Key("auto_ban")
      .Bool(k.auto_ban)
      .Key("ban_reason")
      .String(k.ban_reason)
      .Key("ban_until")
      .Time(k.ban_until);
  WriteTotals(w, k.totals);
  w.EndObject();
}

std::string RenderGroup(const ProviderGroup& g) {
  JsonWriter w;
  WriteGroup(w, g);
  return w.Take();
}

std::string RenderKey(const ApiKey& k) {
  JsonWriter w;
  WriteKey(w, k);
  return w.Take();
}

std::string RenderGroups(const std::vector<ProviderGroup>& groups) {
  JsonWriter w;
  w.BeginArray();
  for (const ProviderGroup& g : groups) {
    WriteGroup(w, g);
  }
  w.EndArray();
  return w.Take();
}

std::string RenderKeys(const std::vector<ApiKey>& keys) {
  JsonWriter w;
  w.BeginArray();
  for (const ApiKey& k : keys) {
    WriteKey(w, k);
  }
  w.EndArray();
  return w.Take();
}

StatusOr<ProviderGroup> ParseGroup(std::string_view body) {
  ProviderGroup g;
  TALLY_RETURN_IF_ERROR(ApplyObject(body, GroupFields(), &g));
  persistence::FillDefaults(&g);
  return g;
}

StatusOr<ApiKey> ParseKey(std::string_view body) {
  ApiKey k;
  TALLY_RETURN_IF_ERROR(ApplyObject(body, KeyFields(), &k));
  persistence::FillDefaults(&k);
  return k;
}

StatusOr<std::vector<core::KeyDelta>> ParseFlushBody(std::string_view raw_body) {
  const Status invalid = Status::InvalidArgument("invalid request body");
  const std::string body = CoerceStringsLikeGo(raw_body);
  json::error_code ec;
  json::value doc = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !doc.is_object()) {
    return invalid;
  }
  std::vector<core::KeyDelta> deltas;
  const json::value* keys = nullptr;
  for (const auto& [key, value] : doc.get_object()) {
    if (boost::beast::iequals(std::string_view(key.data(), key.size()), "keys")) {
      keys = &value;  // the last one wins, as in Go
    }
  }
  if (keys == nullptr || keys->is_null()) {
    return deltas;
  }
  if (!keys->is_array()) {
    return invalid;
  }
  deltas.reserve(keys->get_array().size());
  size_t index = 0;
  for (const json::value& entry : keys->get_array()) {
    if (!entry.is_object()) {
      return invalid;
    }
    uint64_t id = 0;
    int64_t requests = 0;
    int64_t successes = 0;
    for (const auto& [key, value] : entry.get_object()) {
      std::string_view name(key.data(), key.size());
      if (value.is_null()) {
        continue;
      }
      if (boost::beast::iequals(name, "api_key_id")) {
        std::optional<uint64_t> v = AsUint64(value);
        if (!v) {
          return invalid;
        }
        id = *v;
      } else if (boost::beast::iequals(name, "requests") ||
                 boost::beast::iequals(name, "success_requests")) {
        std::optional<int64_t> v = AsInt64(value);
        if (!v) {
          return invalid;
        }
        (boost::beast::iequals(name, "requests") ? requests : successes) = *v;
      }
    }
    const std::string where = "invalid request body: keys[" + std::to_string(index) + "]: ";
    if (id == 0 || id > core::kMaxId) {
      return Status::InvalidArgument(where + "api_key_id must be 1 to 2^63-1");
    }
    if (requests < 0 || successes < 0) {
      return Status::InvalidArgument(where + "counts must not be negative");
    }
    if (successes > requests) {
      return Status::InvalidArgument(where + "success_requests exceeds requests");
    }
    if (requests > kMaxFlushEntryRequests) {
      return Status::InvalidArgument(where + "requests exceeds 2^40");
    }
    deltas.push_back(
        {id, static_cast<uint64_t>(successes), static_cast<uint64_t>(requests - successes)});
    ++index;
  }
  return deltas;
}

}  // namespace tally::daemon
