// GroupMetrics: per-provider-group increments committed since start, for /metrics
// (tallyd_group_increments_total{group_id,outcome}), so an alert can watch a group's failure
// rate (monitoring/prometheus/tallyd-rules.yml, TallydGroupFailureRate).
//
// A FlushParticipant that writes nothing: at each committed flush (traffic and internal) it
// adds the applied deltas to their group's sums, by the group the key was counted in. The
// series only grow (a key moved or deleted later takes nothing back), as Prometheus counters
// must; lifetime totals, which do move with keys, are the records' business. Bounded: at most
// kMaxGroups group series; deltas of groups beyond them (in the order groups first commit)
// go to group_id="other". Group 0 is the unassigned keys.
//
// Thread safety: Commit runs under the store's write lock; Render from any thread. A mutex
// guards the sums; a flush holds it for one pass over its applied deltas.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "persistence/flush_participant.h"

namespace tally::daemon {

class GroupMetrics : public persistence::FlushParticipant {
 public:
  static constexpr size_t kMaxGroups = 1000;

  core::Status Stage(const persistence::FlushView& flush, rocksdb::WriteBatch* batch) override;
  void Commit(const persistence::FlushView& flush) override;
  void Abort() override {}

  // Appends the family in the Prometheus text format (HELP, TYPE, one sample per group and
  // outcome, groups in id order, "other" last when used).
  void Render(std::string* out) const;

 private:
  struct Sums {
    uint64_t success = 0;
    uint64_t failure = 0;
  };
  mutable std::mutex mu_;
  // Guarded by mu_. The unassigned keys' group is always there, so the family always has
  // samples (alerts and dashboards can rely on the name before the first flush).
  std::map<uint64_t, Sums> groups_{{0, Sums{}}};
  Sums other_;               // guarded by mu_
  bool other_used_ = false;  // guarded by mu_
};

}  // namespace tally::daemon
