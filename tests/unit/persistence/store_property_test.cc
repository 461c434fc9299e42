// Property test: random sequences of flushes, admin changes (create, move, delete of groups
// and keys) and reopens, checked after every step against a plain in-test model, and with
// Store::Verify() (disk against memory, groups against the sums of their live keys).
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "persistence/store.h"
#include "tests/unit/persistence/store_fixture.h"

namespace tally::persistence {
namespace {

using core::Status;

struct Model {
  struct Group {
    std::string name;
    bool live = true;
  };
  struct Key {
    uint64_t group = 0;
    bool live = true;
    core::Totals totals;
  };
  std::map<uint64_t, Group> groups;
  std::map<uint64_t, Key> keys;

  core::Totals GroupTotals(uint64_t g) const {
    core::Totals t;
    for (const auto& [id, k] : keys) {
      if (k.live && k.group == g) {
        t += k.totals;
      }
    }
    return t;
  }
  bool NameTaken(const std::string& name) const {
    for (const auto& [id, g] : groups) {
      if (g.live && g.name == name) {
        return true;
      }
    }
    return false;
  }
  bool LiveGroup(uint64_t g) const { return g == 0 || (groups.contains(g) && groups.at(g).live); }
};

class StoreProperty : public StoreFixture<::testing::TestWithParam<uint32_t>> {
 protected:
  void Check(int step) {
    SCOPED_TRACE("step " + std::to_string(step));
    core::Totals all;
    for (const auto& [id, k] : model_.keys) {
      auto got = store_->GetKey(id);
      if (!k.live) {
        ASSERT_EQ(got.status().code(), Status::Code::kNotFound) << "key " << id;
        continue;
      }
      ASSERT_TRUE(got.ok()) << "key " << id;
      ASSERT_EQ(got->totals, k.totals) << "key " << id;
      ASSERT_EQ(got->group_id, k.group) << "key " << id;
      ASSERT_TRUE(got->totals.consistent());
      all += k.totals;
    }
    ASSERT_EQ(store_->live_keys(), std::count_if(model_.keys.begin(), model_.keys.end(),
                                                 [](const auto& e) { return e.second.live; }));
    for (const auto& [id, g] : model_.groups) {
      auto got = store_->GetGroup(id);
      if (!g.live) {
        ASSERT_EQ(got.status().code(), Status::Code::kNotFound) << "group " << id;
        continue;
      }
      ASSERT_TRUE(got.ok()) << "group " << id;
      ASSERT_EQ(got->totals, model_.GroupTotals(id)) << "group " << id;
      ASSERT_EQ(got->name, g.name);
    }
    ASSERT_EQ(store_->GroupSummary(0).value(), model_.GroupTotals(0));
    ASSERT_EQ(store_->Summary(), all);
    if (step % 20 == 0) {
      Status v = store_->Verify();
      ASSERT_TRUE(v.ok()) << v.message();
    }
  }

  Model model_;
};

TEST_P(StoreProperty, RandomOperationsKeepTheInvariant) {
  std::mt19937 rng(GetParam());
  auto pick = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  Reopen();
  uint64_t next_group_id = 1;
  for (int step = 1; step <= 300; ++step) {
    uint64_t op = pick(0, 99);
    if (op < 40) {  // flush random deltas; ids 1..40, some unknown, some deleted
      std::vector<core::KeyDelta> deltas;
      uint64_t n = pick(1, 12);
      uint64_t refused = 0;
      for (uint64_t i = 0; i < n; ++i) {
        core::KeyDelta d{pick(1, 40), pick(0, 5), pick(0, 3)};
        deltas.push_back(d);
        auto it = model_.keys.find(d.key);
        if (it == model_.keys.end()) {
          it = model_.keys.emplace(d.key, Model::Key{}).first;
        }
        if (!it->second.live) {
          refused += d.successes + d.failures;
          continue;
        }
        it->second.totals.Add(static_cast<int64_t>(d.successes), static_cast<int64_t>(d.failures));
      }
      auto r = store_->ApplyFlush(&deltas);
      ASSERT_TRUE(r.ok()) << r.status().message();
      ASSERT_EQ(r->dropped_deleted, refused);
    } else if (op < 52) {  // create a group, sometimes with a taken id or name
      ProviderGroup g;
      g.id = pick(0, 1) == 0 ? 0 : pick(1, next_group_id + 1);
      g.name = std::string("g") + std::to_string(pick(1, 12));
      g.type = "openai";
      g.base_url = "u";
      uint64_t lowest_free = 1;  // automatic ids: the lowest id never used
      while (model_.groups.contains(lowest_free)) {
        ++lowest_free;
      }
      uint64_t id = g.id == 0 ? lowest_free : g.id;
      bool conflict = model_.groups.contains(id) || model_.NameTaken(g.name);
      auto r = store_->CreateGroup(g);
      if (conflict) {
        ASSERT_EQ(r.status().code(), Status::Code::kConflict) << r.status().message();
      } else {
        ASSERT_TRUE(r.ok()) << r.status().message();
        ASSERT_EQ(r->id, id);
        model_.groups[id] = {g.name, true};
        next_group_id = std::max(next_group_id, id + 1);
      }
    } else if (op < 72) {  // move a key (PutKey) to a random group, maybe a dead one
      uint64_t key = pick(1, 40);
      uint64_t group = pick(0, next_group_id);
      ApiKey k;
      k.id = key;
      k.group_id = group;
      k.api_key = "sk";
      auto it = model_.keys.find(key);
      auto r = store_->PutKey(k);
      if (it != model_.keys.end() && !it->second.live) {
        ASSERT_EQ(r.status().code(), Status::Code::kConflict);
      } else if (!model_.LiveGroup(group)) {
        ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument);
      } else {
        ASSERT_TRUE(r.ok()) << r.status().message();
        model_.keys[key].group = group;
      }
    } else if (op < 80) {  // create a key
      ApiKey k;
      k.id = pick(1, 45);
      k.group_id = pick(0, next_group_id);
      k.api_key = "sk";
      auto r = store_->CreateKey(k);
      if (model_.keys.contains(k.id)) {
        ASSERT_EQ(r.status().code(), Status::Code::kConflict);
      } else if (!model_.LiveGroup(k.group_id)) {
        ASSERT_EQ(r.status().code(), Status::Code::kInvalidArgument);
      } else {
        ASSERT_TRUE(r.ok()) << r.status().message();
        model_.keys[k.id] = {k.group_id, true, {}};
      }
    } else if (op < 88) {  // delete a key
      uint64_t key = pick(1, 45);
      Status s = store_->DeleteKey(key);
      auto it = model_.keys.find(key);
      if (it == model_.keys.end() || !it->second.live) {
        ASSERT_EQ(s.code(), Status::Code::kNotFound);
      } else {
        ASSERT_TRUE(s.ok()) << s.message();
        it->second.live = false;
      }
    } else if (op < 95) {  // delete a group
      uint64_t g = pick(1, next_group_id);
      Status s = store_->DeleteGroup(g);
      auto it = model_.groups.find(g);
      bool has_keys = std::any_of(model_.keys.begin(), model_.keys.end(), [&](const auto& e) {
        return e.second.live && e.second.group == g;
      });
      if (it == model_.groups.end() || !it->second.live) {
        ASSERT_EQ(s.code(), Status::Code::kNotFound);
      } else if (has_keys) {
        ASSERT_EQ(s.code(), Status::Code::kConflict);
      } else {
        ASSERT_TRUE(s.ok()) << s.message();
        it->second.live = false;
      }
    } else {
      Reopen();
    }
    Check(step);
    if (HasFatalFailure()) {
      return;
    }
  }
  Reopen();
  Check(0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, StoreProperty, ::testing::Values(1u, 2u, 3u, 4u));

}  // namespace
}  // namespace tally::persistence
