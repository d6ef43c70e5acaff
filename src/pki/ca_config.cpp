#include "pki/ca_config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "pki/yaml_text.hpp"
#include "util/files.hpp"

namespace qmt::pki {

namespace {

using util::Error;
using util::Result;

// Renders a YAML value for an error message: "\"abc\"", "[1, 2]", "{}".
std::string value_text(const YAML::Node& node) {
  if (node.IsNull()) return "an empty value";
  if (node.IsScalar()) return "\"" + node.Scalar() + "\"";
  // The emitter keeps a parsed node's own style, so a block list is
  // switched to flow style on a copy to fit on one line.
  YAML::Node copy = YAML::Clone(node);
  copy.SetStyle(YAML::EmitterStyle::Flow);
  YAML::Emitter out;
  out << copy;
  return out.c_str();
}

class ConfigReader {
 public:
  explicit ConfigReader(const std::string& path) : m_path(path) {}

  Error error(const YAML::Node& at, const std::string& problem) const {
    return Error{"Invalid CA config " + m_path + " at line " +
                 std::to_string(at.Mark().line + 1) + ": " + problem};
  }

  // Errors point at the key's line: a null value has no position of its own.
  Error wrong_value(const YAML::Node& key, const YAML::Node& value,
                    const std::string& expected) const {
    return error(key, "key " + key.Scalar() + " has " + value_text(value) +
                          ", expected " + expected);
  }

  Result<std::string> text(const YAML::Node& key,
                           const YAML::Node& value) const {
    if (!value.IsScalar() || value.Scalar().empty()) {
      return wrong_value(key, value, "text");
    }
    return value.Scalar();
  }

  Result<int> days(const YAML::Node& key, const YAML::Node& value) const {
    const std::string expected = "a whole number of days from 1 to " +
                                 std::to_string(k_max_validity_days);
    if (!value.IsScalar()) return wrong_value(key, value, expected);
    const std::string& digits = value.Scalar();
    // Digits only: yaml-cpp's own conversion would also take "0x10" or "+5".
    if (digits.empty() || digits.size() > 6 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return wrong_value(key, value, expected);
    }
    int number = std::stoi(digits);
    if (number < 1 || number > k_max_validity_days) {
      return wrong_value(key, value, expected);
    }
    return number;
  }

 private:
  const std::string& m_path;
};

Result<void> apply_setting(const ConfigReader& reader,
                           const std::string& config_folder,
                           const YAML::Node& key_node, const YAML::Node& value,
                           CaSettings& settings) {
  const std::string& key = key_node.Scalar();
  if (key == "subject") {
    auto subject = reader.text(key_node, value);
    if (!subject) return subject.error();
    if (auto valid = validate_subject(subject.value()); !valid) {
      return reader.error(key_node, "key subject: " + valid.error().message);
    }
    settings.subject = subject.value();
  } else if (key == "key_type") {
    auto text = reader.text(key_node, value);
    if (!text) return text.error();
    auto type = parse_key_type(text.value());
    if (!type) {
      return reader.error(key_node, "key key_type: " + type.error().message);
    }
    settings.key_type = type.value();
  } else if (key == "validity_days" || key == "cert_validity_days") {
    auto days = reader.days(key_node, value);
    if (!days) return days.error();
    (key == "validity_days" ? settings.validity_days
                            : settings.cert_validity_days) = days.value();
  } else if (key == "index_path") {
    auto path = reader.text(key_node, value);
    if (!path) return path.error();
    std::filesystem::path index(path.value());
    settings.index_path =
        index.is_absolute()
            ? path.value()
            : util::normalize_path(
                  (std::filesystem::path(config_folder) / index).string());
  } else {
    return reader.error(key_node,
                        "unknown key \"" + key +
                            "\" (valid keys: subject, key_type, "
                            "validity_days, cert_validity_days, index_path)");
  }
  return {};
}

}  // namespace

Result<CaSettings> load_ca_config(const std::string& path,
                                  CaSettings defaults) {
  auto content = util::read_file(path);
  if (!content) return content.error();
  auto parsed = parse_yaml(content.value(), path);
  if (!parsed) return parsed.error();
  YAML::Node root = parsed.value();
  if (root.IsNull()) return defaults;
  ConfigReader reader(path);
  if (!root.IsMap()) {
    return reader.error(
        root, "expected a map of settings, found " + value_text(root));
  }
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  std::set<std::string> seen;
  for (const auto& pair : root) {
    if (!pair.first.IsScalar()) {
      return reader.error(pair.first,
                          "key " + value_text(pair.first) + " is not a name");
    }
    const std::string& key = pair.first.Scalar();
    // yaml-cpp 0.7 keeps both entries of a repeated key; which one a reader
    // would use is unclear, so neither is.
    if (!seen.insert(key).second) {
      return reader.error(pair.first, "key " + key + " appears twice");
    }
    if (auto applied =
            apply_setting(reader, folder, pair.first, pair.second, defaults);
        !applied) {
      return applied.error();
    }
  }
  return defaults;
}

}  // namespace qmt::pki
