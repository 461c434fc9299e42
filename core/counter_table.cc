#include "core/counter_table.h"

#include <sys/mman.h>

#include <bit>
#include <new>

namespace tally::core {
namespace {

using AtomicWord = std::atomic_ref<uint64_t>;
static_assert(AtomicWord::is_always_lock_free);

// Fibonacci hashing: spreads sequential key ids over the table.
size_t SlotFor(uint64_t key, size_t mask) {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

}  // namespace

CounterTable::CounterTable(size_t max_keys) : max_keys_(max_keys == 0 ? 1 : max_keys) {
  size_t capacity = std::bit_ceil(max_keys_ * 2);
  capacity = capacity < 64 ? 64 : capacity;
  mask_ = capacity - 1;
  size_t slot_bytes = capacity * sizeof(Slot);
  size_t dirty_bytes = capacity / 8;
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

bool CounterTable::Reserve() {
  // Relaxed: keys_ bounds the table and publishes nothing. The plain load first keeps a
  // flood of refused new keys from hammering the line with RMWs.
  if (keys_.load(std::memory_order_relaxed) >= max_keys_) {
    return false;
  }
  if (keys_.fetch_add(1, std::memory_order_relaxed) >= max_keys_) {
    keys_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool CounterTable::Add(uint64_t key, uint64_t successes, uint64_t failures) {
  if (key == 0) {
    // Relaxed: a statistic.
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  bool reserved = false;
  for (size_t i = SlotFor(key, mask_);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    // Acquire pairs with the release of the inserting CAS, so a slot seen with its key is
    // a slot whose insertion is complete (nothing else is published by it today, but the
    // pairing keeps the reasoning local).
    uint64_t seen = AtomicWord(slot.key).load(std::memory_order_acquire);
    if (seen == 0) {
      if (!reserved) {
        if (!Reserve()) {
          // Full. A rival inserting this same key would have taken this very slot (the first
          // empty one on the key's probe path), so count into it if it has.
          if (AtomicWord(slot.key).load(std::memory_order_acquire) == key) {
            seen = key;
          } else {
            // Relaxed: a statistic.
            refused_.fetch_add(1, std::memory_order_relaxed);
            return false;
          }
        } else {
          reserved = true;
        }
      }
    }
    if (seen == 0) {
      uint64_t expected = 0;
      // acq_rel: release publishes the key to later probes; acquire pairs with a rival
      // insert when the CAS fails.
      if (AtomicWord(slot.key).compare_exchange_strong(expected, key, std::memory_order_acq_rel)) {
        reserved = false;
      } else if (expected != key) {
        continue;  // another key won this slot; keep probing with our reservation
      }
      seen = key;
    }
    if (seen != key) {
      continue;
    }
    if (reserved) {
      // A rival thread inserted the same key first; both count into its slot.
      keys_.fetch_sub(1, std::memory_order_relaxed);
    }
    // acq_rel on the adds: if this add lands after the drainer's exchange(0) of the same word,
    // it reads that exchange's value and so synchronizes with it. The drainer cleared the
    // dirty bit before that exchange, so MarkDirty below then sees the bit clear and sets it
    // again: no increment can sit in a slot whose dirty bit is clear. On x86 every locked RMW
    // is a full barrier, so the ordering costs nothing over relaxed.
    if (successes != 0) {
      AtomicWord(slot.successes).fetch_add(successes, std::memory_order_acq_rel);
    }
    if (failures != 0) {
      AtomicWord(slot.failures).fetch_add(failures, std::memory_order_acq_rel);
    }
    MarkDirty(i);
    return true;
  }
}

void CounterTable::MarkDirty(size_t index) {
  uint64_t& word = dirty_[index >> 6];
  uint64_t bit = uint64_t{1} << (index & 63);
  // Relaxed load: a set bit stays set until the drainer clears it, and the add above
  // synchronized with any clear that preceded it (see Add). Checking first keeps the hot path
  // to a shared read of the bitmap once a key is marked in this interval.
  if ((AtomicWord(word).load(std::memory_order_relaxed) & bit) == 0) {
    // Release: the drainer's acquire exchange of this word then sees the slot's key.
    AtomicWord(word).fetch_or(bit, std::memory_order_release);
  }
}

size_t CounterTable::Drain(std::vector<KeyDelta>* out) {
  size_t taken = 0;
  size_t words = capacity() / 64;
  for (size_t w = 0; w < words; ++w) {
    // Relaxed peek: an idle word costs one load; a bit set after it is taken next drain.
    if (AtomicWord(dirty_[w]).load(std::memory_order_relaxed) == 0) {
      continue;
    }
    // Acquire pairs with MarkDirty's release: the slot keys of set bits are visible.
    uint64_t bits = AtomicWord(dirty_[w]).exchange(0, std::memory_order_acquire);
    while (bits != 0) {
      size_t i = (w << 6) | static_cast<size_t>(std::countr_zero(bits));
      bits &= bits - 1;
      Slot& slot = slots_[i];
      // acq_rel: see Add. Each word is emptied by exchange, so an add lands in exactly one
      // drain.
      uint64_t s = AtomicWord(slot.successes).exchange(0, std::memory_order_acq_rel);
      uint64_t f = AtomicWord(slot.failures).exchange(0, std::memory_order_acq_rel);
      if (s != 0 || f != 0) {
        // Relaxed: the key was published before the dirty bit we acquired.
        out->push_back({AtomicWord(slot.key).load(std::memory_order_relaxed), s, f});
        ++taken;
      }
    }
  }
  return taken;
}

size_t CounterTable::keys() const {
  // Relaxed: a gauge. It may briefly count an insert still in flight.
  return keys_.load(std::memory_order_relaxed);
}

uint64_t CounterTable::refused() const {
  // Relaxed: a statistic.
  return refused_.load(std::memory_order_relaxed);
}

}  // namespace tally::core
