#include "persistence/run_memtable.h"

#include <rocksdb/slice.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>
#include <new>
#include <vector>

namespace tally::persistence {
namespace {

using Entries = std::vector<const char*>;
using KeyComparator = rocksdb::MemTableRep::KeyComparator;

// Sorts `entries` by merging the ascending runs it is made of. Entries are distinct internal
// keys (the sequence number differs), so "not before the previous one" starts no new run.
void SortRuns(const KeyComparator& compare, Entries* entries) {
  const auto less = [&compare](const char* a, const char* b) { return compare(a, b) < 0; };
  std::vector<size_t> starts{0};
  for (size_t i = 1; i < entries->size(); ++i) {
    if (less((*entries)[i], (*entries)[i - 1])) {
      starts.push_back(i);
    }
  }
  if (starts.size() == 1) {
    return;
  }
  if (starts.size() > entries->size() / 16) {
    // Short runs (admin writes, tiny flushes): merging would gain nothing over a sort.
    std::sort(entries->begin(), entries->end(), less);
    return;
  }
  // Bottom-up: merge neighbouring runs pairwise until one is left.
  const auto at = [entries](size_t i) { return entries->begin() + static_cast<ptrdiff_t>(i); };
  while (starts.size() > 1) {
    std::vector<size_t> merged;
    for (size_t r = 0; r < starts.size(); r += 2) {
      merged.push_back(starts[r]);
      if (r + 1 < starts.size()) {
        const size_t end = r + 2 < starts.size() ? starts[r + 2] : entries->size();
        std::inplace_merge(at(starts[r]), at(starts[r + 1]), at(end), less);
      }
    }
    starts = std::move(merged);
  }
}

// The sorted entries an iterator reads: its own copy (a mutable memtable's) or the
// read-only memtable's, which outlives it (RocksDB destroys a memtable's iterators first).
struct SortedView {
  const Entries* shared = nullptr;
  Entries owned;
};

class RunIterator final : public rocksdb::MemTableRep::Iterator {
 public:
  RunIterator(const KeyComparator& compare, SortedView view)
      : compare_(compare),
        owned_(std::move(view.owned)),
        entries_(view.shared != nullptr ? *view.shared : owned_),
        pos_(entries_.size()) {}
  RunIterator(const RunIterator&) = delete;
  RunIterator& operator=(const RunIterator&) = delete;

  bool Valid() const override { return pos_ < entries_.size(); }
  const char* key() const override { return entries_[pos_]; }
  void Next() override { ++pos_; }
  void Prev() override { pos_ = pos_ == 0 ? entries_.size() : pos_ - 1; }
  void SeekToFirst() override { pos_ = 0; }
  void SeekToLast() override { pos_ = entries_.empty() ? 0 : entries_.size() - 1; }

  // The first entry at or after the target.
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    pos_ = LowerBound(internal_key, memtable_key);
  }

  // The last entry at or before the target.
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    size_t after = LowerBound(internal_key, memtable_key);
    if (after < entries_.size() && Compare(entries_[after], internal_key, memtable_key) == 0) {
      pos_ = after;
    } else {
      pos_ = after == 0 ? entries_.size() : after - 1;
    }
  }

 private:
  int Compare(const char* entry, const rocksdb::Slice& internal_key,
              const char* memtable_key) const {
    return memtable_key != nullptr ? compare_(entry, memtable_key) : compare_(entry, internal_key);
  }

  size_t LowerBound(const rocksdb::Slice& internal_key, const char* memtable_key) const {
    auto it = std::partition_point(entries_.begin(), entries_.end(), [&](const char* entry) {
      return Compare(entry, internal_key, memtable_key) < 0;
    });
    return static_cast<size_t>(it - entries_.begin());
  }

  const KeyComparator& compare_;
  const Entries owned_;
  const Entries& entries_;  // owned_ or the memtable's
  size_t pos_;
};

class RunRep final : public rocksdb::MemTableRep {
 public:
  RunRep(const KeyComparator& compare, rocksdb::Allocator* allocator)
      : MemTableRep(allocator), compare_(compare) {}

  // The single writer's append (see the header).
  void Insert(rocksdb::KeyHandle handle) override {
    std::lock_guard lock(mu_);
    entries_.push_back(static_cast<const char*>(handle));
    // Relaxed: a size estimate read by RocksDB's flush heuristics and properties.
    vector_bytes_.store(entries_.capacity() * sizeof(const char*), std::memory_order_relaxed);
  }

  bool Contains(const char* key) const override {
    std::lock_guard lock(mu_);
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const char* entry) { return compare_(entry, key) == 0; });
  }

  void MarkReadOnly() override {
    std::lock_guard lock(mu_);
    read_only_ = true;
  }

  // Called by the writer after every insert (RocksDB's flush heuristics): no lock.
  size_t ApproximateMemoryUsage() override {
    // Relaxed: an estimate (see Insert).
    return sizeof(*this) + vector_bytes_.load(std::memory_order_relaxed);
  }

  // A point read: RocksDB's default would leak the iterator it makes. The lookup key's
  // memtable form (length-prefixed internal key, like every entry) is its first member,
  // `start_`, in RocksDB's LookupKey (db/dbformat.h, unchanged since LevelDB), which the
  // public headers only declare; RunMemTable.PointReadsFindEveryVersion checks it.
  void Get(const rocksdb::LookupKey& k, void* callback_args,
           bool (*callback_func)(void* arg, const char* entry)) override {
    const char* memtable_key = *reinterpret_cast<const char* const*>(&k);
    RunIterator it(compare_, Sorted());
    for (it.Seek(rocksdb::Slice(), memtable_key);
         it.Valid() && callback_func(callback_args, it.key()); it.Next()) {
    }
  }

  Iterator* GetIterator(rocksdb::Arena* arena) override {
    if (arena == nullptr) {
      return new RunIterator(compare_, Sorted());  // RocksDB deletes it
    }
    // RocksDB only runs the destructor of an iterator it believes is in its arena; the
    // storage stays with this rep (see the header).
    SortedView view = Sorted();
    std::lock_guard lock(iterators_mu_);
    void* storage = iterator_storage_.emplace_back().bytes;
    return new (storage) RunIterator(compare_, std::move(view));
  }

 private:
  struct alignas(RunIterator) IteratorStorage {
    std::byte bytes[sizeof(RunIterator)];
  };

  SortedView Sorted() {
    SortedView view;
    {
      std::lock_guard lock(mu_);
      if (read_only_) {
        if (!sorted_) {
          SortRuns(compare_, &entries_);
          sorted_ = true;
        }
        view.shared = &entries_;
        return view;
      }
      view.owned = entries_;
    }
    SortRuns(compare_, &view.owned);  // the copy, outside the lock: inserts go on meanwhile
    return view;
  }

  const KeyComparator& compare_;
  mutable std::mutex mu_;
  Entries entries_;         // guarded by mu_; in insertion order until sorted_
  bool read_only_ = false;  // guarded by mu_
  bool sorted_ = false;     // guarded by mu_; only once read_only_
  std::atomic<size_t> vector_bytes_{0};
  std::mutex iterators_mu_;
  std::deque<IteratorStorage> iterator_storage_;  // guarded by iterators_mu_
};

class RunMemTableFactory final : public rocksdb::MemTableRepFactory {
 public:
  const char* Name() const override { return "TallyRunMemTableFactory"; }
  using rocksdb::MemTableRepFactory::CreateMemTableRep;
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform* /*transform*/,
                                          rocksdb::Logger* /*logger*/) override {
    return new RunRep(compare, allocator);
  }
};

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> NewRunMemTableFactory() {
  return std::make_shared<RunMemTableFactory>();
}

}  // namespace tally::persistence
