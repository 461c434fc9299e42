// The (key, outcome) sequences the core Add benchmarks (core_bench.cc) replay: drawn once per
// (distribution, thread) and kept for the whole run, so the timed loops hold only the adds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/line_parser.h"

namespace tally::bench {

using core::Increment;

inline constexpr uint32_t kFailureBit = uint32_t{1} << 31;  // in a drawn op: count a failure
inline constexpr size_t kSequence = size_t{1} << 20;        // ops drawn per thread

// Ops (key | kFailureBit for a failure, 90% successes), uniform over keys 1..100k. With 2
// threads each draws only from its own contiguous half of the ids: threads never share a
// key, nor (in the array, where neighbouring ids share a cache line) a line.
const std::vector<uint32_t>& Uniform100kOps(int thread, int threads);
// Zipf(0.99) over keys 1..1M, ranks mapped to keys by a fixed random permutation so the hot
// keys are scattered. Both threads draw from the same distribution and share the hot keys,
// as I/O threads do.
const std::vector<uint32_t>& Zipf1MOps(int thread);

// The same sequences as Increments, the form the parser hands to CounterTable::AddBatch.
const std::vector<Increment>& Uniform100kIncrements(int thread, int threads);
const std::vector<Increment>& Zipf1MIncrements(int thread);

// 100k random ids in 1..2^63-1, and the 1-thread uniform sequence with key i replaced by the
// i-th of them: the same load on keys a gateway did not number 1, 2, 3... (the array cannot
// take these ids).
const std::vector<uint64_t>& RandomIds100k();
const std::vector<Increment>& Uniform100kRandomIdIncrements();

}  // namespace tally::bench
