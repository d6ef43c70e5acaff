#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ops/options.hpp"
#include "util/check.hpp"

namespace qmt::ops {

// Before and after texts of one file, as Ansible's --diff shows them.
struct FileDiff {
  std::string before_header;
  std::string after_header;
  std::string before;
  std::string after;
};

// Result of an operation: its changes, or in check mode the changes it
// would make.
struct Outcome {
  bool changed = false;
  bool failed = false;
  std::string msg;
  std::vector<FileDiff> diffs;
  std::vector<std::string> warnings;
  util::Checks checks;                           // returned as `checks`
  nlohmann::json data = nlohmann::json::object();  // further return keys
};

// Run settings the caller passes to an operation.
struct Context {
  bool check_mode = false;
  bool diff = false;
  int verbosity = 0;
  // Receives progress lines; the CLI prints them, the module keeps them
  // only at higher verbosity.
  std::function<void(const std::string&)> progress;
};

// One operation, served as an Ansible module and as a CLI subcommand.
struct Operation {
  std::string module_name;   // e.g. qemu_migration_tls_config
  std::string command_name;  // e.g. config
  std::string summary;
  OptionSpecs options;
  std::function<Outcome(const Params&, const Context&)> run;
};

// Every operation the binary serves.
const std::vector<Operation>& operations();

// Finds an operation by module or command name; nullptr when unknown.
const Operation* find_operation_by_module(const std::string& module_name);
const Operation* find_operation_by_command(const std::string& command_name);

// Serialises checks as the list of {name, status, file, message} objects.
nlohmann::json checks_to_json(const util::Checks& checks);

// Builds the failed Outcome for an error raised before or during the run.
Outcome failure(const std::string& message);

}  // namespace qmt::ops
