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
  size_t slot_bytes = capacity_ * sizeof(Slot);
  size_t dirty_bytes = capacity_ / 8;
  bytes_ = slot_bytes + dirty_bytes;
  // Anonymous mappings are zero-filled and only become resident when touched. Slot and
  // uint64_t are implicit-lifetime types, so the mapping holds them without construction.
  void* mem = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    throw std::bad_alloc();
  }
  slots_ = static_cast<Slot*>(mem);
  dirty_ = reinterpret_cast<uint64_t*>(static_cast<char*>(mem) + slot_bytes);
}

CounterTable::~CounterTable() { munmap(slots_, bytes_); }

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
  size_t i = Home(key);
  while (true) {
    Slot& slot = slots_[i];
    // Relaxed: a slot's key is written once (0 -> key) and guards nothing that needs
    // publishing (the counters start at zero in the zero-filled mapping). A drain that later
    // reads the key does so after acquiring a dirty bit set by a thread that had read it, so
    // it sees the key by coherence.
    uint64_t seen = AtomicWord(slot.key).load(std::memory_order_relaxed);
    if (seen == key) {
      break;
    }
    if (seen != 0) {
      i = Next(i);
      continue;
    }
    // An empty slot ends the probe: slots are never emptied, so the key, had it been
    // inserted, would sit here or earlier on its path.
    if (!reserved) {
      Reservation r = Reserve();
      if (r == Reservation::kBusy) {
        std::this_thread::yield();  // only new keys at the bound ever get here
        continue;                   // look at this slot again
      }
      if (r == Reservation::kFull) {
        // Relaxed: Reserve's acquire already made every claimed slot visible.
        if (AtomicWord(slot.key).load(std::memory_order_relaxed) == 0) {
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
    if (AtomicWord(slot.key).compare_exchange_strong(expected, key, std::memory_order_relaxed)) {
      reserved = false;
      // Release: resolves the reservation after the claim (see Reserve).
      key_state_.fetch_sub(kInFlightOne, std::memory_order_release);
      break;
    }
    if (expected == key) {
      break;  // a rival inserted this same key here first; count into its slot
    }
    i = Next(i);  // another key took this slot; keep probing with our reservation
  }
  if (reserved) {
    Unreserve();
  }
  // Relaxed adds (AddCounts): each counter word is only ever added to and emptied by the
  // drain's exchange, both RMWs, so every add reads the value just before it in the word's
  // modification order. The add that reads 0 (the first since the word was last emptied)
  // marks the slot dirty after it, with a release that the drain acquires before its
  // exchange; so an add either lands before the drain's exchange of its word and is taken
  // by it, or reads that exchange's 0 and marks the slot for the next drain.
  AddCounts(i, successes, failures);
  return true;
}

void CounterTable::MarkDirty(size_t index) {
  // Release: the drain's acquire exchange of this word then sees the add before it (and the
  // slot's key, read before it by this thread).
  AtomicWord(dirty_[index >> 6]).fetch_or(uint64_t{1} << (index & 63), std::memory_order_release);
}

size_t CounterTable::Drain(std::vector<KeyDelta>* out) {
  size_t taken = 0;
  size_t words = capacity_ / 64;
  for (size_t w = 0; w < words; ++w) {
    // Relaxed peek: an idle word costs one load; a bit set after it is taken next drain.
    if (AtomicWord(dirty_[w]).load(std::memory_order_relaxed) == 0) {
      continue;
    }
    // Acquire pairs with MarkDirty's release: the adds that set these bits, and the slot
    // keys, are visible, so the exchanges below take them.
    uint64_t bits = AtomicWord(dirty_[w]).exchange(0, std::memory_order_acquire);
    while (bits != 0) {
      size_t i = (w << 6) | static_cast<size_t>(std::countr_zero(bits));
      bits &= bits - 1;
      Slot& slot = slots_[i];
      // Relaxed: ordered after the adds that marked the slot by the acquire above; an add
      // after these exchanges reads their 0 and marks the slot again (see Add).
      uint64_t s = AtomicWord(slot.successes).exchange(0, std::memory_order_relaxed);
      uint64_t f = AtomicWord(slot.failures).exchange(0, std::memory_order_relaxed);
      if (s != 0 || f != 0) {
        // Relaxed: visible by the acquire above (see Add).
        out->push_back({AtomicWord(slot.key).load(std::memory_order_relaxed), s, f});
        ++taken;
      }
    }
  }
  return taken;
}

size_t CounterTable::keys() const {
  // Relaxed: a gauge. It counts inserts in flight, and a lost race for the last room can
  // briefly pass max_keys, hence the clamp.
  size_t reserved = static_cast<size_t>(key_state_.load(std::memory_order_relaxed) & kReservedMask);
  return reserved < max_keys_ ? reserved : max_keys_;
}

uint64_t CounterTable::refused() const {
  // Relaxed: a statistic.
  return refused_.load(std::memory_order_relaxed);
}

}  // namespace tally::core
