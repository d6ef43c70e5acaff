#include <iostream>

#include "cli/cli.hpp"
#include "module/ansible_module.hpp"

int main(int argc, char** argv) {
  if (qmt::module::is_module_invocation(argc, argv)) {
    return qmt::module::run_module(argv[1], argv[0], std::cout);
  }
  return qmt::cli::run_cli(argc, argv);
}
