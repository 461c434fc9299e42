// CounterTable on one thread: deltas, resets, the key range, the bound and its refusals.
// Concurrency: counter_table_concurrency_test.cc.
#include "core/counter_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

namespace tally::core {
namespace {

std::vector<KeyDelta> DrainSorted(CounterTable& table) {
  std::vector<KeyDelta> out;
  size_t n = table.Drain(&out);
  EXPECT_EQ(n, out.size());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

TEST(CounterTable, DrainReturnsDeltasAndResets) {
  CounterTable table(100);
  ASSERT_TRUE(table.Add(5, 3, 0));
  ASSERT_TRUE(table.Add(5, 0, 2));
  ASSERT_TRUE(table.Add(9, 1, 1));
  std::vector<KeyDelta> out = DrainSorted(table);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (KeyDelta{5, 3, 2}));
  EXPECT_EQ(out[1], (KeyDelta{9, 1, 1}));
  EXPECT_TRUE(DrainSorted(table).empty());
  EXPECT_EQ(table.keys(), 2u);
  // A key drained once is marked again by its next add.
  ASSERT_TRUE(table.Add(9, 0, 4));
  out = DrainSorted(table);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (KeyDelta{9, 0, 4}));
}

TEST(CounterTable, DrainAppendsToWhatIsAlreadyThere) {
  CounterTable table(10);
  ASSERT_TRUE(table.Add(1, 1, 0));
  std::vector<KeyDelta> out = {{77, 1, 1}};
  EXPECT_EQ(table.Drain(&out), 1u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (KeyDelta{77, 1, 1}));
  EXPECT_EQ(out[1], (KeyDelta{1, 1, 0}));
}

TEST(CounterTable, KeyRangeIsOneTo2Pow63Minus1) {
  CounterTable table(10);
  EXPECT_FALSE(table.Add(0, 1, 0));
  EXPECT_FALSE(table.Add(uint64_t{1} << 63, 1, 0));
  EXPECT_FALSE(table.Add(~uint64_t{0}, 0, 1));
  EXPECT_EQ(table.refused(), 3u);
  EXPECT_TRUE(table.Add(1, 1, 0));
  EXPECT_TRUE(table.Add(CounterTable::kMaxKey, 0, 1));
  EXPECT_TRUE(table.Add(uint64_t{1} << 32, 1, 0));
  EXPECT_TRUE(table.Add((uint64_t{1} << 32) - 1, 1, 0));
  std::vector<KeyDelta> out = DrainSorted(table);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], (KeyDelta{1, 1, 0}));
  EXPECT_EQ(out[1], (KeyDelta{(uint64_t{1} << 32) - 1, 1, 0}));
  EXPECT_EQ(out[2], (KeyDelta{uint64_t{1} << 32, 1, 0}));
  EXPECT_EQ(out[3], (KeyDelta{CounterTable::kMaxKey, 0, 1}));
  EXPECT_EQ(table.refused(), 3u);
}

TEST(CounterTable, CountsPastThirtyTwoBitsExactly) {
  CounterTable table(10);
  const uint64_t big = (uint64_t{1} << 32) - 1;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(table.Add(3, big, big - 1));
  }
  ASSERT_TRUE(table.Add(3, uint64_t{1} << 40, 0));
  std::vector<KeyDelta> out = DrainSorted(table);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (KeyDelta{3, 5 * big + (uint64_t{1} << 40), 5 * (big - 1)}));
}

// Small adds fill a half of the packed word past 2^31 and 2^32: the spill to the wide
// counters keeps both outcomes exact, across drains too.
TEST(CounterTable, SmallAddsPastThirtyTwoBitsSpillExactly) {
  CounterTable table(10);
  const uint64_t step = CounterTable::kPackedLimit - 1;
  const uint64_t adds = ((uint64_t{1} << 33) / step) + 7;  // two full halves and some
  for (uint64_t n = 0; n < adds; ++n) {
    ASSERT_TRUE(table.Add(4, step, n % 3 == 0 ? 1 : 0));
    ASSERT_TRUE(table.Add(5, 1, step));
  }
  std::vector<KeyDelta> out = DrainSorted(table);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (KeyDelta{4, adds * step, (adds + 2) / 3}));
  EXPECT_EQ(out[1], (KeyDelta{5, adds, adds * step}));
  // After the drain both the word and the wide counters are empty, and count on from zero.
  EXPECT_TRUE(DrainSorted(table).empty());
  ASSERT_TRUE(table.Add(4, 2, 3));
  ASSERT_TRUE(table.Add(4, CounterTable::kPackedLimit, 0));
  out = DrainSorted(table);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (KeyDelta{4, 2 + CounterTable::kPackedLimit, 3}));
}

// Values at the packed limit take the wide path; just under it the packed one. Both meet in
// one delta per key.
TEST(CounterTable, PackedAndWideAddsMeetInOneDelta) {
  CounterTable table(10);
  const uint64_t limit = CounterTable::kPackedLimit;
  ASSERT_TRUE(table.Add(8, limit - 1, limit - 1));
  ASSERT_TRUE(table.Add(8, limit, 0));
  ASSERT_TRUE(table.Add(8, 0, limit));
  ASSERT_TRUE(table.Add(8, 1, (uint64_t{1} << 32) - 1));
  std::vector<KeyDelta> out = DrainSorted(table);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (KeyDelta{8, 2 * limit, 2 * limit - 1 + (uint64_t{1} << 32) - 1}));
}

// AddBatch does what the same Add calls do, refusals included: keys present and new, keys
// out of range, nothing to add, values for the wide counters, more keys than room, more
// increments than one chunk. Twice: on ids 1..300, which the hash spreads evenly, and on 300
// random ids, of which some sit past their home bucket (9 of the 200 held, with this seed).
TEST(CounterTable, AddBatchEqualsTheSameAdds) {
  struct Inc {
    uint64_t key, successes, failures;
  };
  for (bool random_ids : {false, true}) {
    SCOPED_TRACE(random_ids ? "random ids" : "ids 1..300");
    std::vector<uint64_t> ids(300);
    std::mt19937_64 id_rng(77);
    for (size_t i = 0; i < ids.size(); ++i) {
      ids[i] = random_ids ? (id_rng() >> 1) | 1 : i + 1;
    }
    std::vector<Inc> incs;
    std::mt19937_64 rng(5);
    for (int i = 0; i < 1000; ++i) {
      uint64_t pick = rng() % 20;
      uint64_t key = ids[rng() % ids.size()];  // 300 keys, room for 200 below
      if (pick == 0) {
        key = 0;
      } else if (pick == 1) {
        key = uint64_t{1} << 63;
      }
      uint64_t s = rng() % 3;
      uint64_t f = rng() % 2;
      if (pick == 2) {
        s = CounterTable::kPackedLimit + rng() % 1000;
      }
      incs.push_back({key, s, f});
    }
    CounterTable batched(200, /*hash_seed=*/9);
    CounterTable single(200, /*hash_seed=*/9);
    size_t refused_single = 0;
    for (const Inc& inc : incs) {
      refused_single += single.Add(inc.key, inc.successes, inc.failures) ? 0 : 1;
    }
    size_t refused_batched = batched.AddBatch(incs.data(), 100);  // a chunk and a half
    refused_batched += batched.AddBatch(incs.data() + 100, incs.size() - 100);
    EXPECT_EQ(refused_batched, refused_single);
    EXPECT_GT(refused_single, 50u);
    EXPECT_EQ(batched.refused(), single.refused());
    EXPECT_EQ(DrainSorted(batched), DrainSorted(single));
  }
}

TEST(CounterTable, AddingNothingTakesNoSlot) {
  CounterTable table(1);
  EXPECT_TRUE(table.Add(5, 0, 0));
  EXPECT_EQ(table.keys(), 0u);
  EXPECT_TRUE(DrainSorted(table).empty());
  EXPECT_TRUE(table.Add(6, 1, 0));  // the one room is still free
  EXPECT_FALSE(table.Add(0, 0, 0));
}

TEST(CounterTable, RefusesNewKeysPastTheBound) {
  CounterTable table(2);
  ASSERT_TRUE(table.Add(1, 1, 0));
  ASSERT_TRUE(table.Add(2, 1, 0));
  EXPECT_FALSE(table.Add(3, 1, 0));
  EXPECT_TRUE(table.Add(1, 1, 0));  // existing keys keep counting
  EXPECT_FALSE(table.Add(3, 0, 1));
  EXPECT_EQ(table.refused(), 2u);
  EXPECT_EQ(table.keys(), 2u);
  std::vector<KeyDelta> out = DrainSorted(table);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (KeyDelta{1, 2, 0}));
  EXPECT_EQ(out[1], (KeyDelta{2, 1, 0}));
  // Draining frees no room: the bound is on keys held, not on keys changed.
  EXPECT_FALSE(table.Add(4, 1, 0));
}

TEST(CounterTable, FillsExactlyToTheBoundWhateverTheKeys) {
  // Sequential ids, ids equal modulo large powers of two, and ids near the top of the range.
  for (uint64_t stride : {uint64_t{1}, uint64_t{1} << 20, uint64_t{1} << 41, uint64_t{1} << 52}) {
    CounterTable table(1000, /*hash_seed=*/stride);
    std::map<uint64_t, uint64_t> want;
    uint64_t refused = 0;
    for (uint64_t i = 1; i <= 3000; ++i) {
      uint64_t key = (i * stride) % CounterTable::kMaxKey;
      bool ok = table.Add(key, i, 0);
      if (want.size() < 1000 || want.count(key) != 0) {
        ASSERT_TRUE(ok) << "stride " << stride << " i " << i;
        want[key] += i;
      } else {
        ASSERT_FALSE(ok) << "stride " << stride << " i " << i;
        ++refused;
      }
    }
    EXPECT_EQ(table.keys(), 1000u);
    EXPECT_EQ(table.refused(), refused);
    std::vector<KeyDelta> out = DrainSorted(table);
    ASSERT_EQ(out.size(), want.size());
    size_t j = 0;
    for (const auto& [key, successes] : want) {
      EXPECT_EQ(out[j++], (KeyDelta{key, successes, 0}));
    }
  }
}

TEST(CounterTable, SizedForTheBound) {
  CounterTable table(1'000'000);
  EXPECT_EQ(table.max_keys(), 1'000'000u);
  EXPECT_GE(table.capacity(), 2'000'000u);
  EXPECT_LT(table.capacity(), 2'000'064u);
  // 16-byte slots and two bits per slot; 16 bytes of wide counters per slot.
  EXPECT_EQ(table.reserved_bytes(),
            table.capacity() * 16 + table.capacity() / 4 + table.capacity() * 16);
  EXPECT_EQ(CounterTable(0).max_keys(), 1u);
  EXPECT_THROW(CounterTable(size_t{1} << 31), std::length_error);
}

TEST(CounterTable, EveryChangedKeyOnceInALargeDrain) {
  CounterTable table(100'000);
  for (uint64_t key = 1; key <= 100'000; ++key) {
    ASSERT_TRUE(table.Add(key, key % 3, key % 5 == 0 ? 1 : 0));
  }
  for (uint64_t key = 1; key <= 100'000; key += 2) {
    ASSERT_TRUE(table.Add(key, 1, 0));
  }
  std::vector<KeyDelta> out = DrainSorted(table);
  size_t want = 0;
  for (uint64_t key = 1; key <= 100'000; ++key) {
    uint64_t s = key % 3 + (key % 2 == 1 ? 1 : 0);
    uint64_t f = key % 5 == 0 ? 1 : 0;
    if (s == 0 && f == 0) {
      continue;
    }
    ASSERT_LT(want, out.size());
    EXPECT_EQ(out[want], (KeyDelta{key, s, f}));
    ++want;
  }
  EXPECT_EQ(out.size(), want);
  EXPECT_TRUE(DrainSorted(table).empty());
}

}  // namespace
}  // namespace tally::core
