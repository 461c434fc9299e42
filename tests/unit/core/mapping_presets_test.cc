// The built-in presets against their fixtures (tests/fixtures/mapping/): lines written from
// each gateway's documented metric names, with their edge cases (Envoy's per-code twins,
// Kong's per-consumer repeats, services without a key id, zero deltas, sampled lines).
#include "core/mapping_presets.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/line_parser.h"
#include "core/mapping.h"
#include "core/mapping_yaml.h"
#include "tests/support/mapping_fixture.h"

namespace tally::core {
namespace {

using testing::MappingFixture;
using testing::ReadMappingFixture;

class PresetFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(PresetFixture, CountsWhatTheFixtureSays) {
  const std::string preset = GetParam();
  std::optional<std::string_view> text = MappingPreset(preset);
  ASSERT_TRUE(text.has_value());
  StatusOr<std::shared_ptr<const Mapping>> mapping = LoadMapping(*text, preset);
  ASSERT_TRUE(mapping.ok()) << mapping.status().message();
  const MappingFixture f = ReadMappingFixture(preset);
  std::string buffer;
  for (const std::string& line : f.lines) {
    buffer += line + "\n";
  }
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> keys;
  MappedCounts mapped;
  LineCounts counts = ParseBuffer(
      buffer, "apikey",
      [&](const Increment& inc) {
        keys[inc.key].first += inc.successes;
        keys[inc.key].second += inc.failures;
        return true;
      },
      [&](std::string_view line, Increment* inc) { return (*mapping)->Map(line, inc, &mapped); });
  EXPECT_EQ(keys, f.keys);
  EXPECT_EQ(counts.accepted, f.accepted);
  EXPECT_EQ(counts.ignored, f.ignored);
  EXPECT_EQ(counts.malformed, f.malformed);
  EXPECT_EQ(counts.refused, f.refused);
  for (size_t i = 0; i < (*mapping)->size(); ++i) {
    const std::string& name = (*mapping)->rule_name(i);
    EXPECT_EQ(mapped.matched[i], f.rules.contains(name) ? f.rules.at(name) : 0) << name;
    EXPECT_EQ(mapped.without_key[i], f.without_key.contains(name) ? f.without_key.at(name) : 0)
        << name;
  }
}

// The compiled-in text is the file in mapping/presets/, which is what the docs install.
TEST_P(PresetFixture, EmbeddedTextIsTheRepositoryFile) {
  const std::string preset = GetParam();
  EXPECT_EQ(std::string(*MappingPreset(preset)),
            testing::ReadSourceFile("mapping/presets/" + preset + ".yaml"));
}

INSTANTIATE_TEST_SUITE_P(Presets, PresetFixture,
                         ::testing::Values("kong", "envoy", "traefik", "nginx"));

TEST(MappingPresets, NamesAreTheFour) {
  EXPECT_EQ(MappingPresetNames(),
            (std::vector<std::string_view>{"kong", "envoy", "traefik", "nginx"}));
  EXPECT_FALSE(MappingPreset("haproxy").has_value());
}

}  // namespace
}  // namespace tally::core
