#include "module/ansible_module.hpp"

#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ops/operation.hpp"
#include "util/files.hpp"

namespace qmt::module {

namespace {

using nlohmann::json;

// Ansible's internal keys that every module accepts; the ones the module
// reads are taken out of the arguments before validation.
constexpr const char* k_internal_prefix = "_ansible_";

json failed_result(const std::string& message) {
  return json{{"failed", true}, {"changed", false}, {"msg", message}};
}

json diff_to_json(const std::vector<ops::FileDiff>& diffs) {
  json list = json::array();
  for (const auto& diff : diffs) {
    list.push_back({{"before_header", diff.before_header},
                    {"after_header", diff.after_header},
                    {"before", diff.before},
                    {"after", diff.after}});
  }
  return list;
}

json outcome_to_json(const ops::Outcome& outcome, bool want_diff) {
  json result = outcome.data;
  result["changed"] = outcome.changed;
  if (outcome.failed) result["failed"] = true;
  result["msg"] = outcome.msg;
  if (!outcome.warnings.empty()) result["warnings"] = outcome.warnings;
  if (!outcome.checks.empty() || result.contains("checks")) {
    result["checks"] = ops::checks_to_json(outcome.checks);
  }
  if (want_diff && !outcome.diffs.empty()) {
    result["diff"] = diff_to_json(outcome.diffs);
  }
  return result;
}

// Reads one of Ansible's boolean keys. Ansible sends JSON booleans; other
// callers may write "yes" or 1, which are read the way options are.
bool internal_flag(const json& arguments, const char* key) {
  if (!arguments.contains(key)) return false;
  ops::OptionSpec spec;
  spec.name = key;
  spec.type = ops::OptionType::boolean;
  auto value = ops::validate_options({spec}, {{key, arguments.at(key)}}, key);
  return value && value.value()[key].get<bool>();
}

int internal_number(const json& arguments, const char* key) {
  if (!arguments.contains(key)) return 0;
  ops::OptionSpec spec;
  spec.name = key;
  spec.type = ops::OptionType::integer;
  auto value = ops::validate_options({spec}, {{key, arguments.at(key)}}, key);
  return value ? value.value()[key].get<int>() : 0;
}

json run_parsed(const json& arguments, const std::string& invoked_as) {
  std::string module_name = invoked_as;
  if (arguments.contains("_ansible_module_name") &&
      arguments["_ansible_module_name"].is_string()) {
    module_name = arguments["_ansible_module_name"].get<std::string>();
  }
  // Playbooks may call a library module by a qualified name such as
  // ansible.legacy.qemu_migration_tls_config.
  if (auto dot = module_name.rfind('.'); dot != std::string::npos) {
    module_name = module_name.substr(dot + 1);
  }
  const ops::Operation* operation = ops::find_operation_by_module(module_name);
  if (operation == nullptr) {
    return failed_result("Unknown module name '" + module_name +
                         "': this binary serves qemu_migration_tls_config, "
                         "qemu_migration_tls_cert, qemu_migration_tls_info, "
                         "qemu_migration_tls_ca and qemu_migration_tls_migrate");
  }

  ops::Context context;
  json options = json::object();
  for (const auto& item : arguments.items()) {
    if (item.key().rfind(k_internal_prefix, 0) == 0) continue;
    options[item.key()] = item.value();
  }
  context.check_mode = internal_flag(arguments, "_ansible_check_mode");
  context.diff = internal_flag(arguments, "_ansible_diff");
  context.verbosity = internal_number(arguments, "_ansible_verbosity");
  std::vector<std::string> progress;
  context.progress = [&progress](const std::string& line) {
    progress.push_back(line);
  };

  auto params = ops::validate_options(operation->options, options,
                                      operation->module_name);
  if (!params) {
    json result = failed_result(params.error().message);
    // The options failed validation, so no_log cannot be trusted to be
    // applied by value: mask every option the spec marks as secret by name.
    json masked = options;
    for (const auto& spec : operation->options) {
      if (spec.no_log && masked.contains(spec.name)) {
        masked[spec.name] = ops::k_masked;
      }
    }
    result["invocation"] = {{"module_args", masked}};
    return result;
  }

  ops::Outcome outcome;
  try {
    outcome = operation->run(params.value(), context);
  } catch (const std::exception& error) {
    outcome = ops::failure(std::string("Unexpected error in ") +
                           operation->module_name + ": " + error.what());
  }

  json result = outcome_to_json(outcome, context.diff);
  if (context.verbosity >= 2 && !progress.empty()) {
    result["progress"] = progress;
  }
  result["invocation"] = {
      {"module_args", ops::mask_params(operation->options, params.value())}};
  ops::scrub_secrets(result,
                     ops::secret_values(operation->options, params.value()));
  return result;
}

}  // namespace

bool is_module_invocation(int argc, char** argv) {
  if (argc != 2) return false;
  std::string name = std::filesystem::path(argv[0]).filename().string();
  if (name.rfind("qemu_migration_tls_", 0) == 0) return true;
  // Any binary name: a readable JSON file carrying Ansible's own keys.
  auto content = util::read_file(argv[1]);
  if (!content) return false;
  return content.value().find("\"_ansible_module_name\"") != std::string::npos;
}

int run_module(const std::string& arguments_path, const std::string& invoked_as,
               std::ostream& out) {
  json result;
  auto content = util::read_file(arguments_path);
  if (!content) {
    result = failed_result("Failed to read the module arguments: " +
                           content.error().message);
  } else {
    json arguments = json::parse(content.value(), nullptr, false);
    if (arguments.is_discarded() || !arguments.is_object()) {
      result = failed_result("Failed to parse the module arguments in " +
                             arguments_path + ": not a JSON object");
    } else {
      std::string name = std::filesystem::path(invoked_as).filename().string();
      result = run_parsed(arguments, name);
    }
  }
  out << result.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return result.value("failed", false) ? 1 : 0;
}

}  // namespace qmt::module
