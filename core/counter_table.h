// CounterTable: per-API-key success/failure counts since the last drain.
//
// Many receiving threads call Add() concurrently; one flusher calls Drain(). Every increment
// is taken by exactly one drain: each counter word is emptied with exchange(0), never with a
// read followed by a store.
//
// Layout: one open-addressing table (linear probing) of 24-byte slots {key, successes,
// failures}, 2 * max_keys slots (rounded up to a multiple of 64), so the load factor never
// passes 0.5 and a probe always ends. The home slot comes from a seeded 64-bit mix of the key
// (the seed is random per table unless given), so senders cannot aim many keys at one probe
// chain. A bitmap marks the slots changed since the last drain, so a drain costs the changed
// keys plus one pass over the bitmap (2 Mbit, 256 KiB, for the default million keys), not a
// scan of the slots. Slots are never removed: a key keeps its slot for the life of the table.
//
// Add on a key already present: a probe (relaxed loads) and one relaxed fetch_add per
// non-zero outcome; only the add that takes a counter from 0 (the first since the last drain)
// also sets the slot's dirty bit. No lock, no allocation, no system call.
//
// A new key claims its slot with one CAS; two threads inserting the same key race on the
// same CAS and count into the same slot. Memory is reserved once with mmap at construction
// (48 bytes per allowed key plus the bitmap); pages become resident when first touched. A new
// key past max_keys is refused and counted, exactly: it is refused only if the table holds
// max_keys keys when no insert is in flight (see Add in the .cc).
//
// Thread safety: Add() and the accessors from any thread; Drain() from one thread at a time.
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
  static constexpr uint64_t kMaxKey = (uint64_t{1} << 63) - 1;

  // A table for up to `max_keys` keys (0 is taken as 1), with a random hash seed. Throws
  // std::bad_alloc if the mapping fails, std::length_error if max_keys >= 2^31.
  explicit CounterTable(size_t max_keys = kDefaultMaxKeys);
  // Same, with a fixed hash seed (tests and benchmarks that want a repeatable layout).
  CounterTable(size_t max_keys, uint64_t hash_seed);
  ~CounterTable();
  CounterTable(const CounterTable&) = delete;
  CounterTable& operator=(const CounterTable&) = delete;

  // Adds to `key` (1..2^63-1). Answers false, and counts a refusal, when the key is new and
  // the table already holds max_keys keys, or when the key is out of range. Adding 0 and 0
  // does nothing (and takes no slot) and answers true for a key in range.
  [[nodiscard]] bool Add(uint64_t key, uint64_t successes, uint64_t failures) {
    if (key - 1 >= kMaxKey || (successes | failures) == 0) {
      return AddRare(key, successes, failures);
    }
    // Inline fast path: the key is present on its probe path (see AddRare for the orders).
    for (size_t i = Home(key);; i = Next(i)) {
      // Relaxed: see AddRare.
      uint64_t seen = std::atomic_ref<uint64_t>(slots_[i].key).load(std::memory_order_relaxed);
      if (seen == key) {
        AddCounts(i, successes, failures);
        return true;
      }
      if (seen == 0) {
        return AddRare(key, successes, failures);
      }
    }
  }

  // Appends to *out the exact delta of every key changed since the previous drain and resets
  // those keys to zero. Each key appears at most once per call, never with two zero counts.
  // Returns the number of deltas appended. An Add that runs concurrently lands in this drain
  // or in a later one, never in both and never in none.
  size_t Drain(std::vector<KeyDelta>* out);

  // Keys holding a slot, plus inserts in flight (a gauge).
  size_t keys() const;
  // Add() calls refused (table full or key out of range), since construction.
  uint64_t refused() const;
  size_t max_keys() const { return max_keys_; }
  size_t capacity() const { return capacity_; }
  // Bytes reserved for slots and the dirty bitmap (virtual; resident grows with use).
  size_t reserved_bytes() const { return bytes_; }

 private:
  struct Slot {
    uint64_t key;        // 0 while empty; written once, by CAS
    uint64_t successes;  // since the last drain
    uint64_t failures;   // since the last drain
  };
  static_assert(sizeof(Slot) == 24);

  enum class Reservation { kTaken, kFull, kBusy };
  // key_state_ packs two counts so one atomic read sees both at the same instant.
  static constexpr uint64_t kReservedMask = 0xffff'ffff;       // low: keys + inserts in flight
  static constexpr uint64_t kInFlightOne = uint64_t{1} << 32;  // high: inserts in flight

  // MurmurHash3's 64-bit finalizer of key ^ seed, reduced to [0, capacity) by Lemire's
  // multiply-high: every key bit moves every slot bit, even for sequential ids.
  size_t Home(uint64_t key) const {
    uint64_t k = key ^ seed_;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return static_cast<size_t>((static_cast<unsigned __int128>(k) * capacity_) >> 64);
  }
  // Adds to the counters of slot i, marking it dirty on a counter's first add since the last
  // drain (see AddRare for why relaxed is enough).
  void AddCounts(size_t i, uint64_t successes, uint64_t failures) {
    if (successes != 0 && std::atomic_ref<uint64_t>(slots_[i].successes)
                                  .fetch_add(successes, std::memory_order_relaxed) == 0) {
      MarkDirty(i);
    }
    if (failures != 0 && std::atomic_ref<uint64_t>(slots_[i].failures)
                                 .fetch_add(failures, std::memory_order_relaxed) == 0) {
      MarkDirty(i);
    }
  }
  // Add for a key not yet present, out of range, or with nothing to add.
  bool AddRare(uint64_t key, uint64_t successes, uint64_t failures);
  size_t Next(size_t i) const { return i + 1 == capacity_ ? 0 : i + 1; }
  // Takes room for one new key (see Add in the .cc for the protocol).
  Reservation Reserve();
  void Unreserve();
  void MarkDirty(size_t index);

  const size_t max_keys_;
  const uint64_t seed_;
  size_t capacity_ = 0;
  size_t bytes_ = 0;
  Slot* slots_ = nullptr;      // capacity_ slots, accessed through std::atomic_ref
  uint64_t* dirty_ = nullptr;  // capacity_/64 words, one bit per slot, through atomic_ref

  // Written only when a key is inserted, on its own line, apart from the read-mostly fields
  // above (read on every Add) and from refused_. Low 32 bits: keys holding a slot plus
  // inserts in flight; high 32 bits: inserts in flight (room taken, slot not yet claimed or
  // given back). Orders: see Reserve() in the .cc.
  alignas(64) std::atomic<uint64_t> key_state_{0};
  // Refused Add() calls. Relaxed: a statistic, publishing nothing.
  alignas(64) std::atomic<uint64_t> refused_{0};
};

static_assert(alignof(CounterTable) == 64);

}  // namespace tally::core
