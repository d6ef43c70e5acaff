#pragma once

#include <ostream>
#include <string>

namespace qmt::module {

// True when the binary was started the way Ansible starts a binary module:
// one argument, the path of a JSON file holding the task's arguments.
bool is_module_invocation(int argc, char** argv);

// Runs the module named by the `_ansible_module_name` key of the arguments
// file (or, without it, by `invoked_as`, the basename the binary was run
// under) and writes only the JSON result to `out`. Returns 1 when the
// result is failed, else 0; Ansible reads the JSON, not the exit code.
int run_module(const std::string& arguments_path, const std::string& invoked_as,
               std::ostream& out);

}  // namespace qmt::module
