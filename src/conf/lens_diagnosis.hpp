#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "conf/qemu_conf.hpp"

namespace qmt::conf {

// 1-based line and byte column of an offset in a text.
struct TextPosition {
  std::size_t line = 1;
  std::size_t column = 1;
};

// Returns the position of byte `offset` in `text` (offsets past the end
// count as the end).
TextPosition position_of(const std::string& text, std::size_t offset);

// True when `key` is a libvirt setting name: a letter, then letters, digits
// or '_'. Other names cannot be in a parsed tree and would be read as augeas
// path expressions.
bool is_valid_key(const std::string& key);

// Returns the value types the lens accepts for a key, or an empty list when
// the lens does not know the key.
using ValueTypeLookup =
    std::function<std::vector<ValueType>(const std::string& key)>;

// Returns describe_value_type of each of `types`, joined by " or ".
std::string describe_value_types(const std::vector<ValueType>& types);

// Explains why the Libvirtd_qemu lens stopped at byte `offset` of `text`.
// It knows the forms that libvirt reads but the lens rejects: CR LF line
// ends, a comment after a value or after blanks, ';' separators, single
// quotes, backslashes, strings not closed on their line, values in the wrong
// form and keys the lens does not know. Returns one sentence, or "" when
// none of these fits.
std::string explain_lens_failure(const std::string& text, std::size_t offset,
                                 const ValueTypeLookup& lens_value_types);

// Returns the offset of the opening quote of the first double-quoted string
// that is not closed on its own line, or nullopt. Only setting lines that
// start at or before `limit` count, and comment lines never do.
std::optional<std::size_t> find_unclosed_string(const std::string& text,
                                                std::size_t limit);

}  // namespace qmt::conf
