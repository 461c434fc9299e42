#include "persistence/window_journal.h"

namespace tally::persistence {
namespace {

constexpr uint8_t kJournalVersion = 1;

void PutBigEndian(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string JournalMinuteBegin(core::UnixSeconds minute) {
  std::string out(1, kJournalTag);
  PutBigEndian(out, static_cast<uint64_t>(minute));
  return out;
}

std::string EncodeJournalKey(core::UnixSeconds minute, uint64_t epoch) {
  std::string out = JournalMinuteBegin(minute);
  PutBigEndian(out, epoch);
  return out;
}

std::string EncodeJournalProgress(uint64_t last_key) {
  std::string out;
  PutBigEndian(out, last_key);
  return out;
}

core::StatusOr<uint64_t> DecodeJournalProgress(std::string_view value) {
  if (value.size() != 8) {
    return core::Status::Corruption("window journal: bad rollup progress");
  }
  uint64_t key = 0;
  for (char c : value) {
    key = (key << 8) | static_cast<uint8_t>(c);
  }
  return key;
}

std::string JournalBegin() { return std::string(1, kJournalTag); }
std::string JournalEnd() { return std::string(1, kJournalTag + 1); }

core::StatusOr<core::UnixSeconds> DecodeJournalMinute(std::string_view bytes) {
  if ((bytes.size() != 17 && bytes.size() != 9) || bytes[0] != kJournalTag) {
    return core::Status::Corruption("window journal: bad key");
  }
  uint64_t minute = 0;
  for (size_t i = 1; i < 9; ++i) {
    minute = (minute << 8) | static_cast<uint8_t>(bytes[i]);
  }
  if (minute > static_cast<uint64_t>(core::kMaxTime) || minute % 60 != 0) {
    return core::Status::Corruption("window journal: minute out of range");
  }
  return static_cast<core::UnixSeconds>(minute);
}

void EncodeJournal(std::span<const AppliedDelta> applied, std::string* out) {
  out->clear();
  out->reserve(applied.size() * 5 + 8);
  out->push_back(static_cast<char>(kJournalVersion));
  size_t count = 0;
  for (const AppliedDelta& d : applied) {
    count += d.delta.total != 0 ? 1 : 0;
  }
  PutVarint(*out, count);
  uint64_t previous = 0;
  for (const AppliedDelta& d : applied) {
    if (d.delta.total == 0) {
      continue;
    }
    PutVarint(*out, d.key - previous);
    PutVarint(*out, static_cast<uint64_t>(d.delta.success));
    PutVarint(*out, static_cast<uint64_t>(d.delta.failure));
    previous = d.key;
  }
}

core::Status DecodeJournal(std::string_view in, std::vector<JournalDelta>* out) {
  out->clear();
  if (in.empty() || static_cast<uint8_t>(in[0]) != kJournalVersion) {
    return core::Status::Corruption("window journal: unknown version");
  }
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetVarint(in, &count) || count > in.size()) {
    return core::Status::Corruption("window journal: bad count");
  }
  out->reserve(count);
  uint64_t key = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t step = 0, success = 0, failure = 0;
    if (!GetVarint(in, &step) || !GetVarint(in, &success) || !GetVarint(in, &failure) ||
        step == 0 || key > core::kMaxId - step) {
      return core::Status::Corruption("window journal: bad delta");
    }
    key += step;
    core::Totals t;
    if (!t.CanAdd(success, failure)) {
      return core::Status::Corruption("window journal: count out of range");
    }
    t.Add(static_cast<int64_t>(success), static_cast<int64_t>(failure));
    out->push_back({key, t});
  }
  if (!in.empty()) {
    return core::Status::Corruption("window journal: trailing bytes");
  }
  return core::Status::Ok();
}

}  // namespace tally::persistence
