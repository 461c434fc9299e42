// The stored encodings of the outbox (outbox_store.h has the layout) and of the receiver's
// per-source marks (sources_store.h). Pure functions; no thread-safety concerns.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/key_delta.h"
#include "core/status.h"
#include "persistence/records.h"

namespace tally::persistence {

inline constexpr uint8_t kOutboxVersion = 1;

// Keys of the outbox family.
inline constexpr char kOutboxSourceKey[] = "m/source";
inline constexpr char kOutboxSequenceKey[] = "m/seq";
std::string OutboxBatchKey(uint64_t first_sequence);  // "b/" + BE64
std::string OutboxCursorKey(const std::string& consumer);
std::string OutboxDeadKey(const std::string& consumer, uint64_t id);
std::string Be64(uint64_t v);
uint64_t FromBe64(std::string_view bytes);  // 8 bytes

// A batch's value, and its header alone (no deltas decoded).
struct OutboxBatchHead {
  uint64_t last_sequence = 0;
  TimeNs created_at = 0;
  std::string only_for;
  uint64_t keys = 0;
};
std::string EncodeOutboxBatch(const OutboxBatchHead& head, std::span<const core::KeyDelta> deltas);
core::Status DecodeOutboxBatch(std::string_view value, OutboxBatchHead* head,
                               std::vector<core::KeyDelta>* deltas);  // deltas may be null

struct OutboxDeadHead {
  uint64_t last_sequence = 0;
  TimeNs created_at = 0;
  TimeNs dead_at = 0;
  unsigned http_status = 0;
  std::string reason;
  uint64_t keys = 0;
};
std::string EncodeOutboxDead(const OutboxDeadHead& head, const std::vector<core::KeyDelta>& deltas);
core::Status DecodeOutboxDead(std::string_view value, OutboxDeadHead* head,
                              std::vector<core::KeyDelta>* deltas);

// A source's mark in the `sources` family: v1 | varint last_sequence | varint last_seen ns.
std::string EncodeSourceMark(uint64_t last_sequence, TimeNs last_seen);
core::Status DecodeSourceMark(std::string_view value, uint64_t* last_sequence, TimeNs* last_seen);

}  // namespace tally::persistence
