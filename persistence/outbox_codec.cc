#include "persistence/outbox_codec.h"

namespace tally::persistence {
namespace {

using core::Status;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

void PutString(const std::string& s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

bool GetString(std::string_view* in, std::string* s) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) {
    return false;
  }
  s->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

void PutDeltas(std::span<const core::KeyDelta> deltas, std::string* out) {
  PutVarint(deltas.size(), out);
  uint64_t previous = 0;
  for (const core::KeyDelta& d : deltas) {
    PutVarint(d.key - previous, out);
    PutVarint(d.successes, out);
    PutVarint(d.failures, out);
    previous = d.key;
  }
}

bool GetDeltas(std::string_view* in, uint64_t* count, std::vector<core::KeyDelta>* deltas) {
  if (!GetVarint(in, count)) {
    return false;
  }
  if (deltas == nullptr) {
    return true;
  }
  if (*count > in->size()) {  // every delta takes at least 3 bytes
    return false;
  }
  deltas->clear();
  deltas->reserve(*count);
  uint64_t key = 0;
  for (uint64_t i = 0; i < *count; ++i) {
    uint64_t gap = 0;
    core::KeyDelta d;
    if (!GetVarint(in, &gap) || !GetVarint(in, &d.successes) || !GetVarint(in, &d.failures)) {
      return false;
    }
    key += gap;
    d.key = key;
    deltas->push_back(d);
  }
  return in->empty();
}

Status Bad(const char* what) {
  return Status::Corruption(std::string("outbox: cannot decode ") + what);
}

}  // namespace

std::string Be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t FromBe64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return v;
}

std::string OutboxBatchKey(uint64_t first_sequence) { return "b/" + Be64(first_sequence); }
std::string OutboxCursorKey(const std::string& consumer) { return "c/" + consumer; }
std::string OutboxDeadKey(const std::string& consumer, uint64_t id) {
  return "d/" + consumer + std::string(1, '\0') + Be64(id);
}

std::string EncodeOutboxBatch(const OutboxBatchHead& head, std::span<const core::KeyDelta> deltas) {
  std::string out(1, static_cast<char>(kOutboxVersion));
  PutVarint(head.last_sequence, &out);
  PutVarint(static_cast<uint64_t>(head.created_at), &out);
  PutString(head.only_for, &out);
  PutDeltas(deltas, &out);
  return out;
}

Status DecodeOutboxBatch(std::string_view in, OutboxBatchHead* head,
                         std::vector<core::KeyDelta>* deltas) {
  if (in.empty() || static_cast<uint8_t>(in[0]) != kOutboxVersion) {
    return Bad("a batch (unknown version)");
  }
  in.remove_prefix(1);
  uint64_t created = 0;
  if (!GetVarint(&in, &head->last_sequence) || !GetVarint(&in, &created) ||
      !GetString(&in, &head->only_for) || !GetDeltas(&in, &head->keys, deltas)) {
    return Bad("a batch");
  }
  head->created_at = static_cast<TimeNs>(created);
  return Status::Ok();
}

std::string EncodeOutboxDead(const OutboxDeadHead& head,
                             const std::vector<core::KeyDelta>& deltas) {
  std::string out(1, static_cast<char>(kOutboxVersion));
  PutVarint(head.last_sequence, &out);
  PutVarint(static_cast<uint64_t>(head.created_at), &out);
  PutVarint(static_cast<uint64_t>(head.dead_at), &out);
  PutVarint(head.http_status, &out);
  PutString(head.reason, &out);
  PutDeltas(deltas, &out);
  return out;
}

Status DecodeOutboxDead(std::string_view in, OutboxDeadHead* head,
                        std::vector<core::KeyDelta>* deltas) {
  if (in.empty() || static_cast<uint8_t>(in[0]) != kOutboxVersion) {
    return Bad("a dead letter (unknown version)");
  }
  in.remove_prefix(1);
  uint64_t created = 0;
  uint64_t dead = 0;
  uint64_t status = 0;
  if (!GetVarint(&in, &head->last_sequence) || !GetVarint(&in, &created) ||
      !GetVarint(&in, &dead) || !GetVarint(&in, &status) || !GetString(&in, &head->reason) ||
      !GetDeltas(&in, &head->keys, deltas)) {
    return Bad("a dead letter");
  }
  head->created_at = static_cast<TimeNs>(created);
  head->dead_at = static_cast<TimeNs>(dead);
  head->http_status = static_cast<unsigned>(status);
  return Status::Ok();
}

std::string EncodeSourceMark(uint64_t last_sequence, TimeNs last_seen) {
  std::string out(1, static_cast<char>(kOutboxVersion));
  PutVarint(last_sequence, &out);
  PutVarint(static_cast<uint64_t>(last_seen), &out);
  return out;
}

Status DecodeSourceMark(std::string_view in, uint64_t* last_sequence, TimeNs* last_seen) {
  uint64_t seen = 0;
  if (in.empty() || static_cast<uint8_t>(in[0]) != kOutboxVersion) {
    return Status::Corruption("sources: unknown mark version");
  }
  in.remove_prefix(1);
  if (!GetVarint(&in, last_sequence) || !GetVarint(&in, &seen) || !in.empty()) {
    return Status::Corruption("sources: cannot decode a mark");
  }
  *last_seen = static_cast<TimeNs>(seen);
  return Status::Ok();
}

}  // namespace tally::persistence
