#include "util/strings.hpp"

#include <algorithm>

namespace qmt::util {

std::string join(const std::vector<std::string>& items,
                 const std::string& separator) {
  std::string text;
  for (const auto& item : items) {
    if (!text.empty()) text += separator;
    text += item;
  }
  return text;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

}  // namespace qmt::util
