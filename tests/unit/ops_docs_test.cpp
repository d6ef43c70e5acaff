// The sidecar docs in module/ are what ansible-doc shows; the option tables
// in src/ops are what the modules accept. These tests keep the two equal.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

#include "ops/operation.hpp"

namespace {

std::string doc_path(const std::string& module_name) {
  return std::string(QMT_SOURCE_DIR) + "/module/" + module_name + ".yml";
}

// Loads module/NAME.yml; a missing or invalid file is a test failure that
// names it, and the next module is still checked.
YAML::Node load_doc(const std::string& module_name) {
  try {
    return YAML::LoadFile(doc_path(module_name));
  } catch (const YAML::Exception& error) {
    ADD_FAILURE() << doc_path(module_name) << ": " << error.what();
    return YAML::Node();
  }
}

std::string yaml_scalar_text(const YAML::Node& node) {
  if (!node || node.IsNull()) return "null";
  if (node.IsSequence()) return node.size() == 0 ? "[]" : "list";
  return node.as<std::string>();
}

std::string json_scalar_text(const nlohmann::json& value) {
  if (value.is_null()) return "null";
  if (value.is_array()) return value.empty() ? "[]" : "list";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

TEST(ModuleDocs, EveryOperationHasSidecar) {
  for (const auto& operation : qmt::ops::operations()) {
    YAML::Node doc = load_doc(operation.module_name);
    if (!doc.IsMap()) continue;
    ASSERT_TRUE(doc["DOCUMENTATION"]) << operation.module_name;
    EXPECT_TRUE(doc["EXAMPLES"]) << operation.module_name;
    EXPECT_TRUE(doc["RETURN"]) << operation.module_name;
    EXPECT_EQ(doc["DOCUMENTATION"]["module"].as<std::string>(),
              operation.module_name);
  }
}

TEST(ModuleDocs, OptionsMatchSpecs) {
  for (const auto& operation : qmt::ops::operations()) {
    SCOPED_TRACE(operation.module_name);
    YAML::Node doc = load_doc(operation.module_name);
    if (!doc.IsMap()) continue;
    YAML::Node options = doc["DOCUMENTATION"]["options"];
    std::set<std::string> documented;
    for (const auto& item : options) {
      documented.insert(item.first.as<std::string>());
    }
    std::set<std::string> accepted;
    for (const auto& spec : operation.options) accepted.insert(spec.name);
    EXPECT_EQ(documented, accepted);

    for (const auto& spec : operation.options) {
      SCOPED_TRACE(spec.name);
      YAML::Node option = options[spec.name];
      if (!option) continue;
      EXPECT_EQ(option["type"].as<std::string>(),
                qmt::ops::to_string(spec.type));
      EXPECT_EQ(yaml_scalar_text(option["default"]),
                json_scalar_text(spec.default_value));
      EXPECT_EQ(option["required"] ? option["required"].as<bool>() : false,
                spec.required);
      std::vector<std::string> choices;
      if (option["choices"]) {
        choices = option["choices"].as<std::vector<std::string>>();
      }
      EXPECT_EQ(choices, spec.choices);
    }
  }
}

}  // namespace
