#include "cli/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>

#include "cli/text_diff.hpp"
#include "ops/operation.hpp"

namespace qmt::cli {

namespace {

using nlohmann::json;

std::string flag_name(const std::string& option_name) {
  std::string flag = option_name;
  for (auto& c : flag) {
    if (c == '_') c = '-';
  }
  return "--" + flag;
}

// Values collected for one subcommand before validation.
struct CommandInput {
  const ops::Operation* operation = nullptr;
  CLI::App* app = nullptr;
  std::map<std::string, std::string> scalars;
  std::map<std::string, std::vector<std::string>> lists;
};

void add_flags(CommandInput& input) {
  for (const auto& spec : input.operation->options) {
    std::string help = spec.description;
    if (!spec.default_value.is_null()) {
      help += " (default: " +
              (spec.default_value.is_string()
                   ? spec.default_value.get<std::string>()
                   : spec.default_value.dump()) +
              ")";
    }
    if (!spec.choices.empty()) {
      help += " [";
      for (std::size_t i = 0; i < spec.choices.size(); ++i) {
        help += (i ? "|" : "") + spec.choices[i];
      }
      help += "]";
    }
    if (spec.type == ops::OptionType::list) {
      input.app->add_option(flag_name(spec.name), input.lists[spec.name], help)
          ->delimiter(',');
    } else {
      input.app->add_option(flag_name(spec.name), input.scalars[spec.name],
                            help);
    }
  }
}

json collect_arguments(const CommandInput& input) {
  json arguments = json::object();
  for (const auto& spec : input.operation->options) {
    auto* option = input.app->get_option(flag_name(spec.name));
    if (option->count() == 0) continue;
    if (spec.type == ops::OptionType::list) {
      arguments[spec.name] = input.lists.at(spec.name);
    } else {
      arguments[spec.name] = input.scalars.at(spec.name);
    }
  }
  return arguments;
}

const char* status_label(const std::string& status) {
  if (status == "ok") return "ok     ";
  if (status == "warning") return "warning";
  return "FAILED ";
}

void print_value(const std::string& key, const json& value, int indent) {
  std::string pad(static_cast<std::size_t>(indent), ' ');
  if (value.is_object()) {
    std::cout << pad << key << ":\n";
    for (const auto& item : value.items()) {
      print_value(item.key(), item.value(), indent + 2);
    }
  } else if (value.is_array()) {
    std::cout << pad << key << ":";
    if (value.empty()) std::cout << " []";
    std::cout << "\n";
    for (const auto& item : value) {
      if (item.is_object()) {
        std::cout << pad << "  -";
        bool first = true;
        for (const auto& field : item.items()) {
          std::cout << (first ? " " : ", ") << field.key() << "="
                    << (field.value().is_string()
                            ? field.value().get<std::string>()
                            : field.value().dump());
          first = false;
        }
        std::cout << "\n";
      } else {
        std::cout << pad << "  - "
                  << (item.is_string() ? item.get<std::string>() : item.dump())
                  << "\n";
      }
    }
  } else {
    std::cout << pad << key << ": "
              << (value.is_string() ? value.get<std::string>() : value.dump())
              << "\n";
  }
}

// Prints a result after secrets were scrubbed from it, so the terminal
// shows exactly what --json would.
void print_human(const json& result) {
  const char* state = result.value("failed", false)    ? "failed"
                      : result.value("changed", false) ? "changed"
                                                       : "ok";
  std::cout << state << ": " << result.value("msg", "") << "\n";
  for (const auto& warning : result.value("warnings", json::array())) {
    std::cout << "warning: " << warning.get<std::string>() << "\n";
  }
  static const std::set<std::string> k_shown_apart = {
      "changed", "failed", "msg", "warnings", "checks", "diff"};
  for (const auto& item : result.items()) {
    if (k_shown_apart.count(item.key())) continue;
    print_value(item.key(), item.value(), 0);
  }
  if (result.contains("checks")) {
    std::cout << "checks:\n";
    for (const auto& check : result["checks"]) {
      std::cout << "  " << status_label(check.value("status", "failed")) << " "
                << check.value("name", "") << ": "
                << check.value("message", "") << "\n";
    }
  }
  for (const auto& diff : result.value("diff", json::array())) {
    std::cout << unified_diff(diff.value("before", ""), diff.value("after", ""),
                              diff.value("before_header", ""),
                              diff.value("after_header", ""));
  }
}

json outcome_to_json(const ops::Outcome& outcome, bool want_diff) {
  json result = outcome.data;
  result["changed"] = outcome.changed;
  result["failed"] = outcome.failed;
  result["msg"] = outcome.msg;
  result["warnings"] = outcome.warnings;
  if (!outcome.checks.empty()) {
    result["checks"] = ops::checks_to_json(outcome.checks);
  }
  if (want_diff) {
    json diffs = json::array();
    for (const auto& diff : outcome.diffs) {
      diffs.push_back({{"before_header", diff.before_header},
                       {"after_header", diff.after_header},
                       {"before", diff.before},
                       {"after", diff.after}});
    }
    result["diff"] = diffs;
  }
  return result;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "qemu-migration-tls: configure and check QEMU native TLS for libvirt "
      "live migrations"};
  app.set_version_flag("--version", QMT_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  bool as_json = false;
  bool check_mode = false;
  bool want_diff = false;
  int verbosity = 0;
  app.add_flag("--json", as_json, "Print the result as JSON");
  app.add_flag("--check", check_mode,
               "Report what would change without changing anything");
  app.add_flag("--diff", want_diff, "Show the changes made to each file");
  app.add_flag("-v,--verbose", verbosity, "More output; repeat for more");

  std::vector<std::unique_ptr<CommandInput>> inputs;
  for (const auto& operation : ops::operations()) {
    auto input = std::make_unique<CommandInput>();
    input->operation = &operation;
    input->app = app.add_subcommand(operation.command_name, operation.summary);
    add_flags(*input);
    inputs.push_back(std::move(input));
  }

  bool show = false;
  for (auto& input : inputs) {
    if (input->operation->command_name == "config") {
      input->app->add_flag("--show", show,
                           "Print the migration TLS settings of qemu.conf "
                           "and change nothing");
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  CommandInput* chosen = nullptr;
  for (auto& input : inputs) {
    if (input->app->parsed()) chosen = input.get();
  }
  if (chosen == nullptr) return 2;

  const ops::Operation* operation = chosen->operation;
  json arguments = collect_arguments(*chosen);
  if (show) {
    operation = ops::find_operation_by_command("verify");
    json show_arguments = {{"fail_on_error", false}, {"check_libvirt", false}};
    for (const char* key : {"path", "root", "lens_dir"}) {
      if (arguments.contains(key)) show_arguments[key] = arguments[key];
    }
    arguments = show_arguments;
  }

  auto params = ops::validate_options(operation->options, arguments,
                                      operation->command_name);
  if (!params) {
    std::cerr << "qemu-migration-tls " << operation->command_name << ": "
              << params.error().message << "\n";
    return 2;
  }

  ops::Context context;
  context.check_mode = check_mode;
  context.diff = want_diff;
  context.verbosity = verbosity;
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  context.progress = [terminal, as_json](const std::string& line) {
    if (as_json) return;
    if (terminal) {
      std::cerr << "\r\033[K" << line << std::flush;
    } else {
      std::cerr << line << "\n";
    }
  };

  ops::Outcome outcome;
  try {
    outcome = operation->run(params.value(), context);
  } catch (const std::exception& error) {
    outcome = ops::failure(std::string("Unexpected error: ") + error.what());
  }
  if (terminal && !as_json) std::cerr << "\r\033[K" << std::flush;

  json result = outcome_to_json(outcome, want_diff);
  ops::scrub_secrets(result,
                     ops::secret_values(operation->options, params.value()));
  if (as_json) {
    std::cout << result.dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
  } else if (show) {
    // A file the lens rejects must not read as one with every key unset.
    for (const auto& check : result.value("checks", json::array())) {
      if (check.value("name", "") == "qemu.conf.parse" &&
          check.value("status", "") == "failed") {
        std::cout << "failed: " << check.value("message", "") << "\n";
        return 1;
      }
    }
    print_value("settings", result.value("settings", json::object()), 0);
    std::cout << "qemu_user: " << result.value("qemu_user", "") << "\n"
              << "qemu_group: " << result.value("qemu_group", "") << "\n";
  } else {
    print_human(result);
  }
  return outcome.failed ? 1 : 0;
}

}  // namespace qmt::cli
