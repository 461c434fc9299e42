// The stored encodings of the ban rule's state, all in the `bans` column family:
//   "s" + id (8 bytes, big-endian)   a key's ban state: version 1, backoff level, flags
//                                    (half-open, cooling). Absent: level 0, neither flag.
//   "e" + event id (8 bytes, BE)     one event of the log (ban, unban, policy), in id order.
//   "p"                              the ban policy set by PUT /admin/ban-policy.
// Each value begins with its format version; an unknown version is Corruption.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/ban_policy.h"
#include "core/status.h"
#include "persistence/records.h"

namespace tally::persistence {

inline constexpr char kBanStatePrefix = 's';
inline constexpr char kBanEventPrefix = 'e';
inline constexpr char kBanPolicyKey[] = "p";

// One event of the ban log; `id` orders them and is the SSE event id.
struct BanEvent {
  enum class Type : uint8_t { kBan = 1, kUnban = 2, kPolicy = 3 };
  uint64_t id = 0;
  Type type = Type::kBan;
  TimeNs at = 0;              // the store's clock
  uint64_t key = 0;           // ban, unban
  uint64_t group_id = 0;      // ban, unban
  int64_t ban_until_ns = 0;   // ban
  uint8_t backoff_level = 0;  // ban
  std::string rule;           // ban: core::BanRuleName; unban: "expired" or "operator"
  std::string reason;         // ban: the ban_reason; policy: the policy as JSON
  bool operator==(const BanEvent&) const = default;
};

std::string_view BanEventTypeName(BanEvent::Type type);  // "ban", "unban", "policy"

std::string BanStateKey(uint64_t key);
std::string BanEventKey(uint64_t id);
// The id of a "s" or "e" key (its 8 bytes after the prefix); 0 when malformed.
uint64_t BanKeyId(std::string_view stored_key);

std::string EncodeBanState(uint8_t level, bool half_open, bool cooling);
core::Status DecodeBanState(std::string_view in, uint8_t* level, bool* half_open, bool* cooling);

std::string EncodeBanEvent(const BanEvent& e);
core::Status DecodeBanEvent(std::string_view in, BanEvent* e);

std::string EncodeBanPolicy(const core::BanPolicy& p);
// Also validates the policy (Corruption when it is out of range).
core::Status DecodeBanPolicy(std::string_view in, core::BanPolicy* p);

}  // namespace tally::persistence
