#include "core/mapping_yaml.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

namespace tally::core {
namespace {

std::string At(std::string_view file, const YAML::Mark& mark) {
  return std::string(file) + " line " + std::to_string(mark.line + 1) + ": ";
}

// The scalar at `node`, or an error naming `field`.
StatusOr<std::string> Scalar(std::string_view file, const YAML::Node& node,
                             const std::string& field) {
  if (!node.IsScalar()) {
    return Status::InvalidArgument(At(file, node.Mark()) + field + ": must be a string");
  }
  return node.Scalar();
}

Status ReadField(std::string_view file, const std::string& field, const YAML::Node& value,
                 MappingRule* rule) {
  auto fail = [&](const std::string& why) {
    return Status::InvalidArgument(At(file, value.Mark()) + field + ": " + why);
  };
  if (field == "tags") {
    if (!value.IsMap()) {
      return fail("must be a map of tag name to glob");
    }
    for (const auto& kv : value) {
      StatusOr<std::string> tag = Scalar(file, kv.first, "tags");
      StatusOr<std::string> glob = Scalar(file, kv.second, "tags");
      if (!tag.ok() || !glob.ok()) {
        return tag.ok() ? glob.status() : tag.status();
      }
      rule->tags.emplace_back(*tag, *glob);
    }
    return Status::Ok();
  }
  if (field == "success_status" && value.IsSequence()) {
    std::string joined;
    for (const auto& item : value) {
      StatusOr<std::string> s = Scalar(file, item, field);
      if (!s.ok()) {
        return s.status();
      }
      joined += (joined.empty() ? "" : ",") + *s;
    }
    rule->success_status = joined;
    return Status::Ok();
  }
  StatusOr<std::string> text = Scalar(file, value, field);
  if (!text.ok()) {
    return text.status();
  }
  auto set_outcome = [&](MappingOutcome o, const std::string& ref) {
    if (rule->outcome != MappingOutcome::kNone) {
      return fail("a rule has one of status, status_class, outcome or action");
    }
    rule->outcome = o;
    rule->outcome_ref = ref;
    return Status::Ok();
  };
  if (field == "name") {
    rule->name = *text;
  } else if (field == "match") {
    rule->match = *text;
  } else if (field == "match_type") {
    if (*text != "glob" && *text != "regex") {
      return fail("must be glob or regex");
    }
    rule->regex = *text == "regex";
  } else if (field == "key") {
    rule->key = *text;
  } else if (field == "key_pattern") {
    rule->key_pattern = *text;
  } else if (field == "success_status") {
    rule->success_status = *text;
  } else if (field == "status") {
    return set_outcome(MappingOutcome::kStatus, *text);
  } else if (field == "status_class") {
    return set_outcome(MappingOutcome::kStatusClass, *text);
  } else if (field == "outcome") {
    if (*text != "success" && *text != "failure") {
      return fail("must be success or failure");
    }
    return set_outcome(*text == "success" ? MappingOutcome::kSuccess : MappingOutcome::kFailure,
                       "");
  } else if (field == "action") {
    if (*text != "drop") {
      return fail("the one action is drop");
    }
    return set_outcome(MappingOutcome::kDrop, "");
  } else {
    return fail(
        "unknown field (name, match, match_type, tags, key, key_pattern, status, "
        "status_class, outcome, action, success_status)");
  }
  return Status::Ok();
}

StatusOr<std::vector<MappingRule>> ParseRules(std::string_view file, const YAML::Node& root) {
  if (!root.IsMap() || !root["mappings"]) {
    return Status::InvalidArgument(At(file, root.Mark()) + "expected a map with `mappings:`");
  }
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || kv.first.Scalar() != "mappings") {
      return Status::InvalidArgument(At(file, kv.first.Mark()) +
                                     "unknown top-level field (only mappings)");
    }
  }
  const YAML::Node list = root["mappings"];
  if (!list.IsSequence()) {
    return Status::InvalidArgument(At(file, list.Mark()) + "mappings: must be a list of rules");
  }
  std::vector<MappingRule> rules;
  for (const auto& item : list) {
    if (!item.IsMap()) {
      return Status::InvalidArgument(At(file, item.Mark()) + "a rule must be a map of fields");
    }
    MappingRule rule;
    rule.line = item.Mark().line + 1;
    for (const auto& kv : item) {
      StatusOr<std::string> field = Scalar(file, kv.first, "field name");
      if (!field.ok()) {
        return field.status();
      }
      if (!rule.fields.emplace(*field, kv.first.Mark().line + 1).second) {
        return Status::InvalidArgument(At(file, kv.first.Mark()) + *field + ": given twice");
      }
      TALLY_RETURN_IF_ERROR(ReadField(file, *field, kv.second, &rule));
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace

StatusOr<std::vector<MappingRule>> ParseMappingYaml(std::string_view text, std::string_view file) {
  try {
    return ParseRules(file, YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(At(file, e.mark) + e.msg);
  }
}

StatusOr<std::shared_ptr<const Mapping>> LoadMapping(std::string_view text, std::string_view file) {
  StatusOr<std::vector<MappingRule>> rules = ParseMappingYaml(text, file);
  if (!rules.ok()) {
    return rules.status();
  }
  StatusOr<std::shared_ptr<const Mapping>> mapping = Mapping::Compile(std::move(rules).value());
  if (!mapping.ok()) {
    const std::string& m = mapping.status().message();
    return Status::InvalidArgument(std::string(file) + (m.starts_with("line ") ? " " : ": ") + m);
  }
  return mapping;
}

}  // namespace tally::core
