#include "persistence/record_codec.h"

#include <cstring>

namespace tally::persistence {
namespace {

using core::Status;

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U64(uint64_t v) {
    char buf[8];
    for (int i = 0; i < 8; ++i) {
      buf[i] = static_cast<char>(v >> (8 * i));
    }
    out_->append(buf, 8);
  }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Str(std::string_view s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) {
      out_->push_back(static_cast<char>(n >> (8 * i)));
    }
    out_->append(s);
  }
  void Fixed(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
      out_->push_back(static_cast<char>(v >> (8 * i)));
    }
  }
  void OptTime(const std::optional<TimeNs>& t) {
    U8(t.has_value() ? 1 : 0);
    I64(t.value_or(0));
  }
  // Key version 2: 0, or 1 | i64 unix seconds | u32 nanos | i16 offset minutes.
  void OptOffsetTime(const std::optional<core::OffsetTime>& t) {
    U8(t.has_value() ? 1 : 0);
    if (t) {
      I64(t->unix_seconds);
      Fixed(t->nanos, 4);
      Fixed(static_cast<uint16_t>(t->offset_minutes), 2);
    }
  }
  void Totals(const core::Totals& t) {
    I64(t.total);
    I64(t.success);
    I64(t.failure);
  }

 private:
  std::string* out_;
};

// Reads fields in order; after the first short read every call fails and ok() is false.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }
  uint8_t U8() {
    if (!Need(1)) {
      return 0;
    }
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint64_t Fixed(size_t bytes) {
    if (!Need(bytes)) {
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    }
    in_.remove_prefix(bytes);
    return v;
  }
  uint64_t U64() { return Fixed(8); }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) {
        return 0;
      }
      uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
    ok_ = false;  // more than 10 bytes
    return 0;
  }
  std::string Str() {
    if (!Need(4)) {
      return {};
    }
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) {
      n |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    }
    in_.remove_prefix(4);
    if (!Need(n)) {
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::optional<TimeNs> OptTime() {
    uint8_t has = U8();
    int64_t t = I64();
    if (has > 1) {
      ok_ = false;
    }
    return has == 1 ? std::optional<TimeNs>(t) : std::nullopt;
  }
  // Version 1 of a key: Unix nanoseconds, read as the same instant at UTC.
  std::optional<core::OffsetTime> OptTimeV1() {
    std::optional<TimeNs> t = OptTime();
    return t ? std::optional(core::OffsetTime::FromUnixNs(*t)) : std::nullopt;
  }
  // Version 2; a time Go could not render (nanos, offset or local year out of range) fails.
  std::optional<core::OffsetTime> OptOffsetTime() {
    const uint8_t has = U8();
    if (has != 1) {
      ok_ = ok_ && has == 0;
      return std::nullopt;
    }
    core::OffsetTime t;
    t.unix_seconds = I64();
    t.nanos = static_cast<uint32_t>(Fixed(4));
    t.offset_minutes = static_cast<int16_t>(static_cast<uint16_t>(Fixed(2)));
    ok_ = ok_ && t.Valid();
    return t;
  }
  core::Totals Totals() {
    core::Totals t;
    t.total = I64();
    t.success = I64();
    t.failure = I64();
    return t;
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view in_;
  bool ok_ = true;
};

Status CheckVersion(Reader& r, const char* what) {
  uint8_t version = r.U8();
  if (!r.ok()) {
    return Status::Corruption(std::string("empty ") + what + " value");
  }
  if (version != kFormatVersion) {
    return Status::Corruption(std::string("unknown ") + what + " format version " +
                              std::to_string(version) + " (this build reads version " +
                              std::to_string(kFormatVersion) + ")");
  }
  return Status::Ok();
}

// A key's version (1 or kKeyVersion) into *version.
Status CheckKeyVersion(Reader& r, uint8_t* version) {
  *version = r.U8();
  if (!r.ok()) {
    return Status::Corruption("empty key value");
  }
  if (*version != 1 && *version != kKeyVersion) {
    return Status::Corruption("unknown key format version " + std::to_string(*version) +
                              " (this build reads versions 1 and " + std::to_string(kKeyVersion) +
                              ")");
  }
  return Status::Ok();
}

Status Finish(const Reader& r, const char* what) {
  if (!r.ok() || !r.done()) {
    return Status::Corruption(std::string("truncated or oversized ") + what + " value");
  }
  return Status::Ok();
}

}  // namespace

std::string EncodeGroup(const ProviderGroup& g) {
  std::string out;
  Writer w(&out);
  w.U8(kFormatVersion);
  w.U64(g.id);
  w.I64(g.created_at);
  w.I64(g.updated_at);
  w.OptTime(g.deleted_at);
  for (const std::string* s : {&g.name, &g.type, &g.base_url, &g.google_project, &g.google_location,
                               &g.static_headers, &g.headers_profile, &g.models, &g.status}) {
    w.Str(*s);
  }
  w.Totals(g.totals);
  return out;
}

Status DecodeGroup(std::string_view in, ProviderGroup* g) {
  Reader r(in);
  TALLY_RETURN_IF_ERROR(CheckVersion(r, "group"));
  g->id = r.U64();
  g->created_at = r.I64();
  g->updated_at = r.I64();
  g->deleted_at = r.OptTime();
  for (std::string* s : {&g->name, &g->type, &g->base_url, &g->google_project, &g->google_location,
                         &g->static_headers, &g->headers_profile, &g->models, &g->status}) {
    *s = r.Str();
  }
  g->totals = r.Totals();
  if (r.ok() && !g->totals.consistent()) {
    return Status::Corruption("group totals out of range or inconsistent");
  }
  return Finish(r, "group");
}

std::string EncodeKey(const ApiKey& k) {
  std::string out;
  Writer w(&out);
  w.U8(kKeyVersion);
  w.U64(k.id);
  w.I64(k.created_at);
  w.I64(k.updated_at);
  w.OptTime(k.deleted_at);
  w.U64(k.group_id);
  for (const std::string* s : {&k.api_key, &k.access_token, &k.refresh_token}) {
    w.Str(*s);
  }
  w.OptOffsetTime(k.expires_at);
  for (const std::string* s : {&k.account_id, &k.project_id}) {
    w.Str(*s);
  }
  w.I64(k.weight);
  w.Str(k.status);
  w.U8(k.auto_ban ? 1 : 0);
  w.Str(k.ban_reason);
  w.OptOffsetTime(k.ban_until);
  return out;
}

Status DecodeKey(std::string_view in, ApiKey* k) {
  Reader r(in);
  uint8_t version = 0;
  TALLY_RETURN_IF_ERROR(CheckKeyVersion(r, &version));
  auto opt_time = [&r, version] { return version == 1 ? r.OptTimeV1() : r.OptOffsetTime(); };
  k->id = r.U64();
  k->created_at = r.I64();
  k->updated_at = r.I64();
  k->deleted_at = r.OptTime();
  k->group_id = r.U64();
  for (std::string* s : {&k->api_key, &k->access_token, &k->refresh_token}) {
    *s = r.Str();
  }
  k->expires_at = opt_time();
  for (std::string* s : {&k->account_id, &k->project_id}) {
    *s = r.Str();
  }
  k->weight = r.I64();
  k->status = r.Str();
  k->auto_ban = r.U8() != 0;
  k->ban_reason = r.Str();
  k->ban_until = opt_time();
  return Finish(r, "key");
}

Status DecodeKeyHead(std::string_view in, uint64_t* id, bool* live, uint64_t* group_id) {
  Reader r(in);
  uint8_t version = 0;  // versions 1 and 2 share the head
  TALLY_RETURN_IF_ERROR(CheckKeyVersion(r, &version));
  *id = r.U64();
  (void)r.I64();  // created_at
  (void)r.I64();  // updated_at
  *live = !r.OptTime().has_value();
  *group_id = r.U64();
  if (!r.ok()) {
    return Status::Corruption("truncated key value");
  }
  return Status::Ok();
}

void EncodeTotals(const core::Totals& t, std::string* out) {
  out->clear();
  Writer w(out);
  w.U8(kTotalsVersion);
  w.Varint(static_cast<uint64_t>(t.success));
  w.Varint(static_cast<uint64_t>(t.failure));
}

Status DecodeTotals(std::string_view in, core::Totals* t) {
  Reader r(in);
  uint8_t version = r.U8();
  if (!r.ok()) {
    return Status::Corruption("empty totals value");
  }
  if (version == 1) {  // fixed-width total, success, failure
    *t = r.Totals();
  } else if (version == kTotalsVersion) {
    *t = {};
    const uint64_t success = r.Varint();
    const uint64_t failure = r.Varint();
    if (!t->CanAdd(success, failure)) {
      return Status::Corruption("totals out of range (above 2^63-1)");
    }
    t->Add(static_cast<int64_t>(success), static_cast<int64_t>(failure));
  } else {
    return Status::Corruption("unknown totals format version " + std::to_string(version) +
                              " (this build reads versions 1 and " +
                              std::to_string(kTotalsVersion) + ")");
  }
  if (r.ok() && !t->consistent()) {
    return Status::Corruption("totals out of range or inconsistent");
  }
  return Finish(r, "totals");
}

std::string EncodeIdempotent(TimeNs written_at, std::string_view request_digest,
                             const std::string& response) {
  std::string out;
  Writer w(&out);
  w.U8(kIdempotentVersion);
  w.I64(written_at);
  w.Str(request_digest);
  w.Str(response);
  return out;
}

Status DecodeIdempotent(std::string_view in, TimeNs* written_at, std::string* request_digest,
                        std::string* response) {
  Reader r(in);
  const uint8_t version = r.U8();
  if (!r.ok()) {
    return Status::Corruption("empty idempotent answer value");
  }
  *written_at = r.I64();
  if (version == 1) {  // a 64-bit FNV-1a hash: its 8 bytes, little-endian
    const uint64_t hash = r.U64();
    request_digest->clear();
    Writer(request_digest).U64(hash);
  } else if (version == kIdempotentVersion) {
    *request_digest = r.Str();
  } else {
    return Status::Corruption("unknown idempotent answer format version " +
                              std::to_string(version) + " (this build reads versions 1 and " +
                              std::to_string(kIdempotentVersion) + ")");
  }
  *response = r.Str();
  return Finish(r, "idempotent answer");
}

std::string IdKey(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(id >> (8 * (7 - i)));
  }
  return out;
}

uint64_t IdFromKey(std::string_view key) {
  uint64_t id = 0;
  for (size_t i = 0; i < key.size() && i < 8; ++i) {
    id = (id << 8) | static_cast<uint8_t>(key[i]);
  }
  return id;
}

}  // namespace tally::persistence
