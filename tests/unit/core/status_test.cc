// Status, StatusOr, TALLY_RETURN_IF_ERROR and the clocks of core/clock.h.
#include "core/status.h"

#include <gtest/gtest.h>

#include <string>

#include "core/clock.h"

namespace tally::core {
namespace {

Status FailIf(bool fail, int* calls) {
  ++*calls;
  return fail ? Status::IoError("disk") : Status::Ok();
}

StatusOr<int> TwoSteps(bool fail_first, int* calls) {
  TALLY_RETURN_IF_ERROR(FailIf(fail_first, calls));
  TALLY_RETURN_IF_ERROR(FailIf(false, calls));
  return 7;
}

TEST(StatusTest, ReturnIfErrorReturnsTheFirstErrorAndEvaluatesOnce) {
  int calls = 0;
  StatusOr<int> r = TwoSteps(true, &calls);
  EXPECT_EQ(calls, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIoError);
  calls = 0;
  r = TwoSteps(false, &calls);
  EXPECT_EQ(calls, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);
}

TEST(StatusTest, ToStringNamesTheCodeAndMessage) {
  EXPECT_EQ(Status::Ok().ToString(), "OK");
  EXPECT_EQ(Status::NotFound("no api key 3").ToString(), "NotFound: no api key 3");
}

// The check holds in release builds too (this suite runs in Release).
TEST(StatusOrDeathTest, ValueOfAnErrorAbortsNamingTheStatus) {
  const StatusOr<std::string> r = Status::NotFound("no api key 3");
  EXPECT_DEATH((void)r.value(), "value\\(\\) of a StatusOr holding NotFound: no api key 3");
  EXPECT_DEATH((void)r->size(), "NotFound: no api key 3");
  EXPECT_DEATH((void)*r, "NotFound: no api key 3");
  EXPECT_DEATH((void)StatusOr<int>(Status::Ok()), "StatusOr built from an OK Status");
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(100);
  const Clock& c = clock;
  EXPECT_EQ(c.NowNs(), 100);
  clock.Advance(50);
  EXPECT_EQ(c.NowNs(), 150);
  clock.Set(7);
  EXPECT_EQ(c.NowNs(), 7);
}

TEST(ClockTest, SystemClockIsUnixTime) {
  // 2020-01-01 and 2100-01-01, in Unix ns: a wall clock, not a steady one.
  const int64_t now = SystemClock::Get().NowNs();
  EXPECT_GT(now, 1'577'836'800'000'000'000);
  EXPECT_LT(now, 4'102'444'800'000'000'000);
  EXPECT_LE(now, UnixNowNs());
}

}  // namespace
}  // namespace tally::core
