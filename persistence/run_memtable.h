// RunMemTableFactory: the memtable of `key_totals`, an append-only vector like RocksDB's
// VectorRep, which sorts by merging the sorted runs it finds instead of sorting from scratch.
//
// Every flush writes its totals in id order (Store::Flush sorts the deltas), so a memtable
// holds a few long sorted runs: one per flush, plus one per admin write that landed in it.
// VectorRep sorted them with std::sort, O(n log n) comparisons through RocksDB's key
// comparator, each time a memtable was written to an SST, replayed at a start after a crash,
// or read by an iterator (docs/performance.md, "Persistence": a quarter of a crash start-up).
// This rep finds the runs with n - 1 comparisons and merges them (O(n log runs)); one run,
// the usual case, costs no move at all.
//
// Contract (RocksDB's MemTableRep): a single writer (`allow_concurrent_memtable_write =
// false`, which the store needs anyway), any number of readers at once. An insert is an
// append under a mutex; an iterator over the mutable memtable gets a sorted copy of the
// entries (as VectorRep's); once the memtable is read-only (MarkReadOnly) the entries are
// sorted in place once, under the mutex, and iterators share them.
//
// Memory: 8 bytes per entry for the vector, beside the entries in the memtable's arena. An
// iterator RocksDB asks to be placed in its arena is kept in storage the rep owns until the
// memtable is freed (RocksDB's Arena is not part of its public headers): ~100 bytes per
// iterator over a memtable's life, which the key lists, Verify() and the memtable flush
// create a few of.
#pragma once

#include <rocksdb/memtablerep.h>

#include <memory>

namespace tally::persistence {

std::shared_ptr<rocksdb::MemTableRepFactory> NewRunMemTableFactory();

}  // namespace tally::persistence
