#include "cli/text_diff.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

namespace qmt::cli {

namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) lines.push_back(line);
  return lines;
}

enum class Edit { keep, remove, add };

struct DiffLine {
  Edit edit;
  std::string text;
};

// Longest-common-subsequence table; qemu.conf files have about a thousand
// lines, so the quadratic table stays small.
std::vector<DiffLine> diff_lines(const std::vector<std::string>& a,
                                 const std::vector<std::string>& b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<unsigned>> lcs(n + 1, std::vector<unsigned>(m + 1));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1
                               : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::vector<DiffLine> lines;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      lines.push_back({Edit::keep, a[i]});
      ++i;
      ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      lines.push_back({Edit::add, b[j++]});
    } else {
      lines.push_back({Edit::remove, a[i++]});
    }
  }
  return lines;
}

}  // namespace

std::string unified_diff(const std::string& before, const std::string& after,
                         const std::string& before_header,
                         const std::string& after_header) {
  if (before == after) return "";
  const auto lines = diff_lines(split_lines(before), split_lines(after));
  constexpr std::size_t k_context = 3;

  std::ostringstream out;
  out << "--- " << before_header << "\n+++ " << after_header << "\n";
  std::size_t index = 0;
  while (index < lines.size()) {
    if (lines[index].edit == Edit::keep) {
      ++index;
      continue;
    }
    // Grow one hunk around this change until k_context*2 unchanged lines
    // separate it from the next change.
    std::size_t start = index >= k_context ? index - k_context : 0;
    std::size_t end = index;
    std::size_t quiet = 0;
    while (end < lines.size() && quiet <= 2 * k_context) {
      quiet = lines[end].edit == Edit::keep ? quiet + 1 : 0;
      ++end;
    }
    end = std::min(lines.size(), end - quiet + std::min(quiet, k_context));

    std::size_t old_line = 1;
    std::size_t new_line = 1;
    for (std::size_t k = 0; k < start; ++k) {
      if (lines[k].edit != Edit::add) ++old_line;
      if (lines[k].edit != Edit::remove) ++new_line;
    }
    std::size_t old_count = 0;
    std::size_t new_count = 0;
    for (std::size_t k = start; k < end; ++k) {
      if (lines[k].edit != Edit::add) ++old_count;
      if (lines[k].edit != Edit::remove) ++new_count;
    }
    out << "@@ -" << old_line << "," << old_count << " +" << new_line << ","
        << new_count << " @@\n";
    for (std::size_t k = start; k < end; ++k) {
      char mark = lines[k].edit == Edit::keep     ? ' '
                  : lines[k].edit == Edit::remove ? '-'
                                                  : '+';
      out << mark << lines[k].text << "\n";
    }
    index = end;
  }
  return out.str();
}

}  // namespace qmt::cli
