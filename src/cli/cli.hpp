#pragma once

namespace qmt::cli {

// Runs the command-line face: one subcommand per operation, flags made from
// the operation's option table, plus --json, --check, --diff and -v.
// Returns the process exit status: 0 success, 1 a failed operation or
// check, 2 a usage error.
int run_cli(int argc, char** argv);

}  // namespace qmt::cli
