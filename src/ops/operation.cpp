#include "ops/operation.hpp"

#include "ops/ca_operation.hpp"
#include "ops/cert_operation.hpp"
#include "ops/config_operation.hpp"
#include "ops/info_operation.hpp"
#include "ops/migrate_operation.hpp"

namespace qmt::ops {

const std::vector<Operation>& operations() {
  static const std::vector<Operation> k_operations = {
      config_operation(), cert_operation(), info_operation(), ca_operation(),
      migrate_operation()};
  return k_operations;
}

const Operation* find_operation_by_module(const std::string& module_name) {
  for (const auto& operation : operations()) {
    if (operation.module_name == module_name) return &operation;
  }
  return nullptr;
}

const Operation* find_operation_by_command(const std::string& command_name) {
  for (const auto& operation : operations()) {
    if (operation.command_name == command_name) return &operation;
  }
  return nullptr;
}

nlohmann::json checks_to_json(const util::Checks& checks) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& check : checks) {
    list.push_back({{"name", check.name},
                    {"status", util::to_string(check.status)},
                    {"file", check.file},
                    {"message", check.message}});
  }
  return list;
}

Outcome failure(const std::string& message) {
  Outcome outcome;
  outcome.failed = true;
  outcome.msg = message;
  return outcome;
}

}  // namespace qmt::ops
