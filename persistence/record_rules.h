// The domain rules of ProviderGroup and ApiKey records, in one place: which fields a record
// needs, the defaults of empty ones, the range of ids, and how a record is named in errors.
// The Store applies them on every write (record_store.cc); the HTTP layer applies the
// defaults when it parses a body (daemon/api/record_json.cc), so both agree.
//
// The invariant the Store keeps with them (record_store.cc, flush_apply.cc, checked by
// Store::Verify): a key's total = success + failure; each live group's totals = the sum over
// its live keys; the sum over every live key stays within 0..2^63-1.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>

#include "core/limits.h"
#include "core/status.h"
#include "persistence/records.h"

namespace tally::persistence {

// Empty fields that have a default get it: status kDefaultStatus.
void FillDefaults(ProviderGroup* g);
void FillDefaults(ApiKey* k);

// FillDefaults, then InvalidArgument naming the first missing or wrong field: a group needs
// name, type and base_url; a key needs api_key and a weight of 0 or more.
core::Status ValidateGroup(ProviderGroup* g);
core::Status ValidateKey(ApiKey* k);

// Ids are 1..2^63-1 (0 asks for an automatic id where a create allows it).
inline bool IdInRange(uint64_t id) { return id != 0 && id <= core::kMaxId; }
// InvalidArgument unless IdInRange(id).
core::Status CheckId(uint64_t id);

// "provider group 7", "api key 7": how errors name records.
std::string GroupName(uint64_t id);
std::string KeyName(uint64_t id);

}  // namespace tally::persistence
