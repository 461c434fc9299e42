// FailureCodes: the side channel that carries failures whose HTTP status the ban rule acts
// on (immediate_codes and cooldown_codes, core/ban_policy.h) from ingest to the flush.
//
// Ingest (any I/O thread) asks Wants(code) for each accepted line that names a code (a bit
// test; lines without a code never ask) and Add()s only those: only such lines pay for the
// channel's lock. The flush (the store's flush participant, persistence/ban_keeper.h)
// Drain()s it after the counter table was drained, so a code added before its failure
// reached the table is judged no later than that failure's flush. Entries are summed per
// (key, code); at most kMaxEntries of them are held between two drains, the rest are
// dropped and counted (dropped()): the rate and run rules still see those failures.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

namespace tally::core {

class FailureCodes {
 public:
  static constexpr size_t kMaxEntries = 4096;

  struct Entry {
    uint64_t key = 0;
    uint16_t code = 0;
    uint64_t count = 0;
  };

  // The codes to carry; the others are not wanted. Replaces the previous set.
  void SetCodes(std::span<const int> codes) {
    std::array<uint64_t, kWords> bits{};
    for (int c : codes) {
      if (c >= 0 && c < kCodes) {
        bits[static_cast<size_t>(c) / 64] |= uint64_t{1} << (c % 64);
      }
    }
    for (size_t i = 0; i < kWords; ++i) {
      // Relaxed: each word is a flag set of its own; a line racing with a policy change may
      // be judged under either set, as if it had arrived just before or after the change.
      bits_[i].store(bits[i], std::memory_order_relaxed);
    }
  }

  bool Wants(uint16_t code) const {
    // Relaxed: see SetCodes.
    return code < kCodes &&
           (bits_[code / 64].load(std::memory_order_relaxed) >> (code % 64) & 1) != 0;
  }

  // `count` failures of `key` named `code`.
  void Add(uint64_t key, uint16_t code, uint64_t count) {
    std::lock_guard lock(mu_);
    auto it = entries_.find({key, code});
    if (it != entries_.end()) {
      it->second += count;
    } else if (entries_.size() < kMaxEntries) {
      entries_.emplace(std::pair{key, code}, count);
    } else {
      ++dropped_;
    }
  }

  // Everything added since the last drain, in (key, code) order.
  std::vector<Entry> Drain() {
    std::map<std::pair<uint64_t, uint16_t>, uint64_t> taken;
    {
      std::lock_guard lock(mu_);
      taken.swap(entries_);
    }
    std::vector<Entry> out;
    out.reserve(taken.size());
    for (const auto& [kc, count] : taken) {
      out.push_back({kc.first, kc.second, count});
    }
    return out;
  }

  // Entries refused because the channel was full.
  uint64_t dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }

 private:
  static constexpr int kCodes = 600;
  static constexpr size_t kWords = (kCodes + 63) / 64;

  std::array<std::atomic<uint64_t>, kWords> bits_{};
  mutable std::mutex mu_;
  std::map<std::pair<uint64_t, uint16_t>, uint64_t> entries_;  // guarded by mu_
  uint64_t dropped_ = 0;                                       // guarded by mu_
};

}  // namespace tally::core
