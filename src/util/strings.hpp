#pragma once

#include <string>
#include <vector>

namespace qmt::util {

// Joins `items` with `separator` between them.
std::string join(const std::vector<std::string>& items,
                 const std::string& separator);

// True when `items` contains `item`.
bool contains(const std::vector<std::string>& items, const std::string& item);

}  // namespace qmt::util
