#include "conf/qemu_conf.hpp"

#include <algorithm>
#include <cstdlib>

#include "conf/lens_diagnosis.hpp"

namespace qmt::conf {

namespace {

constexpr const char* k_lens = "Libvirtd_qemu.lns";
constexpr const char* k_input_path = "/text/input";
constexpr const char* k_tree_path = "/text/tree";
constexpr const char* k_output_path = "/text/output";
// aug_text_store and aug_text_retrieve record failures under
// /augeas/text/<tree path>/error.
constexpr const char* k_error_path = "/augeas/text/text/tree/error";
constexpr const char* k_probe_input_path = "/probe/input";
constexpr const char* k_probe_tree_path = "/probe/tree";
constexpr const char* k_check_input_path = "/check/input";
constexpr const char* k_check_tree_path = "/check/tree";

std::string key_path(const std::string& key) {
  return std::string(k_tree_path) + "/" + key;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

std::size_t to_size(const std::optional<std::string>& text) {
  return text ? std::strtoul(text->c_str(), nullptr, 10) : 0;
}

// True when the lens parses `text`. The probe tree and its error record are
// removed again, so probing leaves the parsed file untouched.
bool lens_parses(augeas* handle, const std::string& text) {
  if (aug_set(handle, k_probe_input_path, text.c_str()) < 0) return false;
  int result =
      aug_text_store(handle, k_lens, k_probe_input_path, k_probe_tree_path);
  aug_rm(handle, "/probe");
  aug_rm(handle, "/augeas/text/probe");
  return result == 0;
}

// The lens types values by key (libvirtd_qemu.aug: str_entry, bool_entry,
// int_entry, str_array_entry), so a sample line per type shows which types
// a key takes. "2" separates numbers from booleans, which accept only 0|1.
std::vector<ValueType> probe_value_types(augeas* handle,
                                         const std::string& key) {
  std::vector<ValueType> types;
  if (!is_valid_key(key)) return types;
  if (lens_parses(handle, key + " = \"x\"\n")) {
    types.push_back(ValueType::string);
  }
  if (lens_parses(handle, key + " = 2\n")) {
    types.push_back(ValueType::number);
  } else if (lens_parses(handle, key + " = 0\n")) {
    types.push_back(ValueType::boolean);
  }
  if (lens_parses(handle, key + " = []\n")) types.push_back(ValueType::list);
  // NOTE: max_core also takes the string "unlimited", which the probe with
  // "x" does not find, so it is reported as a number only.
  return types;
}

std::string quoted(const std::string& text) {
  return "\"" + text + "\"";
}

// Shows CR and LF as \r and \n so that a message stays on one line.
std::string printable(const std::string& text) {
  std::string result;
  for (char c : text) {
    if (c == '\n') {
      result += "\\n";
    } else if (c == '\r') {
      result += "\\r";
    } else {
      result += c;
    }
  }
  return result;
}

// Written form of a value in the text. The tree does not keep it, because it
// stores "1" for both `k = 1` and `k = "1"`.
enum class WrittenForm { quoted, list, bare };

// Reads the form of the value of the node at `path` from the character after
// '=' in `text`, the text the node was parsed from.
std::optional<WrittenForm> written_form(augeas* handle, const std::string& path,
                                        const std::string& text) {
  auto span = node_span(handle, path);
  if (!span) return std::nullopt;
  std::size_t offset = span->label_end;
  while (offset < text.size() &&
         (text[offset] == ' ' || text[offset] == '\t' || text[offset] == '=')) {
    ++offset;
  }
  if (offset >= text.size()) return std::nullopt;
  if (text[offset] == '"') return WrittenForm::quoted;
  if (text[offset] == '[') return WrittenForm::list;
  return WrittenForm::bare;
}

WrittenForm form_of(ValueType type) {
  switch (type) {
    case ValueType::string:
      return WrittenForm::quoted;
    case ValueType::list:
      return WrittenForm::list;
    case ValueType::boolean:
    case ValueType::number:
      return WrittenForm::bare;
  }
  return WrittenForm::bare;
}

// The value as the lens writes it back: strings double-quoted, booleans and
// numbers bare, lists as [ "a", "b" ].
std::string format_value(const Value& value) {
  switch (value.type) {
    case ValueType::string:
      return quoted(value.text);
    case ValueType::boolean:
    case ValueType::number:
      return value.text;
    case ValueType::list: {
      if (value.items.empty()) return "[]";
      std::string text = "[ ";
      for (std::size_t i = 0; i < value.items.size(); ++i) {
        if (i > 0) text += ", ";
        text += quoted(value.items[i]);
      }
      return text + " ]";
    }
  }
  return value.text;
}

// libvirt's qemu.conf strings have no escapes and end at the line end
// (virConfParseString in libvirt's src/util/virconf.c). The lens's string
// pattern excludes '"' and '\'.
std::optional<std::string> invalid_string_reason(const std::string& text) {
  if (text.find('"') != std::string::npos) return "contains '\"'";
  if (text.find('\\') != std::string::npos) return "contains '\\'";
  if (text.find_first_of("\r\n") != std::string::npos) {
    return "contains a line break";
  }
  return std::nullopt;
}

util::Result<void> validate_value(const std::string& key, const Value& value,
                                  const std::string& file_name) {
  std::string prefix = "Cannot set " + key + " in " + file_name + ": ";
  switch (value.type) {
    case ValueType::boolean:
      if (value.text != "0" && value.text != "1") {
        return util::Error{prefix + "invalid boolean " + quoted(value.text) +
                           ", expected 0 or 1"};
      }
      return {};
    case ValueType::number:
      if (value.text.empty() ||
          value.text.find_first_not_of("0123456789") != std::string::npos) {
        return util::Error{prefix + "invalid number " + quoted(value.text) +
                           ", expected decimal digits"};
      }
      return {};
    case ValueType::string:
      if (auto reason = invalid_string_reason(value.text)) {
        return util::Error{prefix + "the string " +
                           quoted(printable(value.text)) + " " + *reason +
                           ", which libvirt cannot read"};
      }
      return {};
    case ValueType::list:
      for (const std::string& item : value.items) {
        if (auto reason = invalid_string_reason(item)) {
          return util::Error{prefix + "the list item " +
                             quoted(printable(item)) + " " + *reason +
                             ", which libvirt cannot read"};
        }
      }
      return {};
  }
  return {};
}

util::Result<void> augeas_call_error(augeas* handle, const std::string& action,
                                     const std::string& file_name) {
  return util::Error{"Failed to " + action + " in " + file_name + ": " +
                     augeas_error_text(handle)};
}

// Builds "FILE:LINE:COL: <augeas message>. <cause>" from the error record of
// a failed aug_text_store.
util::Error parse_error(augeas* handle, const std::string& lens_input,
                        const std::string& file_name) {
  std::string base = k_error_path;
  std::size_t offset = to_size(node_value(handle, base + "/pos"));
  std::size_t line = to_size(node_value(handle, base + "/line"));
  // augeas counts characters from 0; editors and compilers from 1.
  std::size_t column = to_size(node_value(handle, base + "/char")) + 1;
  if (line == 0) {
    TextPosition position = position_of(lens_input, offset);
    line = position.line;
    column = position.column;
  }
  std::string message = first_line(
      node_value(handle, base + "/message").value_or("parse failed"));
  std::string text = file_name + ":" + std::to_string(line) + ":" +
                     std::to_string(column) + ": " + message;
  std::string cause = explain_lens_failure(
      lens_input, offset,
      [&](const std::string& key) { return probe_value_types(handle, key); });
  if (!cause.empty()) text += ". " + cause;
  return util::Error{text};
}

// The lens accepts a double-quoted string that spans lines because its
// pattern [^"]* includes '\n', but libvirt ends a string at the line end.
util::Result<void> check_single_line_strings(augeas* handle,
                                             const std::string& lens_input,
                                             const std::string& file_name) {
  // Only settings: asking for the children of each of the hundreds of
  // comment nodes by index would cost quadratic time.
  auto settings = match_paths(
      handle, std::string(k_tree_path) +
                  "/*[label() != '#comment' and label() != '#empty']");
  if (!settings) return settings.error();
  for (std::size_t i = 0; i < settings->size(); ++i) {
    std::string setting_path = (*settings)[i];
    auto items = match_paths(handle, setting_path + "/*");
    if (!items) return items.error();
    std::vector<std::string> node_paths{setting_path};
    for (std::size_t j = 0; j < items->size(); ++j) {
      node_paths.push_back((*items)[j]);
    }
    for (const std::string& node_path : node_paths) {
      auto value = node_value(handle, node_path);
      if (!value || value->find('\n') == std::string::npos) continue;
      std::string key = node_label(handle, setting_path).value_or("?");
      std::string location = file_name;
      if (auto span = node_span(handle, node_path); span && span->value_start) {
        TextPosition position = position_of(lens_input, span->value_start - 1);
        location += ":" + std::to_string(position.line) + ":" +
                    std::to_string(position.column);
      }
      return util::Error{location + ": The string of " + key +
                         " is not closed on its line. libvirt rejects a "
                         "double-quoted string that spans lines."};
    }
  }
  return {};
}

}  // namespace

const char* to_string(ValueType type) {
  switch (type) {
    case ValueType::string:
      return "string";
    case ValueType::boolean:
      return "boolean";
    case ValueType::number:
      return "number";
    case ValueType::list:
      return "list";
  }
  return "unknown";
}

std::string describe_value_type(ValueType type) {
  switch (type) {
    case ValueType::string:
      return "a double-quoted string";
    case ValueType::boolean:
      return "a boolean written bare (0 or 1)";
    case ValueType::number:
      return "a number written bare";
    case ValueType::list:
      return "a list of double-quoted strings in [ ]";
  }
  return "an unknown type";
}

bool operator==(const Value& left, const Value& right) {
  return left.type == right.type && left.text == right.text &&
         left.items == right.items;
}

bool operator!=(const Value& left, const Value& right) {
  return !(left == right);
}

QemuConf::QemuConf(AugeasPtr handle, std::string file_name,
                   std::string original_text, std::string lens_input)
    : m_augeas(std::move(handle)),
      m_file_name(std::move(file_name)),
      m_original_text(std::move(original_text)),
      m_lens_input(std::move(lens_input)) {}

util::Result<QemuConf> QemuConf::parse(const std::string& text,
                                       const std::string& file_name,
                                       const AugeasSettings& settings) {
  // augeas takes the text as a C string, which would end at a NUL byte.
  if (std::size_t nul = text.find('\0'); nul != std::string::npos) {
    TextPosition position = position_of(text, nul);
    return util::Error{file_name + ":" + std::to_string(position.line) + ":" +
                       std::to_string(position.column) +
                       ": Invalid NUL byte. qemu.conf must be a text file."};
  }

  const char* load_path =
      settings.lens_dir.empty() ? nullptr : settings.lens_dir.c_str();
  // Loading one lens instead of every lens augeas ships cuts the parse of
  // Debian 12's stock qemu.conf from about 400 ms to about 13 ms (augeas
  // 1.14, measured on 2 shared cores). AUG_ENABLE_SPAN keeps the offsets
  // that show how each value was written.
  AugeasPtr handle(aug_init(nullptr, load_path,
                            AUG_NO_MODL_AUTOLOAD | AUG_NO_LOAD |
                                AUG_ENABLE_SPAN | AUG_NO_ERR_CLOSE),
                   &aug_close);
  if (!handle) {
    return util::Error{"Failed to initialize augeas for " + file_name +
                       ": out of memory"};
  }
  if (aug_error(handle.get()) != AUG_NOERROR) {
    return util::Error{"Failed to initialize augeas for " + file_name + ": " +
                       augeas_error_text(handle.get())};
  }

  std::string lens_input = text;
  if (!lens_input.empty() && lens_input.back() != '\n') lens_input += '\n';
  if (aug_set(handle.get(), k_input_path, lens_input.c_str()) < 0) {
    return augeas_call_error(handle.get(), "store the text", file_name).error();
  }
  int result = aug_text_store(handle.get(), k_lens, k_input_path, k_tree_path);
  // Read the error now: the next API call resets it.
  std::string store_error =
      result < 0 ? augeas_error_text(handle.get()) : std::string();
  // A parse failure sets no aug_error code, only the error record, and
  // leaves the tree empty: check the record so that a broken file is never
  // read as a file without settings.
  auto errors = match_paths(handle.get(), k_error_path);
  if (!errors) return errors.error();
  if (!errors->empty()) return parse_error(handle.get(), lens_input, file_name);
  if (result < 0) {
    return util::Error{"Failed to parse " + file_name +
                       " with the Libvirtd_qemu lens: " + store_error};
  }
  auto single_line =
      check_single_line_strings(handle.get(), lens_input, file_name);
  if (!single_line) return single_line.error();

  return QemuConf(std::move(handle), file_name, text, std::move(lens_input));
}

std::optional<Value> QemuConf::get(const std::string& key) const {
  if (!is_valid_key(key)) return std::nullopt;
  std::string path = key_path(key) + "[1]";
  auto matches = match_paths(m_augeas.get(), path);
  if (!matches || matches->empty()) return std::nullopt;

  Value value;
  value.type = written_type(key).value_or(ValueType::string);
  if (value.type == ValueType::list) {
    auto items = match_paths(m_augeas.get(), path + "/*");
    if (items) {
      for (std::size_t i = 0; i < items->size(); ++i) {
        value.items.push_back(
            node_value(m_augeas.get(), (*items)[i]).value_or(""));
      }
    }
  } else {
    value.text = node_value(m_augeas.get(), path).value_or("");
  }
  return value;
}

std::size_t QemuConf::count(const std::string& key) const {
  if (!is_valid_key(key)) return 0;
  auto matches = match_paths(m_augeas.get(), key_path(key));
  return matches ? matches->size() : 0;
}

std::vector<std::string> QemuConf::keys() const {
  std::vector<std::string> result;
  auto matches = match_paths(m_augeas.get(), std::string(k_tree_path) + "/*");
  if (!matches) return result;
  for (std::size_t i = 0; i < matches->size(); ++i) {
    auto label = node_label(m_augeas.get(), (*matches)[i]);
    if (!label || label->empty() || (*label)[0] == '#') continue;
    if (std::find(result.begin(), result.end(), *label) == result.end()) {
      result.push_back(*label);
    }
  }
  return result;
}

std::optional<std::size_t> QemuConf::line_of(const std::string& key) const {
  if (!is_valid_key(key)) return std::nullopt;
  auto span = node_span(m_augeas.get(), key_path(key) + "[1]");
  if (!span) return std::nullopt;
  return position_of(m_lens_input, span->label_start).line;
}

std::vector<ValueType> QemuConf::lens_value_types(
    const std::string& key) const {
  auto cached = m_lens_types.find(key);
  if (cached != m_lens_types.end()) return cached->second;
  std::vector<ValueType> types = probe_value_types(m_augeas.get(), key);
  m_lens_types.emplace(key, types);
  return types;
}

std::optional<ValueType> QemuConf::written_type(const std::string& key) const {
  auto set_type = m_set_types.find(key);
  if (set_type != m_set_types.end()) return set_type->second;

  auto form = written_form(m_augeas.get(), key_path(key) + "[1]", m_lens_input);
  if (!form) return std::nullopt;
  switch (*form) {
    case WrittenForm::quoted:
      return ValueType::string;
    case WrittenForm::list:
      return ValueType::list;
    case WrittenForm::bare:
      return bare_value_type(key);
  }
  return std::nullopt;
}

ValueType QemuConf::bare_value_type(const std::string& key) const {
  std::vector<ValueType> types = lens_value_types(key);
  bool boolean =
      std::find(types.begin(), types.end(), ValueType::boolean) != types.end();
  return boolean ? ValueType::boolean : ValueType::number;
}

util::Result<void> QemuConf::set(const std::string& key, const Value& value) {
  if (!is_valid_key(key)) {
    return util::Error{"Cannot set \"" + key + "\" in " + m_file_name +
                       ": invalid key, expected a letter followed by "
                       "letters, digits or '_'"};
  }
  auto valid = validate_value(key, value, m_file_name);
  if (!valid) return valid;

  std::string line = key + " = " + format_value(value);
  if (!lens_parses(m_augeas.get(), line + "\n")) {
    std::vector<ValueType> types = lens_value_types(key);
    std::string reason =
        types.empty() ? "the Libvirtd_qemu lens does not know the key " + key
                      : "the Libvirtd_qemu lens accepts only " +
                            describe_value_types(types) + " for " + key;
    return util::Error{"Cannot set " + line + " in " + m_file_name + ": " +
                       reason};
  }

  augeas* handle = m_augeas.get();
  std::string target = key_path(key);
  if (count(key) > 0) {
    if (aug_rm(handle, (target + "[position() > 1]").c_str()) < 0) {
      return augeas_call_error(handle, "remove duplicates of " + key,
                               m_file_name);
    }
    target += "[1]";
  }
  if (aug_rm(handle, (target + "/*").c_str()) < 0) {
    return augeas_call_error(handle, "clear " + key, m_file_name);
  }
  const char* node_text =
      value.type == ValueType::list ? nullptr : value.text.c_str();
  // aug_set on a key that is not in the tree appends it after the last line.
  if (aug_set(handle, target.c_str(), node_text) < 0) {
    return augeas_call_error(handle, "set " + key, m_file_name);
  }
  for (std::size_t i = 0;
       i < value.items.size() && value.type == ValueType::list; ++i) {
    std::string item_path = target + "/" + std::to_string(i + 1);
    if (aug_set(handle, item_path.c_str(), value.items[i].c_str()) < 0) {
      return augeas_call_error(handle, "set " + key, m_file_name);
    }
  }
  m_set_types[key] = value.type;
  return {};
}

util::Result<void> QemuConf::remove(const std::string& key) {
  if (!is_valid_key(key)) {
    return util::Error{"Cannot remove \"" + key + "\" from " + m_file_name +
                       ": invalid key, expected a letter followed by "
                       "letters, digits or '_'"};
  }
  if (aug_rm(m_augeas.get(), key_path(key).c_str()) < 0) {
    return augeas_call_error(m_augeas.get(), "remove " + key, m_file_name);
  }
  m_set_types.erase(key);
  return {};
}

util::Result<std::string> QemuConf::render() const {
  augeas* handle = m_augeas.get();
  aug_rm(handle, k_error_path);
  int result = aug_text_retrieve(handle, k_lens, k_input_path, k_tree_path,
                                 k_output_path);
  std::string retrieve_error =
      result < 0 ? augeas_error_text(handle) : std::string();
  if (auto message =
          node_value(handle, std::string(k_error_path) + "/message")) {
    // The first line names the node; the rest dumps the whole lens.
    return util::Error{"Failed to render " + m_file_name +
                       " with the Libvirtd_qemu lens: " + first_line(*message)};
  }
  if (result < 0) {
    return util::Error{"Failed to render " + m_file_name +
                       " with the Libvirtd_qemu lens: " + retrieve_error};
  }
  std::string output = node_value(handle, k_output_path).value_or("");
  // Unchanged: give back the caller's bytes, without the final newline that
  // parse() added for the lens.
  if (output == m_lens_input) return m_original_text;
  auto forms = check_written_forms(output);
  if (!forms) return forms.error();
  return output;
}

// The lens, not set(), decides how a changed value is written. libvirt's
// lens types every key, but a lens from AugeasSettings::lens_dir may quote a
// boolean, which libvirt then rejects; parse the output again to catch that.
util::Result<void> QemuConf::check_written_forms(
    const std::string& output) const {
  if (m_set_types.empty()) return {};
  augeas* handle = m_augeas.get();
  aug_set(handle, k_check_input_path, output.c_str());
  int result =
      aug_text_store(handle, k_lens, k_check_input_path, k_check_tree_path);
  util::Result<void> verdict;
  if (result < 0) {
    verdict = util::Error{"Failed to render " + m_file_name +
                          ": the Libvirtd_qemu lens cannot parse its own "
                          "output"};
  }
  for (const auto& [key, type] : m_set_types) {
    if (!verdict) break;
    std::string path = std::string(k_check_tree_path) + "/" + key + "[1]";
    auto form = written_form(handle, path, output);
    if (form && *form != form_of(type)) {
      verdict = util::Error{"Failed to render " + m_file_name +
                            ": the Libvirtd_qemu lens did not write " + key +
                            " as " + describe_value_type(type)};
    }
  }
  aug_rm(handle, "/check");
  aug_rm(handle, "/augeas/text/check");
  return verdict;
}

util::Result<void> check_value_type(const QemuConf& conf,
                                    const std::string& key, ValueType expected,
                                    const std::string& file_name) {
  std::optional<Value> value = conf.get(key);
  if (!value) return {};
  bool zero_or_one = value->text == "0" || value->text == "1";
  bool matches =
      value->type == expected ||
      (expected == ValueType::boolean && value->type == ValueType::number &&
       zero_or_one) ||
      (expected == ValueType::number && value->type == ValueType::boolean);
  if (matches) return {};

  std::string found;
  switch (value->type) {
    case ValueType::string:
      found = "the string " + quoted(value->text);
      break;
    case ValueType::boolean:
      found = "the boolean " + value->text;
      break;
    case ValueType::number:
      found = "the number " + value->text;
      break;
    case ValueType::list:
      found = "a list";
      break;
  }
  std::string location = file_name;
  if (auto line = conf.line_of(key)) location += ":" + std::to_string(*line);
  return util::Error{location + ": Invalid value for " + key + ": found " +
                     found + ", expected " + describe_value_type(expected)};
}

}  // namespace qmt::conf
