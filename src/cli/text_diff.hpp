#pragma once

#include <string>

namespace qmt::cli {

// Returns a unified diff (3 lines of context) of two texts, with
// `before_header` and `after_header` as the ---/+++ names; empty when the
// texts are equal.
std::string unified_diff(const std::string& before, const std::string& after,
                         const std::string& before_header,
                         const std::string& after_header);

}  // namespace qmt::cli
