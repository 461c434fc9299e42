// GroupMetrics: per-group sums of committed deltas, bounded by kMaxGroups.
#include "daemon/ops/group_metrics.h"

#include <gtest/gtest.h>

#include <vector>

namespace tally::daemon {
namespace {

persistence::AppliedDelta Delta(uint64_t key, uint64_t group, int64_t s, int64_t f) {
  persistence::AppliedDelta d;
  d.key = key;
  d.group_id = group;
  d.delta.Add(s, f);
  return d;
}

void Commit(GroupMetrics& m, const std::vector<persistence::AppliedDelta>& applied) {
  persistence::FlushView view;
  view.applied = applied;
  ASSERT_TRUE(m.Stage(view, nullptr).ok());
  m.Commit(view);
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(GroupMetrics, SumsByGroupAcrossFlushesAndAlwaysShowsTheUnassigned) {
  GroupMetrics m;
  std::string text;
  m.Render(&text);
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="0",outcome="success"} 0)"));
  Commit(m, {Delta(1, 7, 2, 1), Delta(2, 7, 3, 0), Delta(3, 0, 0, 4), Delta(4, 7, 0, 1)});
  Commit(m, {Delta(1, 7, 1, 1)});
  text.clear();
  m.Render(&text);
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="7",outcome="success"} 6)"));
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="7",outcome="failure"} 3)"));
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="0",outcome="failure"} 4)"));
  EXPECT_EQ(text.find(R"(group_id="other")"), std::string::npos);
}

TEST(GroupMetrics, GroupsPastTheBoundGoToOther) {
  GroupMetrics m;
  std::vector<persistence::AppliedDelta> applied;
  for (uint64_t g = 1; g <= GroupMetrics::kMaxGroups + 5; ++g) {
    applied.push_back(Delta(g, g, 1, 0));
  }
  Commit(m, applied);
  std::string text;
  m.Render(&text);
  // Group 0 holds one of the 1,000 series: groups 1..999 have theirs, the 6 after go to other.
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="999",outcome="success"} 1)"));
  EXPECT_EQ(text.find(R"(group_id="1000")"), std::string::npos);
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="other",outcome="success"} 6)"));
  Commit(m, {Delta(1, 1, 1, 0)});  // a group with a series keeps it
  text.clear();
  m.Render(&text);
  EXPECT_TRUE(Has(text, R"(tallyd_group_increments_total{group_id="1",outcome="success"} 2)"));
}

}  // namespace
}  // namespace tally::daemon
