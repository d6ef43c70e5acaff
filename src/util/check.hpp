#pragma once

#include <string>
#include <vector>

namespace qmt::util {

enum class CheckStatus { ok, warning, failed };

// Returns "ok", "warning" or "failed", the words used in module results.
const char* to_string(CheckStatus status);

// One named finding of a read-only check, as reported by `verify` and by the
// `checks` list of qemu_migration_tls_info.
struct Check {
  std::string name;     // stable identifier, for example "server-cert.chain"
  CheckStatus status = CheckStatus::ok;
  std::string file;     // the file the finding concerns, or empty
  std::string message;  // a sentence: what was found and what was expected
};

using Checks = std::vector<Check>;

// True when any check in `checks` has the status failed.
bool any_failed(const Checks& checks);

// The number of checks with the given status.
std::size_t count_status(const Checks& checks, CheckStatus status);

}  // namespace qmt::util
