#include "conf/augeas.hpp"

#include <utility>

namespace qmt::conf {

MatchList::MatchList(MatchList&& other) noexcept
    : m_paths(std::exchange(other.m_paths, nullptr)),
      m_count(std::exchange(other.m_count, 0)) {}

MatchList& MatchList::operator=(MatchList&& other) noexcept {
  if (this != &other) {
    reset();
    m_paths = std::exchange(other.m_paths, nullptr);
    m_count = std::exchange(other.m_count, 0);
  }
  return *this;
}

MatchList::~MatchList() {
  reset();
}

void MatchList::reset() {
  MallocDeleter free_memory;
  for (std::size_t i = 0; i < m_count; ++i) free_memory(m_paths[i]);
  free_memory(m_paths);
  m_paths = nullptr;
  m_count = 0;
}

std::string augeas_error_text(augeas* handle) {
  std::string text = aug_error_message(handle);
  const char* details = aug_error_details(handle);
  if (details != nullptr && *details != '\0') {
    std::string one_line = details;
    // Lens syntax errors come as several lines, one per failed module.
    while (!one_line.empty() && one_line.back() == '\n') one_line.pop_back();
    for (char& c : one_line) {
      if (c == '\n') c = ' ';
    }
    text += ": " + one_line;
  }
  return text;
}

util::Result<MatchList> match_paths(augeas* handle, const std::string& path) {
  char** paths = nullptr;
  int count = aug_match(handle, path.c_str(), &paths);
  if (count < 0) {
    return util::Error{"Invalid augeas path " + path + ": " +
                       augeas_error_text(handle)};
  }
  return MatchList(paths, static_cast<std::size_t>(count));
}

std::optional<std::string> node_value(augeas* handle, const std::string& path) {
  const char* value = nullptr;
  if (aug_get(handle, path.c_str(), &value) != 1 || value == nullptr) {
    return std::nullopt;
  }
  return std::string(value);
}

std::optional<std::string> node_label(augeas* handle, const std::string& path) {
  const char* label = nullptr;
  if (aug_label(handle, path.c_str(), &label) != 1 || label == nullptr) {
    return std::nullopt;
  }
  return std::string(label);
}

std::optional<NodeSpan> node_span(augeas* handle, const std::string& path) {
  NodeSpan span;
  char* file_name = nullptr;
  int result = aug_span(handle, path.c_str(), &file_name, &span.label_start,
                        &span.label_end, &span.value_start, &span.value_end,
                        &span.span_start, &span.span_end);
  MallocStringPtr owned_file_name(file_name);
  if (result != 0) return std::nullopt;
  return span;
}

}  // namespace qmt::conf
