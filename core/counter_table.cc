#include "core/counter_table.h"

#include <sys/mman.h>

#include <bit>
#include <new>
#include <random>
#include <stdexcept>
#include <thread>

namespace tally::core {
namespace {

using AtomicWord = std::atomic_ref<uint64_t>;
static_assert(AtomicWord::is_always_lock_free);

uint64_t RandomSeed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

CounterTable::CounterTable(size_t max_keys) : CounterTable(max_keys, RandomSeed()) {}

CounterTable::CounterTable(size_t max_keys, uint64_t hash_seed)
    : max_keys_(max_keys == 0 ? 1 : max_keys), seed_(hash_seed) {
  if (max_keys_ >= (size_t{1} << 31)) {
    throw std::length_error("CounterTable: max_keys must be below 2^31");
  }
  capacity_ = (max_keys_ * 2 + 63) / 64 * 64;
  buckets_count_ = capacity_ / kSlotsPerBucket;
  size_t bucket_bytes = buckets_count_ * sizeof(Bucket);
  bytes_ = bucket_bytes + capacity_ / 64 * sizeof(DirtyWords);
  wide_bytes_ = capacity_ * sizeof(Wide);
  // Anonymous mappings are zero-filled and only become resident when touched. The structs
  // are implicit-lifetime types, so the mappings hold them without construction.
  void* mem = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    throw std::bad_alloc();
  }
  void* wide = mmap(nullptr, wide_bytes_, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (wide == MAP_FAILED) {
    munmap(mem, bytes_);
    throw std::bad_alloc();
  }
  // Huge pages where the kernel allows them (transparent huge pages in "madvise" mode, as on
  // Debian): the buckets are read at random, and with 4 KiB pages a table at the default
  // bound (32 MB) misses the TLB on most lookups. A hint; without it the table just works
  // slower, so a refusal is ignored.
  (void)madvise(mem, bucket_bytes, MADV_HUGEPAGE);
  buckets_ = static_cast<Bucket*>(mem);
  dirty_ = reinterpret_cast<DirtyWords*>(static_cast<char*>(mem) + bucket_bytes);
  wide_ = static_cast<Wide*>(wide);
}

CounterTable::~CounterTable() {
  munmap(buckets_, bytes_);
  munmap(wide_, wide_bytes_);
}

// The reservation protocol. Room for a new key is taken (low half +1, high half +1) before
// its slot is claimed, so the table never holds more than max_keys keys. The claim resolves
// the reservation (high half -1, release); losing the slot to the same key gives the room
// back (both halves -1). A thread that finds no room refuses only if, in one atomic read,
// the table is full AND no insert is in flight: at that instant every claimed slot is
// visible (the acquire read pairs with every resolving release: all writes to key_state_
// are RMWs, so each later value continues their release sequences), so rereading the slot
// tells for certain whether its key is there. Otherwise it yields and looks again: a rival
// inserting this same key may be about to claim this very slot.
CounterTable::Reservation CounterTable::Reserve() {
  // Acquire: see above. The plain read first keeps a flood of refused new keys from
  // hammering the line with RMWs.
  uint64_t state = key_state_.load(std::memory_order_acquire);
  if ((state & kReservedMask) >= max_keys_) {
    return state < kInFlightOne ? Reservation::kFull : Reservation::kBusy;
  }
  // Relaxed: taking room publishes nothing; the claim's release does.
  uint64_t before = key_state_.fetch_add(kInFlightOne + 1, std::memory_order_relaxed);
  if ((before & kReservedMask) >= max_keys_) {
    Unreserve();
    return Reservation::kBusy;  // lost a race for the last room; the next look decides
  }
  return Reservation::kTaken;
}

void CounterTable::Unreserve() {
  // Release: harmless, and keeps every in-flight decrement a release (see Reserve).
  key_state_.fetch_sub(kInFlightOne + 1, std::memory_order_release);
}

bool CounterTable::AddRare(uint64_t key, uint64_t successes, uint64_t failures) {
  if (key == 0 || key > kMaxKey) {
    // Relaxed: a statistic.
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (successes == 0 && failures == 0) {
    return true;
  }
  bool reserved = false;
  size_t i = HomeBucket(key) * kSlotsPerBucket;
  while (true) {
    uint64_t& slot_key = KeyAt(i);
    // Relaxed: a slot's key is written once (0 -> key) and guards nothing that needs
    // publishing (the counters start at zero in the zero-filled mapping). A drain that later
    // reads the key does so after acquiring a dirty bit set by a thread that had read it, so
    // it sees the key by coherence.
    uint64_t seen = AtomicWord(slot_key).load(std::memory_order_relaxed);
    if (seen == key) {
      break;
    }
    if (seen == (key | kTombstoneBit)) {
      if (reserved) {
        Unreserve();
      }
      // Relaxed: a statistic.
      deleted_refused_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (seen != 0) {
      i = NextSlot(i);
      continue;
    }
    // An empty slot ends the probe: slots are never emptied and a key takes the first empty
    // slot of its path, so the key, had it been inserted, would sit here or earlier.
    if (!reserved) {
      Reservation r = Reserve();
      if (r == Reservation::kBusy) {
        std::this_thread::yield();  // only new keys at the bound ever get here
        continue;                   // look at this slot again
      }
      if (r == Reservation::kFull) {
        // Relaxed: Reserve's acquire already made every claimed slot visible.
        if (AtomicWord(slot_key).load(std::memory_order_relaxed) == 0) {
          // Relaxed: a statistic.
          refused_.fetch_add(1, std::memory_order_relaxed);
          return false;
        }
        continue;  // claimed meanwhile, by this key or another: look again
      }
      reserved = true;
    }
    uint64_t expected = 0;
    // Relaxed: the key is the only thing written, and waiting refusers learn of it through
    // the release in the in-flight decrement that follows.
    if (AtomicWord(slot_key).compare_exchange_strong(expected, key, std::memory_order_relaxed)) {
      reserved = false;
      // Release: resolves the reservation after the claim (see Reserve).
      key_state_.fetch_sub(kInFlightOne, std::memory_order_release);
      break;
    }
    // Another claim won the slot: look at it again, keeping our reservation. It is this key
    // (count into it), this key marked deleted (refused), or another key (probe on).
  }
  if (reserved) {
    Unreserve();
  }
  // Every counter word is only ever added to and emptied by exchanges (drain or spill), all
  // RMWs, so every add reads the value just before it in the word's modification order. The
  // add that reads 0 (the first since the word was last emptied) marks the slot dirty after
  // it, with a release that the drain acquires before its exchange; so an add either lands
  // before the drain's exchange of its word and is taken by it, or reads an exchange's 0 and
  // marks the slot for a later drain. The wide counters follow the same rule with their own
  // bitmap, except that every add to them marks (spills are rare).
  if (Packable(key, successes, failures)) {
    AddPacked(CountsAt(i), successes | failures << 32);
  } else {
    AddWide(i, successes, failures);
  }
  return true;
}

void CounterTable::AfterAdd(size_t i, uint64_t old, uint64_t now) {
  if (old == 0) {
    // Release: the drain's acquire exchange of this word then sees the add before it (and the
    // slot's key, read before it by this thread).
    AtomicWord(dirty_[i >> 6].counts).fetch_or(uint64_t{1} << (i & 63), std::memory_order_release);
  }
  if ((now & kHalfTops) != 0) {
    Spill(i);
  }
}

void CounterTable::Spill(size_t i) {
  // Relaxed: an RMW like the drain's, so each count is taken by exactly one of them; what it
  // took is published by AddWide's release.
  uint64_t taken = AtomicWord(CountsAt(i)).exchange(0, std::memory_order_relaxed);
  if (taken != 0) {
    AddWide(i, taken & 0xffff'ffff, taken >> 32);
    // Relaxed: a statistic.
    spills_.fetch_add(1, std::memory_order_relaxed);
  }
}

void CounterTable::AddWide(size_t i, uint64_t successes, uint64_t failures) {
  Wide& wide = wide_[i];
  // Relaxed adds, then a release mark that the drain acquires before emptying them.
  if (successes != 0) {
    AtomicWord(wide.successes).fetch_add(successes, std::memory_order_relaxed);
  }
  if (failures != 0) {
    AtomicWord(wide.failures).fetch_add(failures, std::memory_order_relaxed);
  }
  AtomicWord(dirty_[i >> 6].wide).fetch_or(uint64_t{1} << (i & 63), std::memory_order_release);
}

size_t CounterTable::Drain(std::vector<KeyDelta>* out) {
  size_t taken = 0;
  size_t words = capacity_ / 64;
  for (size_t w = 0; w < words; ++w) {
    DirtyWords& dirty = dirty_[w];
    // Relaxed peeks: an idle pair costs two loads of one line; a bit set after them is taken
    // next drain.
    uint64_t counts_bits = AtomicWord(dirty.counts).load(std::memory_order_relaxed);
    uint64_t wide_bits = AtomicWord(dirty.wide).load(std::memory_order_relaxed);
    if ((counts_bits | wide_bits) == 0) {
      continue;
    }
    // Acquire pairs with the marks' releases: the adds that set these bits, and the slot
    // keys, are visible, so the exchanges below take them.
    if (counts_bits != 0) {
      counts_bits = AtomicWord(dirty.counts).exchange(0, std::memory_order_acquire);
    }
    if (wide_bits != 0) {
      wide_bits = AtomicWord(dirty.wide).exchange(0, std::memory_order_acquire);
    }
    for (uint64_t bits = counts_bits | wide_bits; bits != 0; bits &= bits - 1) {
      auto bit = static_cast<unsigned>(std::countr_zero(bits));
      size_t i = (w << 6) | bit;
      uint64_t s = 0;
      uint64_t f = 0;
      // Relaxed exchanges: ordered after the marking adds by the acquires above; an add after
      // them reads their 0 and marks the slot again (see AddRare).
      if ((counts_bits >> bit & 1) != 0) {
        uint64_t packed = AtomicWord(CountsAt(i)).exchange(0, std::memory_order_relaxed);
        s = packed & 0xffff'ffff;
        f = packed >> 32;
      }
      if ((wide_bits >> bit & 1) != 0) {
        s += AtomicWord(wide_[i].successes).exchange(0, std::memory_order_relaxed);
        f += AtomicWord(wide_[i].failures).exchange(0, std::memory_order_relaxed);
      }
      if (s != 0 || f != 0) {
        // Relaxed: visible by the acquires above (see AddRare).
        uint64_t key = AtomicWord(KeyAt(i)).load(std::memory_order_relaxed) & ~kTombstoneBit;
        out->push_back({key, s, f});
        ++taken;
      }
    }
  }
  return taken;
}

size_t CounterTable::FindSlot(uint64_t key) const {
  if (key - 1 >= kMaxKey) {
    return kNoSlot;  // 0 and ids past 2^63-1 never hold a slot
  }
  for (size_t i = HomeBucket(key) * kSlotsPerBucket;; i = NextSlot(i)) {
    // Relaxed: see AddRare.
    uint64_t seen = AtomicWord(KeyAt(i)).load(std::memory_order_relaxed);
    if ((seen & ~kTombstoneBit) == key) {
      return i;
    }
    if (seen == 0) {
      return kNoSlot;  // the probe of an Add would have stopped here too
    }
  }
}

bool CounterTable::Tombstone(uint64_t key) {
  size_t i = FindSlot(key);
  if (i == kNoSlot) {
    return false;
  }
  uint64_t expected = key;
  // Relaxed: the mark guards nothing else; an Add that misses it counts into the slot and
  // the flush drops what it added (see the header).
  (void)AtomicWord(KeyAt(i)).compare_exchange_strong(expected, key | kTombstoneBit,
                                                     std::memory_order_relaxed);
  return true;  // marked now, or before (expected already held the mark)
}

uint64_t CounterTable::deleted_refused() const {
  // Relaxed: a statistic.
  return deleted_refused_.load(std::memory_order_relaxed);
}

size_t CounterTable::keys() const {
  // Relaxed: a gauge. It counts inserts in flight, and a lost race for the last room can
  // briefly pass max_keys, hence the clamp.
  size_t reserved = static_cast<size_t>(key_state_.load(std::memory_order_relaxed) & kReservedMask);
  return reserved < max_keys_ ? reserved : max_keys_;
}

uint64_t CounterTable::spills() const {
  // Relaxed: a statistic.
  return spills_.load(std::memory_order_relaxed);
}

uint64_t CounterTable::refused() const {
  // Relaxed: a statistic.
  return refused_.load(std::memory_order_relaxed);
}

}  // namespace tally::core
