#include "conf/lens_diagnosis.hpp"

#include <algorithm>

namespace qmt::conf {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_ascii_digit(char c) {
  return c >= '0' && c <= '9';
}

bool contains(const std::vector<ValueType>& types, ValueType type) {
  return std::find(types.begin(), types.end(), type) != types.end();
}

std::size_t skip_blanks(const std::string& text, std::size_t offset,
                        std::size_t limit) {
  while (offset < limit && is_blank(text[offset])) ++offset;
  return offset;
}

// Explains a line "KEY = VALUE" whose value is not in a form the lens
// accepts for KEY, or whose KEY the lens does not know.
std::string explain_setting(const std::string& line,
                            const ValueTypeLookup& lens_value_types) {
  std::size_t offset = skip_blanks(line, 0, line.size());
  std::size_t key_start = offset;
  if (offset >= line.size() || !is_ascii_letter(line[offset])) return "";
  while (offset < line.size() &&
         (is_ascii_letter(line[offset]) || is_ascii_digit(line[offset]) ||
          line[offset] == '_')) {
    ++offset;
  }
  std::string key = line.substr(key_start, offset - key_start);
  offset = skip_blanks(line, offset, line.size());
  if (offset >= line.size() || line[offset] != '=') return "";
  offset = skip_blanks(line, offset + 1, line.size());

  std::vector<ValueType> types = lens_value_types(key);
  if (types.empty()) {
    return "The Libvirtd_qemu lens does not know the key " + key + ".";
  }
  std::string takes = key + " takes " + describe_value_types(types);
  if (offset >= line.size()) return "";
  if (line[offset] == '"') {
    if (contains(types, ValueType::string)) return "";
    std::size_t close = line.find('"', offset + 1);
    std::string inner = line.substr(offset + 1, close == std::string::npos
                                                    ? std::string::npos
                                                    : close - offset - 1);
    return takes + ", not the string \"" + inner + "\".";
  }
  if (line[offset] == '[') {
    if (contains(types, ValueType::list)) return "";
    return takes + ", not a list.";
  }
  std::size_t end = offset;
  while (end < line.size() && !is_blank(line[end]) && line[end] != '#' &&
         line[end] != ';') {
    ++end;
  }
  std::string token = line.substr(offset, end - offset);
  bool digits =
      !token.empty() && std::all_of(token.begin(), token.end(), is_ascii_digit);
  if (digits && contains(types, ValueType::number)) return "";
  if ((token == "0" || token == "1") && contains(types, ValueType::boolean)) {
    return "";
  }
  return takes + ", not the bare value " + token + ".";
}

}  // namespace

TextPosition position_of(const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  TextPosition position;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++position.line;
      line_start = i + 1;
    }
  }
  position.column = offset - line_start + 1;
  return position;
}

bool is_valid_key(const std::string& key) {
  if (key.empty() || !is_ascii_letter(key[0])) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return is_ascii_letter(c) || is_ascii_digit(c) || c == '_';
  });
}

std::string describe_value_types(const std::vector<ValueType>& types) {
  std::string text;
  for (ValueType type : types) {
    if (!text.empty()) text += " or ";
    text += describe_value_type(type);
  }
  return text;
}

std::optional<std::size_t> find_unclosed_string(const std::string& text,
                                                std::size_t limit) {
  std::size_t line_start = 0;
  while (line_start < text.size() && line_start <= limit) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = text.size();
    std::size_t first = skip_blanks(text, line_start, line_end);
    if (first < line_end && text[first] != '#') {
      std::optional<std::size_t> open_quote;
      for (std::size_t i = first; i < line_end; ++i) {
        if (text[i] != '"') continue;
        if (open_quote) {
          open_quote.reset();
        } else {
          open_quote = i;
        }
      }
      if (open_quote) return open_quote;
    }
    line_start = line_end + 1;
  }
  return std::nullopt;
}

std::string explain_lens_failure(const std::string& text, std::size_t offset,
                                 const ValueTypeLookup& lens_value_types) {
  offset = std::min(offset, text.size());
  std::size_t line_start = 0;
  if (offset > 0) {
    std::size_t newline = text.rfind('\n', offset - 1);
    if (newline != std::string::npos) line_start = newline + 1;
  }
  std::size_t line_end = text.find('\n', offset);
  if (line_end == std::string::npos) line_end = text.size();

  std::size_t next = skip_blanks(text, offset, line_end);
  char found = next < line_end ? text[next] : '\n';
  bool text_before = skip_blanks(text, line_start, next) < next;

  if (found == '\r') {
    return "The line ends with CR LF, but the Libvirtd_qemu lens accepts LF "
           "line ends only.";
  }
  if (found == '#' && text_before) {
    return "The Libvirtd_qemu lens rejects a comment after a value, so move "
           "the comment to its own line.";
  }
  if (found == '#') {
    return "The Libvirtd_qemu lens rejects blanks before '#', so start the "
           "comment in column 1.";
  }
  if (found == ';') {
    return "The Libvirtd_qemu lens rejects ';' between settings, so put each "
           "setting on its own line.";
  }
  if (found == '\'') {
    return "The Libvirtd_qemu lens rejects single quotes, so use double "
           "quotes.";
  }
  if (found == '\\') {
    return "The Libvirtd_qemu lens rejects a backslash in a string.";
  }
  if (auto open_quote = find_unclosed_string(text, line_start)) {
    TextPosition position = position_of(text, *open_quote);
    return "The string that starts at line " + std::to_string(position.line) +
           ", column " + std::to_string(position.column) +
           " is not closed on its line.";
  }
  return explain_setting(text.substr(line_start, line_end - line_start),
                         lens_value_types);
}

}  // namespace qmt::conf
