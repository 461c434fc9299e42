#include "daemon/ops/group_metrics.h"

#include <fmt/format.h>

namespace tally::daemon {

core::Status GroupMetrics::Stage(const persistence::FlushView& /*flush*/,
                                 rocksdb::WriteBatch* /*batch*/) {
  return core::Status::Ok();  // nothing to persist: the sums count since start
}

void GroupMetrics::Commit(const persistence::FlushView& flush) {
  std::lock_guard lock(mu_);
  // Keys of one group are often numbered together: remember the last group's sums.
  uint64_t last_group = ~uint64_t{0};
  Sums* last = nullptr;
  for (const persistence::AppliedDelta& d : flush.applied) {
    if (last == nullptr || d.group_id != last_group) {
      auto it = groups_.find(d.group_id);
      if (it != groups_.end()) {
        last = &it->second;
      } else if (groups_.size() < kMaxGroups) {
        last = &groups_[d.group_id];
      } else {
        last = &other_;
        other_used_ = true;
      }
      last_group = d.group_id;
    }
    // Totals within a flush are at most 2^63-1 each (the overflow rule), and the sums only
    // count what committed since start: they cannot wrap a uint64 in any real run.
    last->success += static_cast<uint64_t>(d.delta.success);
    last->failure += static_cast<uint64_t>(d.delta.failure);
  }
}

void GroupMetrics::Render(std::string* out) const {
  std::lock_guard lock(mu_);
  *out +=
      "# HELP tallyd_group_increments_total Increments committed since start, by the provider "
      "group their key was in (group_id 0: unassigned; \"other\": past the first 1000 groups).\n"
      "# TYPE tallyd_group_increments_total counter\n";
  auto sample = [out](std::string_view group, const Sums& s) {
    *out += fmt::format(
        "tallyd_group_increments_total{{group_id=\"{}\",outcome=\"success\"}} {}\n"
        "tallyd_group_increments_total{{group_id=\"{}\",outcome=\"failure\"}} {}\n",
        group, s.success, group, s.failure);
  };
  for (const auto& [id, sums] : groups_) {
    sample(std::to_string(id), sums);
  }
  if (other_used_) {
    sample("other", other_);
  }
}

}  // namespace tally::daemon
