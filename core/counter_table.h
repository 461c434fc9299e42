// CounterTable: per-API-key success/failure counts since the last drain.
//
// Many receiving threads call Add() concurrently; one flusher calls Drain(). Every increment
// is taken by exactly one drain: each counter word is emptied with exchange(0), never with a
// read followed by a store.
//
// Layout: one open-addressing table (linear probing) of 24-byte slots {key, successes,
// failures}, sized at construction to twice `max_keys` rounded up to a power of two, so the
// load factor never passes 0.5 and a probe always ends. A bitmap marks the slots changed
// since the last drain, so a drain costs the changed keys plus one pass over the bitmap
// (2 Mbit for the default million keys), not a scan of the slots. Slots are never removed:
// a key keeps its slot for the life of the process.
//
// Memory is reserved once with mmap and touched lazily, so resident memory grows with the keys
// actually seen and never passes the bound set by `max_keys`. A new key past `max_keys` is
// refused and counted.
//
// Thread safety: Add() and the accessors from any thread; Drain() from one thread at a time.
// Add() on a key already present is a probe plus relaxed-or-stronger atomic RMWs: no lock, no
// allocation, no system call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tally::core {

// What one key gained since the last drain.
struct KeyDelta {
  uint64_t key = 0;
  uint64_t successes = 0;
  uint64_t failures = 0;
  bool operator==(const KeyDelta&) const = default;
};

class CounterTable {
 public:
  static constexpr size_t kDefaultMaxKeys = 1'000'000;

  explicit CounterTable(size_t max_keys = kDefaultMaxKeys);
  ~CounterTable();
  CounterTable(const CounterTable&) = delete;
  CounterTable& operator=(const CounterTable&) = delete;

  // Adds to `key` (1..2^63-1). Answers false, and counts a refusal, when the key is new and
  // the table already holds max_keys keys, or when the key is 0.
  [[nodiscard]] bool Add(uint64_t key, uint64_t successes, uint64_t failures);

  // Appends to *out the exact delta of every key changed since the previous drain and resets
  // those keys to zero. Returns the number of deltas appended.
  size_t Drain(std::vector<KeyDelta>* out);

  // Number of distinct keys holding a slot.
  size_t keys() const;
  // Increments refused because the table was full, since start.
  uint64_t refused() const;
  size_t max_keys() const { return max_keys_; }
  size_t capacity() const { return mask_ + 1; }
  // Bytes reserved for slots and the dirty bitmap (virtual; resident grows with use).
  size_t reserved_bytes() const { return bytes_; }

 private:
  struct Slot {
    uint64_t key;        // 0 while empty; written once, by CAS
    uint64_t successes;  // since the last drain
    uint64_t failures;   // since the last drain
  };
  static_assert(sizeof(Slot) == 24);

  // Takes room for one new key; false when the table holds max_keys keys.
  bool Reserve();
  void MarkDirty(size_t index);

  const size_t max_keys_;
  size_t mask_ = 0;
  size_t bytes_ = 0;
  Slot* slots_ = nullptr;      // capacity() slots, accessed through std::atomic_ref
  uint64_t* dirty_ = nullptr;  // capacity()/64 words, one bit per slot

  // Keys holding a slot. Relaxed: it only bounds the table; no data is published through it.
  alignas(64) std::atomic<size_t> keys_{0};
  // Refused increments. Relaxed: a statistic.
  alignas(64) std::atomic<uint64_t> refused_{0};
};

}  // namespace tally::core
