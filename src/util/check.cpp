#include "util/check.hpp"

#include <algorithm>

namespace qmt::util {

const char* to_string(CheckStatus status) {
  switch (status) {
    case CheckStatus::ok:
      return "ok";
    case CheckStatus::warning:
      return "warning";
    case CheckStatus::failed:
      return "failed";
  }
  return "failed";
}

bool any_failed(const Checks& checks) {
  return count_status(checks, CheckStatus::failed) > 0;
}

std::size_t count_status(const Checks& checks, CheckStatus status) {
  return static_cast<std::size_t>(
      std::count_if(checks.begin(), checks.end(),
                    [status](const Check& c) { return c.status == status; }));
}

}  // namespace qmt::util
