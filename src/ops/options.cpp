#include "ops/options.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "util/strings.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string trim(const std::string& text) {
  auto begin = text.find_first_not_of(" \t\n");
  if (begin == std::string::npos) return "";
  auto end = text.find_last_not_of(" \t\n");
  return text.substr(begin, end - begin + 1);
}

std::string shown(const json& value) {
  if (value.is_string()) return "'" + value.get<std::string>() + "'";
  return value.dump();
}

util::Result<json> to_boolean(const json& value) {
  if (value.is_boolean()) return value;
  if (value.is_number_integer()) {
    auto number = value.get<long long>();
    if (number == 0 || number == 1) return json(number == 1);
  }
  if (value.is_string()) {
    static const std::set<std::string> k_true = {"true", "yes", "on", "1",
                                                 "y", "t"};
    static const std::set<std::string> k_false = {"false", "no", "off", "0",
                                                  "n", "f"};
    std::string text = lowercase(trim(value.get<std::string>()));
    if (k_true.count(text)) return json(true);
    if (k_false.count(text)) return json(false);
  }
  return util::Error{shown(value) +
                     " is not a valid boolean; expected true or false "
                     "(yes/no, on/off and 1/0 are accepted too)"};
}

util::Result<json> to_integer(const json& value) {
  if (value.is_number_integer()) return value;
  if (value.is_number_float()) {
    double number = value.get<double>();
    if (number == static_cast<double>(static_cast<long long>(number))) {
      return json(static_cast<long long>(number));
    }
  }
  if (value.is_string()) {
    std::string text = trim(value.get<std::string>());
    if (!text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) ||
                          text[0] == '-')) {
      std::size_t used = 0;
      try {
        long long number = std::stoll(text, &used);
        if (used == text.size()) return json(number);
      } catch (const std::exception&) {
      }
    }
  }
  return util::Error{shown(value) + " is not a valid integer"};
}

util::Result<json> to_text(const json& value) {
  if (value.is_string()) return value;
  if (value.is_number() || value.is_boolean()) {
    return json(value.is_string() ? value.get<std::string>() : value.dump());
  }
  return util::Error{shown(value) + " is not a valid string"};
}

util::Result<json> to_list(const json& value) {
  if (value.is_array()) {
    json items = json::array();
    for (const auto& item : value) {
      auto text = to_text(item);
      if (!text) return util::Error{"an element " + text.error().message};
      items.push_back(text.value());
    }
    return items;
  }
  if (value.is_string()) {
    json items = json::array();
    std::stringstream stream(value.get<std::string>());
    std::string item;
    while (std::getline(stream, item, ',')) {
      item = trim(item);
      if (!item.empty()) items.push_back(item);
    }
    return items;
  }
  return util::Error{shown(value) + " is not a valid list"};
}

util::Result<json> convert(const OptionSpec& spec, const json& value) {
  switch (spec.type) {
    case OptionType::boolean:
      return to_boolean(value);
    case OptionType::integer:
      return to_integer(value);
    case OptionType::list:
      return to_list(value);
    case OptionType::str:
    case OptionType::path:
      return to_text(value);
  }
  return util::Error{"unknown option type"};
}

std::string join(const std::vector<std::string>& items) {
  return util::join(items, ", ");
}

}  // namespace

const char* to_string(OptionType type) {
  switch (type) {
    case OptionType::str:
      return "str";
    case OptionType::boolean:
      return "bool";
    case OptionType::integer:
      return "int";
    case OptionType::list:
      return "list";
    case OptionType::path:
      return "path";
  }
  return "str";
}

util::Result<Params> validate_options(const OptionSpecs& specs,
                                      const json& arguments,
                                      const std::string& owner) {
  if (!arguments.is_object()) {
    return util::Error{"Arguments for " + owner + " must be a mapping"};
  }

  std::vector<std::string> unknown;
  std::vector<std::string> supported;
  for (const auto& spec : specs) supported.push_back(spec.name);
  std::sort(supported.begin(), supported.end());
  for (const auto& item : arguments.items()) {
    bool known = std::any_of(specs.begin(), specs.end(), [&](const auto& s) {
      return s.name == item.key() ||
             std::find(s.aliases.begin(), s.aliases.end(), item.key()) !=
                 s.aliases.end();
    });
    if (!known) unknown.push_back(item.key());
  }
  if (!unknown.empty()) {
    std::sort(unknown.begin(), unknown.end());
    return util::Error{"Unsupported parameters for " + owner + ": " +
                       join(unknown) + ". Supported parameters include: " +
                       join(supported) + "."};
  }

  Params params = json::object();
  for (const auto& spec : specs) {
    const json* given = nullptr;
    if (arguments.contains(spec.name)) given = &arguments.at(spec.name);
    for (const auto& alias : spec.aliases) {
      if (given == nullptr && arguments.contains(alias)) {
        given = &arguments.at(alias);
      }
    }
    if (given == nullptr || given->is_null()) {
      if (spec.required) {
        return util::Error{"Missing required option for " + owner + ": " +
                           spec.name};
      }
      params[spec.name] = spec.default_value;
      continue;
    }
    auto converted = convert(spec, *given);
    if (!converted) {
      std::string value_text =
          spec.no_log ? std::string(k_masked) : converted.error().message;
      return util::Error{"Invalid value for option " + spec.name + " of " +
                         owner + ": " + value_text};
    }
    if (!spec.choices.empty()) {
      std::string text = converted.value().is_string()
                             ? converted.value().get<std::string>()
                             : converted.value().dump();
      if (std::find(spec.choices.begin(), spec.choices.end(), text) ==
          spec.choices.end()) {
        return util::Error{"Invalid value for option " + spec.name + " of " +
                           owner + ": '" + text + "' is not one of " +
                           join(spec.choices)};
      }
    }
    params[spec.name] = converted.value();
  }
  return params;
}

bool is_pem_text(const std::string& value) {
  return value.find("-----BEGIN") != std::string::npos;
}

bool holds_private_key(const std::string& value) {
  return value.find("PRIVATE KEY-----") != std::string::npos;
}

json mask_params(const OptionSpecs& specs, const Params& params) {
  json masked = params;
  for (const auto& spec : specs) {
    if (!masked.contains(spec.name) || masked[spec.name].is_null()) continue;
    const json& value = masked[spec.name];
    if (spec.no_log ||
        (value.is_string() && holds_private_key(value.get<std::string>()))) {
      masked[spec.name] = k_masked;
    }
  }
  return masked;
}

std::vector<std::string> secret_values(const OptionSpecs& specs,
                                       const Params& params) {
  std::vector<std::string> secrets;
  for (const auto& spec : specs) {
    if (!params.contains(spec.name) || !params.at(spec.name).is_string()) {
      continue;
    }
    const std::string value = params.at(spec.name).get<std::string>();
    // A no_log option given as a path is not secret, and naming the file
    // in messages helps; its PEM text is. Any option holding a private key
    // (for example a key pasted into a certificate option) is secret too.
    if ((spec.no_log && is_pem_text(value)) || holds_private_key(value)) {
      secrets.push_back(value);
    }
  }
  return secrets;
}

void scrub_secrets(json& value, const std::vector<std::string>& secrets) {
  if (secrets.empty()) return;
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    bool replaced = false;
    for (const auto& secret : secrets) {
      for (auto at = text.find(secret); at != std::string::npos;
           at = text.find(secret, at)) {
        text.replace(at, secret.size(), k_masked);
        replaced = true;
      }
    }
    if (replaced) value = text;
    return;
  }
  if (value.is_array() || value.is_object()) {
    for (auto& child : value) scrub_secrets(child, secrets);
  }
}

}  // namespace qmt::ops
