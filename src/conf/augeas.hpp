#pragma once

#include <augeas.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "util/result.hpp"

namespace qmt::conf {

// Owner of an augeas handle.
using AugeasPtr = std::unique_ptr<augeas, decltype(&aug_close)>;

// Deleter for memory that augeas allocates with malloc.
struct MallocDeleter {
  void operator()(void* memory) const { std::free(memory); }
};

// Owner of a string that augeas returns for the caller to free.
using MallocStringPtr = std::unique_ptr<char, MallocDeleter>;

// Owner of the path array that aug_match returns: frees every path and the
// array itself.
class MatchList {
 public:
  MatchList() = default;
  // Takes ownership of `paths`, an array of `count` malloc'ed strings.
  MatchList(char** paths, std::size_t count) : m_paths(paths), m_count(count) {}
  MatchList(MatchList&& other) noexcept;
  MatchList& operator=(MatchList&& other) noexcept;
  MatchList(const MatchList&) = delete;
  MatchList& operator=(const MatchList&) = delete;
  ~MatchList();

  std::size_t size() const { return m_count; }
  bool empty() const { return m_count == 0; }
  // The path at `index`, which must be below size().
  std::string operator[](std::size_t index) const { return m_paths[index]; }

 private:
  void reset();

  char** m_paths = nullptr;
  std::size_t m_count = 0;
};

// Returns aug_error_message, followed by aug_error_details when augeas gives
// them, on one line ("Lens not found: Can not find lens X.lns").
std::string augeas_error_text(augeas* handle);

// Returns the nodes matching the path expression `path`. An invalid
// expression is an error carrying augeas_error_text.
util::Result<MatchList> match_paths(augeas* handle, const std::string& path);

// Returns the value of the single node `path`, or nullopt when the node is
// missing, has no value, or `path` matches several nodes.
std::optional<std::string> node_value(augeas* handle, const std::string& path);

// Returns the label of the single node `path`, or nullopt when there is none.
std::optional<std::string> node_label(augeas* handle, const std::string& path);

// Byte offsets of a node in the text it was parsed from. Set only when the
// handle was created with AUG_ENABLE_SPAN and the node came from a parse.
struct NodeSpan {
  unsigned int label_start = 0;
  unsigned int label_end = 0;
  unsigned int value_start = 0;
  unsigned int value_end = 0;
  unsigned int span_start = 0;
  unsigned int span_end = 0;
};

// Returns the span of the single node `path`, or nullopt when the node was
// not produced by a parse (for example, created by aug_set).
std::optional<NodeSpan> node_span(augeas* handle, const std::string& path);

}  // namespace qmt::conf
