#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace qmt::ops {

// Option types, named as in Ansible's argument specs.
enum class OptionType { str, boolean, integer, list, path };

// Returns the Ansible spelling of `type` ("str", "bool", "int", "list",
// "path").
const char* to_string(OptionType type);

// One option of an operation. The same table validates module arguments and
// generates the CLI flags, so an option added here reaches both faces.
struct OptionSpec {
  std::string name;
  OptionType type = OptionType::str;
  std::string description;
  nlohmann::json default_value;  // null: no default
  std::vector<std::string> choices;
  bool required = false;
  bool no_log = false;  // a secret: masked in invocation, diffs and messages
  std::vector<std::string> aliases;
};

using OptionSpecs = std::vector<OptionSpec>;

// Validated options: every spec'ed option is present (null when unset and
// without default), each converted to its declared type.
using Params = nlohmann::json;

// Checks `arguments` against `specs` the way Ansible's argument spec does:
// unknown options, wrong types, choices and required options are errors
// that name the option and the value. Booleans accept true/false, yes/no,
// on/off, 1/0; lists accept a list or a comma-separated string. `owner`
// names the module or command in messages.
util::Result<Params> validate_options(const OptionSpecs& specs,
                                      const nlohmann::json& arguments,
                                      const std::string& owner);

// True when `value` is PEM text rather than a path.
bool is_pem_text(const std::string& value);

// True when `value` contains a PEM private key block.
bool holds_private_key(const std::string& value);

// Returns `params` with the value of every no_log option, and of any option
// holding a private key, replaced by "********".
nlohmann::json mask_params(const OptionSpecs& specs, const Params& params);

// Collects the values to scrub from output: no_log options given as PEM
// text, and any option holding a private key.
std::vector<std::string> secret_values(const OptionSpecs& specs,
                                       const Params& params);

// Replaces every occurrence of each secret in every string inside `value`
// with "********".
void scrub_secrets(nlohmann::json& value,
                   const std::vector<std::string>& secrets);

// Text a user sees for a secret.
inline constexpr const char* k_masked = "********";

}  // namespace qmt::ops
