// CounterTable: per-API-key success/failure counts since the last drain.
//
// Many receiving threads call Add() concurrently; one flusher calls Drain(). Every increment
// is taken by exactly one drain: each counter word is emptied with exchange(0), never with a
// read followed by a store.
//
// Layout: an open-addressing table of 64-byte buckets, one cache line each, holding four
// 16-byte slots {key, counts}. `counts` packs the successes since the last drain (low 32
// bits) and the failures (high 32 bits), so one fetch_add adds an increment and one exchange
// takes both counts at the same instant. There are 2 * max_keys slots (rounded up to a
// multiple of 64), so the load factor never passes 0.5 and a probe always ends. A key's probe
// starts at the first slot of its home bucket, chosen by a seeded multiply of the key (the
// seed is random per table unless given, so senders cannot aim many keys at one probe chain),
// and runs slot by slot into the following buckets. A lookup loads the four keys of a bucket
// and compares them all at once, so at this load factor it almost never leaves the home line
// or mispredicts its exit. Slots are never removed: a key keeps its slot for the table's life.
//
// Overflow rule (the halves of `counts` must never carry into each other):
//   - an Add with either value >= 2^16 bypasses the packed word and adds to the slot's wide
//     counters: two 64-bit words in a separate mapping that becomes resident only for the
//     slots that use it;
//   - an add after which either half has reached 2^31 spills: it empties the word with
//     exchange(0) and adds what it took to the wide counters. Until some spill or drain
//     empties the word, every add to it comes from a writer that will spill after it, each
//     under 2^16, so a half stays below 2^31 + W * 2^16 < 2^32 with W < 2^15 concurrent
//     writer threads.
// Two bitmaps mark the slots with a non-empty word and those with non-empty wide counters,
// so a drain costs the changed keys plus one pass over the bitmaps (4 Mbit, 512 KiB, for the
// default million keys), not a scan of the slots.
//
// Add on a key already present, values under 2^16: a bucket lookup (relaxed loads) and one
// relaxed fetch_add; only the add that finds the word empty (the first since the last drain)
// also sets the slot's dirty bit. No lock, no allocation, no system call.
//
// A new key claims its slot with one CAS; two threads inserting the same key race on the
// same CAS and count into the same slot. Memory is reserved once with mmap at construction:
// 32 bytes per allowed key plus the bitmaps, resident when first touched, and 32 more per key
// for the wide counters, resident only where used. A new key past max_keys is refused and
// counted, exactly: it is refused only if the table holds max_keys keys when no insert is in
// flight (see Reserve in the .cc).
//
// Thread safety: Add() and the accessors from any thread; Drain() from one thread at a time.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/key_delta.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tally::core {

class CounterTable {
 public:
  static constexpr size_t kDefaultMaxKeys = 1'000'000;
  static constexpr uint64_t kMaxKey = (uint64_t{1} << 63) - 1;
  static constexpr size_t kSlotsPerBucket = 4;
  // Values from here up go to the wide counters (see the overflow rule above).
  static constexpr uint64_t kPackedLimit = uint64_t{1} << 16;
  // Set in a slot's key word when the key was deleted (Tombstone). Keys are below 2^63, so
  // the lookup's compare never matches a marked slot: only AddRare, the cold path a deleted
  // key's Add then takes, reads the mark. The hot path is unchanged.
  static constexpr uint64_t kTombstoneBit = uint64_t{1} << 63;

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
    return AddFrom(HomeBucket(key), key, successes, failures);
  }

  // Adds n increments (each with `key`, `successes` and `failures`, like the parser's
  // Increment) and answers how many were refused: the same effect as n Add() calls, faster.
  // It hashes and prefetches the home buckets of a chunk of increments first, then adds them
  // one by one, so the chunk's cache misses overlap instead of each add waiting for its own.
  template <typename Increment>
  size_t AddBatch(const Increment* incs, size_t n) {
    constexpr size_t kChunk = 64;
    size_t refused = 0;
    for (size_t first = 0; first < n; first += kChunk) {
      const size_t m = n - first < kChunk ? n - first : kChunk;
      const Increment* chunk = incs + first;
      uint32_t home[kChunk];  // buckets_count_ < 2^31 (see the constructor)
      for (size_t j = 0; j < m; ++j) {
        home[j] = static_cast<uint32_t>(Prefetch(chunk[j].key));
      }
      for (size_t j = 0; j < m; ++j) {
        const Increment& inc = chunk[j];
        refused += AddFrom(home[j], inc.key, inc.successes, inc.failures) ? 0 : 1;
      }
    }
    return refused;
  }

  // Appends to *out the exact delta of every key changed since the previous drain and resets
  // those keys to zero. Each key appears at most once per call, never with two zero counts.
  // Returns the number of deltas appended. An Add that runs concurrently lands in this drain
  // or in a later one, never in both and never in none.
  size_t Drain(std::vector<KeyDelta>* out);

  // Whether `key` holds a slot: it was added (with something to add) since construction.
  // Slots are never freed, so once true, always true. Read-only, any thread; a key whose
  // insert is in flight may not be seen yet. A lookup, as cheap as an Add's.
  // A deleted key's slot (Tombstone) counts.
  bool Contains(uint64_t key) const { return FindSlot(key) != kNoSlot; }

  // Marks `key`'s slot as the slot of a deleted key, when the key holds one: later Adds of
  // the key are refused and counted (deleted_refused()), and Contains stays true. Answers
  // whether the key holds a slot (false: nothing to mark; an Add may still insert it, and
  // the flush then drops its counts). An Add that found the slot before the mark still
  // lands in it, and the drain returns it as usual: the flush drops it, so no increment is
  // both refused and counted. Permanent: a deleted key never comes back. Any thread; a
  // lookup and at most one CAS.
  bool Tombstone(uint64_t key);

  // Keys holding a slot, plus inserts in flight (a gauge).
  size_t keys() const;
  // Add() calls refused (table full or key out of range), since construction.
  uint64_t refused() const;
  // Add() calls refused because the key was deleted (Tombstone), since construction.
  uint64_t deleted_refused() const;
  // Spills of a packed word into its wide counters (see the overflow rule), since
  // construction.
  uint64_t spills() const;
  size_t max_keys() const { return max_keys_; }
  // Slots (a multiple of 64).
  size_t capacity() const { return capacity_; }
  // Bytes mapped for the slots and the bitmaps, which become resident as keys arrive (32.5
  // per allowed key), plus the wide counters, resident only where a slot used them.
  size_t reserved_bytes() const { return bytes_ + wide_bytes_; }

 private:
  // Slot j of a bucket is {keys[j], counts[j]}; the keys sit together so one lookup compares
  // all four with two vector compares.
  struct alignas(64) Bucket {
    uint64_t keys[kSlotsPerBucket];    // 0 while empty; written once, by CAS
    uint64_t counts[kSlotsPerBucket];  // successes (low half), failures (high half)
  };
  static_assert(sizeof(Bucket) == 64);
  struct Match {
    unsigned found;  // bit j: keys[j] == the key
    unsigned empty;  // bit j: keys[j] == 0
  };
  struct Wide {
    uint64_t successes;  // since the last drain
    uint64_t failures;
  };
  // The dirty bits of 64 slots: a non-empty `counts` word, non-empty wide counters.
  struct DirtyWords {
    uint64_t counts;
    uint64_t wide;
  };

  enum class Reservation { kTaken, kFull, kBusy };
  // key_state_ packs two counts so one atomic read sees both at the same instant.
  static constexpr uint64_t kReservedMask = 0xffff'ffff;       // low: keys + inserts in flight
  static constexpr uint64_t kInFlightOne = uint64_t{1} << 32;  // high: inserts in flight
  // The top bit of each half of `counts`: set after an add means spill.
  static constexpr uint64_t kHalfTops = (uint64_t{1} << 31) | (uint64_t{1} << 63);

  // Compares the four keys of `bucket` with `key` (the loads: see the end of this file).
  static Match Compare(const Bucket& bucket, uint64_t key);
  // The folded multiply (the 128-bit product of key ^ seed and an odd constant, its two
  // halves xored), as Abseil hashes integers, reduced to [0, buckets) by Lemire's
  // multiply-high. Every key bit moves the top bits that pick the bucket, and ids numbered
  // 1, 2, 3... (as gateways number their keys) land in buckets as evenly as the golden-ratio
  // multiplier spreads them, so at most a few ever leave their home bucket; a stronger mix
  // (MurmurHash3's finalizer) scattered them at random, sent 4% past their home bucket and
  // made the batched Add 19% slower (docs/performance.md, "Core").
  size_t HomeBucket(uint64_t key) const {
    auto product = static_cast<unsigned __int128>(key ^ seed_) * 0x9e3779b97f4a7c15ull;
    uint64_t k = static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
    return static_cast<size_t>((static_cast<unsigned __int128>(k) * buckets_count_) >> 64);
  }
  size_t NextBucket(size_t b) const { return b + 1 == buckets_count_ ? 0 : b + 1; }
  size_t NextSlot(size_t i) const { return i + 1 == capacity_ ? 0 : i + 1; }
  // The slot index of a bucket's counts word.
  size_t SlotOf(const uint64_t* counts_word) const {
    auto offset = static_cast<size_t>(reinterpret_cast<const char*>(counts_word) -
                                      reinterpret_cast<const char*>(buckets_));
    return offset / sizeof(Bucket) * kSlotsPerBucket +
           (offset % sizeof(Bucket) - offsetof(Bucket, counts)) / sizeof(uint64_t);
  }
  uint64_t& KeyAt(size_t i) const {
    return buckets_[i / kSlotsPerBucket].keys[i % kSlotsPerBucket];
  }
  uint64_t& CountsAt(size_t i) const {
    return buckets_[i / kSlotsPerBucket].counts[i % kSlotsPerBucket];
  }

  // Whether an Add takes the fast path: a key in range and something to add, each value
  // under kPackedLimit. One compare each (for zero, the subtraction wraps).
  static bool Packable(uint64_t key, uint64_t successes, uint64_t failures) {
    return key - 1 < kMaxKey && (successes | failures) - 1 < kPackedLimit - 1;
  }
  // Adds packed counts (each half under 2^16) to a slot's counts word; the rare follow-ups
  // (the dirty mark, a spill) are out of line, and only they need the slot's index (SlotOf).
  // Passing the index instead and addressing the word from it measured 15% slower for one
  // Add at a time and 5% batched (2026-11-26, 7 interleaved rounds).
  void AddPacked(uint64_t& counts_word, uint64_t packed) {
    // Relaxed: see AddRare for why the first add's dirty mark is enough.
    uint64_t old =
        std::atomic_ref<uint64_t>(counts_word).fetch_add(packed, std::memory_order_relaxed);
    if (old == 0 || ((old + packed) & kHalfTops) != 0) [[unlikely]] {
      AfterAdd(SlotOf(&counts_word), old, old + packed);
    }
  }
  // Add() once the key's home bucket is known: the probe from there.
  bool AddFrom(size_t home, uint64_t key, uint64_t successes, uint64_t failures) {
    if (!Packable(key, successes, failures)) {
      return AddRare(key, successes, failures);
    }
    for (size_t b = home;; b = NextBucket(b)) {
      Match m = Compare(buckets_[b], key);
      if (m.found != 0) {
        AddPacked(buckets_[b].counts[std::countr_zero(m.found)], successes | failures << 32);
        return true;
      }
      if (m.empty != 0) {
        return AddRare(key, successes, failures);  // a new key, or a claim not yet seen
      }
    }
  }
  // Starts loading key's home bucket and answers its index.
  size_t Prefetch(uint64_t key) const {
    size_t b = HomeBucket(key);
    __builtin_prefetch(&buckets_[b], 1, 3);
    return b;
  }
  // Marks slot i dirty when `old` was empty; spills when `now` has a half at 2^31 or more.
  void AfterAdd(size_t i, uint64_t old, uint64_t now);
  // Empties slot i's word into its wide counters.
  void Spill(size_t i);
  void AddWide(size_t i, uint64_t successes, uint64_t failures);
  static constexpr size_t kNoSlot = ~size_t{0};
  // The slot holding `key`, marked or not, or kNoSlot (atomic loads along the key's probe).
  size_t FindSlot(uint64_t key) const;
  // Add for a key not yet present, out of range, with nothing to add, or with a large value.
  bool AddRare(uint64_t key, uint64_t successes, uint64_t failures);
  // Takes room for one new key (see the protocol in the .cc).
  Reservation Reserve();
  void Unreserve();

  const size_t max_keys_;
  const uint64_t seed_;
  size_t capacity_ = 0;          // slots
  size_t buckets_count_ = 0;     // capacity_ / kSlotsPerBucket
  size_t bytes_ = 0;             // buckets and dirty bitmaps (one mapping)
  size_t wide_bytes_ = 0;        // wide counters (a second mapping)
  Bucket* buckets_ = nullptr;    // accessed through std::atomic_ref (and see Compare)
  DirtyWords* dirty_ = nullptr;  // capacity_ / 64 pairs, through std::atomic_ref
  Wide* wide_ = nullptr;         // capacity_ pairs, through std::atomic_ref

  // Written only when a key is inserted, on its own line, apart from the read-mostly fields
  // above (read on every Add) and from refused_. Low 32 bits: keys holding a slot plus
  // inserts in flight; high 32 bits: inserts in flight (room taken, slot not yet claimed or
  // given back). Orders: see Reserve() in the .cc.
  alignas(64) std::atomic<uint64_t> key_state_{0};
  // Refused Add() calls. Relaxed: a statistic, publishing nothing.
  alignas(64) std::atomic<uint64_t> refused_{0};
  // Spills (see spills()); on refused_'s line, both rare. Relaxed: a statistic.
  std::atomic<uint64_t> spills_{0};
  // Adds refused for a deleted key (Tombstone); rare too. Relaxed: a statistic.
  std::atomic<uint64_t> deleted_refused_{0};
};

static_assert(alignof(CounterTable) == 64);

// The lookup's loads. On x86-64 the four keys are read with two aligned 16-byte loads and
// compared as vectors: without branches, and measured 2x faster per Add than four scalar
// compares (docs/performance.md). Those loads are not std::atomic loads, but every x86-64
// processor reads each aligned 8-byte half of them in a single access, exactly what a relaxed
// atomic load compiles to (a plain mov), so a key is never seen torn: each is 0 or its final
// value. A stale 0 only sends the Add to AddRare, which rereads with atomic loads and CASes.
// Elsewhere, and under ThreadSanitizer (which cannot see that argument), four relaxed atomic
// loads.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TALLY_COUNTER_TABLE_SCALAR_LOOKUP 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || !defined(__SSE2__)
#define TALLY_COUNTER_TABLE_SCALAR_LOOKUP 1
#endif

inline CounterTable::Match CounterTable::Compare(const Bucket& bucket, uint64_t key) {
#if defined(TALLY_COUNTER_TABLE_SCALAR_LOOKUP)
  auto load = [&bucket](size_t j) {
    // Relaxed: see AddRare.
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(bucket.keys[j]))
        .load(std::memory_order_relaxed);
  };
  unsigned found = 0;
  unsigned empty = 0;
  for (size_t j = 0; j < kSlotsPerBucket; ++j) {
    uint64_t k = load(j);
    found |= static_cast<unsigned>(k == key) << j;
    empty |= static_cast<unsigned>(k == 0) << j;
  }
  return {found, empty};
#else
  const auto* keys = reinterpret_cast<const __m128i*>(bucket.keys);
  __m128i low = _mm_load_si128(keys);
  __m128i high = _mm_load_si128(keys + 1);
  // 64-bit lanes equal: both 32-bit halves equal (SSE2 has no 64-bit compare).
  auto equal = [](__m128i a, __m128i b) {
    __m128i e = _mm_cmpeq_epi32(a, b);
    return _mm_castsi128_pd(_mm_and_si128(e, _mm_shuffle_epi32(e, _MM_SHUFFLE(2, 3, 0, 1))));
  };
  __m128i want = _mm_set1_epi64x(static_cast<long long>(key));
  __m128i zero = _mm_setzero_si128();
  auto mask = [](__m128d lo, __m128d hi) {
    return static_cast<unsigned>(_mm_movemask_pd(lo) | _mm_movemask_pd(hi) << 2);
  };
  return {mask(equal(low, want), equal(high, want)), mask(equal(low, zero), equal(high, zero))};
#endif
}

}  // namespace tally::core
