// ProviderGroup and ApiKey: the records of ez-api's model (shared/reference/provider_group.go),
// with the same fields. An unset optional time is JSON null.
//
// Times: CreatedAt, UpdatedAt and DeletedAt come from tallyd's own clock and are Unix
// nanoseconds (TimeNs, UTC). expires_at and ban_until come from a control plane and hold what
// Go's time.Time can (core::OffsetTime: years 0000-9999, nanoseconds, the offset as given).
//
// gorm soft delete: a deleted record keeps its row with deleted_at set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/offset_time.h"
#include "core/totals.h"

namespace tally::persistence {

using TimeNs = int64_t;

// Group 0 is "unassigned": never stored, it collects keys first seen through an increment.
inline constexpr uint64_t kUnassignedGroup = 0;

// A record's status when none is given (gorm's default for a zero value). The other rules
// about records (validation, defaults of empty fields): record_rules.h.
inline constexpr char kDefaultStatus[] = "active";

struct ProviderGroup {
  uint64_t id = 0;
  TimeNs created_at = 0;
  TimeNs updated_at = 0;
  std::optional<TimeNs> deleted_at;
  std::string name;
  std::string type;
  std::string base_url;
  std::string google_project;
  std::string google_location;
  std::string static_headers;
  std::string headers_profile;
  std::string models;
  std::string status = kDefaultStatus;
  core::Totals totals;

  bool live() const { return !deleted_at.has_value(); }
  bool operator==(const ProviderGroup&) const = default;
};

struct ApiKey {
  uint64_t id = 0;
  TimeNs created_at = 0;
  TimeNs updated_at = 0;
  std::optional<TimeNs> deleted_at;
  uint64_t group_id = kUnassignedGroup;
  std::string api_key;
  std::string access_token;
  std::string refresh_token;  // stored, never rendered, never logged
  std::optional<core::OffsetTime> expires_at;
  std::string account_id;
  std::string project_id;
  int64_t weight = 1;
  std::string status = kDefaultStatus;
  bool auto_ban = true;
  std::string ban_reason;
  std::optional<core::OffsetTime> ban_until;
  core::Totals totals;

  bool live() const { return !deleted_at.has_value(); }
  bool operator==(const ApiKey&) const = default;
};

}  // namespace tally::persistence
