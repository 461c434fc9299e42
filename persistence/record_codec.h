// Binary encodings of the stored values. Every value starts with a format version byte;
// decoding an unknown version is a Corruption status, never a silent misread. New fields are
// appended under a new version, and older versions stay decodable.
//
// Layout (little-endian fixed-width integers, strings as u32 length + bytes):
//   group  : v1 | id | created | updated | has_deleted deleted | 9 strings | totals(3 x i64)
//   key    : v2 | id | created | updated | has_deleted deleted | group_id | api_key |
//            access_token | refresh_token | expires_at | account_id | project_id | weight |
//            status | u8 auto_ban | ban_reason | ban_until
//            where expires_at and ban_until are each 00, or 01 | i64 unix seconds | u32 nanos
//            | i16 offset minutes (core::OffsetTime; Corruption unless Valid())
//            v1 | the same, but expires_at and ban_until are u8 has | i64 Unix nanoseconds
//            (UTC), like deleted_at (still decoded, no longer written)
//   totals : v2 | varint success | varint failure        (total = success + failure)
//            v1 | total | success | failure             (still decoded, no longer written)
//   idem   : v2 | written_at | digest (string: SHA-256, 32 bytes) | response (string)
//            v1 | written_at | u64 FNV-1a-64 of the body | response (still decoded)
// Totals (key and group) must be consistent and within 0..2^63-1 (core/totals.h); a value
// outside that is Corruption, never a silent wrap.
// Key totals live apart from the key record (see docs/architecture.md), so a flush rewrites
// a few bytes per key (3 to 21; 25 in v1) instead of the whole record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/totals.h"
#include "persistence/records.h"

namespace tally::persistence {

// The version of group values, and the database's format stamp (db.cc).
inline constexpr uint8_t kFormatVersion = 1;
// Key values are written in version 2 (expires_at and ban_until as core::OffsetTime, Go's
// whole RFC 3339 range); version 1 values (int64 Unix nanoseconds) still decode, at UTC. A
// build that reads only version 1 refuses to open a database holding a version 2 key
// (Corruption "unknown key format version 2"), changing nothing.
inline constexpr uint8_t kKeyVersion = 2;
// Totals values are written in version 2 (varints); version 1 values still decode.
inline constexpr uint8_t kTotalsVersion = 2;
// Idempotent answers are written in version 2 (a SHA-256 digest); version 1 values (an
// FNV-1a-64 hash) still decode, their digest being the hash's 8 bytes, little-endian.
inline constexpr uint8_t kIdempotentVersion = 2;

std::string EncodeGroup(const ProviderGroup& group);
core::Status DecodeGroup(std::string_view in, ProviderGroup* group);

// Encodes every field but totals, in version kKeyVersion.
std::string EncodeKey(const ApiKey& key);
// Decodes versions 1 and 2.
core::Status DecodeKey(std::string_view in, ApiKey* key);

// Decodes only what the store keeps in memory for every key: id, liveness, group id. Same
// checks as DecodeKey on the version and on truncation of those fields.
core::Status DecodeKeyHead(std::string_view in, uint64_t* id, bool* live, uint64_t* group_id);

void EncodeTotals(const core::Totals& totals, std::string* out);
core::Status DecodeTotals(std::string_view in, core::Totals* totals);

// An idempotent answer (version 2): when it was written, the digest of the request it
// answered, and the answer body.
std::string EncodeIdempotent(TimeNs written_at, std::string_view request_digest,
                             const std::string& response);
// Decodes versions 1 and 2; a version 1 answer's digest is its 8-byte hash (see above).
core::Status DecodeIdempotent(std::string_view in, TimeNs* written_at, std::string* request_digest,
                              std::string* response);

// Big-endian ids, so RocksDB's bytewise order is id order.
std::string IdKey(uint64_t id);
uint64_t IdFromKey(std::string_view key);

}  // namespace tally::persistence
