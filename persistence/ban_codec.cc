#include "persistence/ban_codec.h"

#include <bit>
#include <cstring>

namespace tally::persistence {
namespace {

constexpr char kVersion = 1;

void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out->push_back(static_cast<char>(v >> (8 * i)));
  }
}

void PutStr(std::string* out, std::string_view s) {
  PutU64(out, s.size());
  out->append(s);
}

// Reads from the front of `in`; false when too short.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.empty()) {
      return false;
    }
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U64(uint64_t* v) {
    if (in_.size() < 8) {
      return false;
    }
    *v = 0;
    for (int i = 0; i < 8; ++i) {
      *v = *v << 8 | static_cast<uint8_t>(in_[i]);
    }
    in_.remove_prefix(8);
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u = 0;
    if (!U64(&u)) {
      return false;
    }
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool Str(std::string* s) {
    uint64_t n = 0;
    if (!U64(&n) || n > in_.size()) {
      return false;
    }
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

core::Status Bad(std::string_view what) {
  return core::Status::Corruption("bad stored " + std::string(what));
}

bool Versioned(Reader& r) {
  uint8_t v = 0;
  return r.U8(&v) && v == kVersion;
}

void PutCodes(std::string* out, const std::vector<int>& codes) {
  out->push_back(static_cast<char>(codes.size()));
  for (int c : codes) {
    out->push_back(static_cast<char>(c >> 8));
    out->push_back(static_cast<char>(c & 0xff));
  }
}

bool GetCodes(Reader& r, std::vector<int>* codes) {
  uint8_t n = 0;
  if (!r.U8(&n)) {
    return false;
  }
  codes->clear();
  for (uint8_t i = 0; i < n; ++i) {
    uint8_t hi = 0;
    uint8_t lo = 0;
    if (!r.U8(&hi) || !r.U8(&lo)) {
      return false;
    }
    codes->push_back(hi << 8 | lo);
  }
  return true;
}

std::string PrefixedId(char prefix, uint64_t id) {
  std::string out(1, prefix);
  PutU64(&out, id);
  return out;
}

}  // namespace

std::string_view BanEventTypeName(BanEvent::Type type) {
  switch (type) {
    case BanEvent::Type::kBan:
      return "ban";
    case BanEvent::Type::kUnban:
      return "unban";
    case BanEvent::Type::kPolicy:
      return "policy";
  }
  return "ban";
}

std::string BanStateKey(uint64_t key) { return PrefixedId(kBanStatePrefix, key); }
std::string BanEventKey(uint64_t id) { return PrefixedId(kBanEventPrefix, id); }

uint64_t BanKeyId(std::string_view stored_key) {
  if (stored_key.size() != 9) {
    return 0;
  }
  Reader r(stored_key.substr(1));
  uint64_t id = 0;
  return r.U64(&id) ? id : 0;
}

std::string EncodeBanState(uint8_t level, bool half_open, bool cooling) {
  std::string out;
  out.push_back(kVersion);
  out.push_back(static_cast<char>(level));
  out.push_back(static_cast<char>((half_open ? 1 : 0) | (cooling ? 2 : 0)));
  return out;
}

core::Status DecodeBanState(std::string_view in, uint8_t* level, bool* half_open, bool* cooling) {
  Reader r(in);
  uint8_t flags = 0;
  if (!Versioned(r) || !r.U8(level) || !r.U8(&flags) || !r.done() || flags > 3) {
    return Bad("ban state");
  }
  *half_open = (flags & 1) != 0;
  *cooling = (flags & 2) != 0;
  return core::Status::Ok();
}

std::string EncodeBanEvent(const BanEvent& e) {
  std::string out;
  out.push_back(kVersion);
  out.push_back(static_cast<char>(e.type));
  PutU64(&out, e.id);
  PutU64(&out, static_cast<uint64_t>(e.at));
  PutU64(&out, e.key);
  PutU64(&out, e.group_id);
  PutU64(&out, static_cast<uint64_t>(e.ban_until_ns));
  out.push_back(static_cast<char>(e.backoff_level));
  PutStr(&out, e.rule);
  PutStr(&out, e.reason);
  return out;
}

core::Status DecodeBanEvent(std::string_view in, BanEvent* e) {
  Reader r(in);
  uint8_t type = 0;
  if (!Versioned(r) || !r.U8(&type) || type < 1 || type > 3 || !r.U64(&e->id) || !r.I64(&e->at) ||
      !r.U64(&e->key) || !r.U64(&e->group_id) || !r.I64(&e->ban_until_ns) ||
      !r.U8(&e->backoff_level) || !r.Str(&e->rule) || !r.Str(&e->reason) || !r.done()) {
    return Bad("ban event");
  }
  e->type = static_cast<BanEvent::Type>(type);
  return core::Status::Ok();
}

std::string EncodeBanPolicy(const core::BanPolicy& p) {
  std::string out;
  out.push_back(kVersion);
  PutU64(&out, static_cast<uint64_t>(p.window_seconds));
  PutU64(&out, static_cast<uint64_t>(p.min_requests));
  PutU64(&out, std::bit_cast<uint64_t>(p.failure_rate));
  PutU64(&out, static_cast<uint64_t>(p.consecutive_failures));
  PutCodes(&out, p.immediate_codes);
  PutCodes(&out, p.cooldown_codes);
  PutU64(&out, static_cast<uint64_t>(p.cooldown_seconds));
  PutU64(&out, static_cast<uint64_t>(p.max_cooldown_seconds));
  out.push_back(p.keep_one_active ? 1 : 0);
  return out;
}

core::Status DecodeBanPolicy(std::string_view in, core::BanPolicy* p) {
  Reader r(in);
  uint64_t rate = 0;
  uint8_t keep = 0;
  if (!Versioned(r) || !r.I64(&p->window_seconds) || !r.I64(&p->min_requests) || !r.U64(&rate) ||
      !r.I64(&p->consecutive_failures) || !GetCodes(r, &p->immediate_codes) ||
      !GetCodes(r, &p->cooldown_codes) || !r.I64(&p->cooldown_seconds) ||
      !r.I64(&p->max_cooldown_seconds) || !r.U8(&keep) || keep > 1 || !r.done()) {
    return Bad("ban policy");
  }
  p->failure_rate = std::bit_cast<double>(rate);
  p->keep_one_active = keep == 1;
  if (core::Status s = p->Validate(); !s.ok()) {
    return core::Status::Corruption("stored " + s.message());
  }
  return core::Status::Ok();
}

}  // namespace tally::persistence
