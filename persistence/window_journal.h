// The window journal (window_store.h): each flush's applied key deltas as one value, kept in
// the `windows` family until the flush's minute is rolled up into per-key buckets.
//
//   key:   <0x00><minute start: 8 bytes BE><epoch: 8 bytes BE>   (17 bytes; bucket keys start
//          with a resolution byte 1..3, so the journal sorts before every bucket)
//   value: <version 1><count: varint> then per delta, in key order: <key - previous key:
//          varint><success: varint><failure: varint>
//   progress of a closed minute's rollup: <0x00><minute start: 8 bytes BE> (9 bytes, before
//          the minute's entries) -> <the last key rolled up: 8 bytes BE>
//
// Pure functions; thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/windows.h"
#include "persistence/flush_participant.h"

namespace tally::persistence {

inline constexpr char kJournalTag = 0;

// a + b per count, saturating at 2^63-1: a bucket of the whole gathers every delta ever
// applied, deleted keys' too, which the lifetime overflow rule (FlushRules) does not bound.
inline core::Totals SaturatingSum(const core::Totals& a, const core::Totals& b) {
  const auto add = [](int64_t x, int64_t y) {
    return x > core::kMaxCount - y ? core::kMaxCount : x + y;
  };
  core::Totals out;
  out.success = add(a.success, b.success);
  out.failure = add(a.failure, b.failure);
  out.total = add(out.success, out.failure);
  if (out.total == core::kMaxCount) {  // keep total = success + failure
    out.failure = std::min(out.failure, core::kMaxCount - out.success);
  }
  return out;
}

std::string EncodeJournalKey(core::UnixSeconds minute, uint64_t epoch);
// The first key of a minute's journal entries, and the first key past them.
std::string JournalMinuteBegin(core::UnixSeconds minute);
// The key of a minute's rollup progress (JournalMinuteBegin(minute) itself), its value.
std::string EncodeJournalProgress(uint64_t last_key);
core::StatusOr<uint64_t> DecodeJournalProgress(std::string_view value);
// Every journal entry: [JournalBegin(), JournalEnd()).
std::string JournalBegin();
std::string JournalEnd();
// Corruption unless `bytes` is a journal key or a progress key (9 bytes); the minute.
core::StatusOr<core::UnixSeconds> DecodeJournalMinute(std::string_view bytes);

struct JournalDelta {
  uint64_t key = 0;
  core::Totals delta;
};

// `applied` in key order; deltas with a zero total are left out.
void EncodeJournal(std::span<const AppliedDelta> applied, std::string* out);
core::Status DecodeJournal(std::string_view in, std::vector<JournalDelta>* out);

}  // namespace tally::persistence
