#include "persistence/record_rules.h"

namespace tally::persistence {

using core::Status;

void FillDefaults(ProviderGroup* g) {
  if (g->status.empty()) {
    g->status = kDefaultStatus;
  }
}

void FillDefaults(ApiKey* k) {
  if (k->status.empty()) {
    k->status = kDefaultStatus;
  }
}

Status ValidateGroup(ProviderGroup* g) {
  if (g->name.empty()) {
    return Status::InvalidArgument("name is required");
  }
  if (g->type.empty()) {
    return Status::InvalidArgument("type is required");
  }
  if (g->base_url.empty()) {
    return Status::InvalidArgument("base_url is required");
  }
  FillDefaults(g);
  return Status::Ok();
}

Status ValidateKey(ApiKey* k) {
  if (k->api_key.empty()) {
    return Status::InvalidArgument("api_key is required");
  }
  if (k->weight < 0) {
    return Status::InvalidArgument("weight must not be negative");
  }
  FillDefaults(k);
  return Status::Ok();
}

Status CheckId(uint64_t id) {
  return IdInRange(id) ? Status::Ok() : Status::InvalidArgument("id must be 1 to 2^63-1");
}

std::string GroupName(uint64_t id) { return "provider group " + std::to_string(id); }
std::string KeyName(uint64_t id) { return "api key " + std::to_string(id); }

}  // namespace tally::persistence
