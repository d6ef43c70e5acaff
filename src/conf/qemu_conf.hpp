#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "conf/augeas.hpp"
#include "util/result.hpp"

namespace qmt::conf {

// Settings for the augeas lens search path.
struct AugeasSettings {
  std::string lens_dir;  // extra lens folder searched first; empty: none
};

// Written form of a qemu.conf value: "text" (string), bare 0/1 (boolean),
// bare digits (number) or [ "a", "b" ] (list).
enum class ValueType { string, boolean, number, list };

// Returns "string", "boolean", "number" or "list".
const char* to_string(ValueType type);

// Returns the written form of `type` for messages, for example
// "a boolean written bare (0 or 1)".
std::string describe_value_type(ValueType type);

// One qemu.conf value.
struct Value {
  ValueType type = ValueType::string;
  std::string text;  // strings unquoted; booleans/numbers as written ("0","1")
  std::vector<std::string> items;  // list elements, unquoted; lists only

  Value() = default;
  Value(ValueType value_type, std::string value_text,
        std::vector<std::string> list_items = {})
      : type(value_type),
        text(std::move(value_text)),
        items(std::move(list_items)) {}
};

bool operator==(const Value& left, const Value& right);
bool operator!=(const Value& left, const Value& right);

// A qemu.conf text parsed with the Libvirtd_qemu lens only
// (AUG_NO_MODL_AUTOLOAD). It does no file I/O: the caller reads the text and
// writes render() back. Not thread-safe: one object per thread.
class QemuConf {
 public:
  // Parses `text`. `file_name` is used in messages only. A text the lens
  // cannot parse is an error "FILE:LINE:COL: <augeas message>", followed by
  // a sentence naming the cause when it is one of the forms libvirt accepts
  // but the lens rejects. It is never taken for an empty file. A
  // double-quoted string that spans lines is an error too, because libvirt
  // rejects it although the lens accepts it.
  static util::Result<QemuConf> parse(const std::string& text,
                                      const std::string& file_name,
                                      const AugeasSettings& settings);

  // First ACTIVE occurrence of `key` (libvirt uses the first one), or nullopt.
  // The type is the form the value is written in.
  std::optional<Value> get(const std::string& key) const;

  // Number of active occurrences of `key`.
  std::size_t count(const std::string& key) const;

  // Active keys in file order, each key once.
  std::vector<std::string> keys() const;

  // 1-based line of the first active occurrence of `key` in the parsed text,
  // or nullopt when it is absent or was added by set().
  std::optional<std::size_t> line_of(const std::string& key) const;

  // Value types the lens accepts for `key`, found by letting the lens parse
  // one sample line per type. Empty when the lens does not know the key.
  std::vector<ValueType> lens_value_types(const std::string& key) const;

  // Updates the first active occurrence in place (keeping its position and
  // any comment lines around it), removes later active duplicates of the
  // same key, and appends the key at the end when absent. Booleans are
  // written bare 0/1, strings double-quoted (render() checks that the lens
  // did so). Rejects values the lens would not parse, and strings with '"',
  // '\', CR or LF, which libvirt cannot read.
  util::Result<void> set(const std::string& key, const Value& value);

  // Removes every active occurrence of `key`. Comments stay.
  util::Result<void> remove(const std::string& key);

  // The text after the changes, produced by the lens (aug_text_retrieve).
  // Every line not touched stays byte-for-byte the same. A text that did not
  // end with a newline gets one once anything changed. An error when the
  // lens wrote a value from set() in another form, which a lens from
  // lens_dir that does not type keys can do.
  util::Result<std::string> render() const;

  const std::string& file_name() const { return m_file_name; }

 private:
  QemuConf(AugeasPtr handle, std::string file_name, std::string original_text,
           std::string lens_input);

  std::optional<ValueType> written_type(const std::string& key) const;
  ValueType bare_value_type(const std::string& key) const;
  util::Result<void> check_written_forms(const std::string& output) const;

  AugeasPtr m_augeas;
  std::string m_file_name;
  std::string m_original_text;
  // The text given to the lens: m_original_text plus a final newline when
  // it lacked one, because every line of the lens ends with "\n".
  std::string m_lens_input;
  // Types of values written by set(), which have no span in m_lens_input.
  std::map<std::string, ValueType> m_set_types;
  mutable std::map<std::string, std::vector<ValueType>> m_lens_types;
};

// Checks that the first active `key` in `conf` is written as `expected`
// (a bare 0 or 1 also passes as a number, and a number 0 or 1 as a
// boolean). An absent key passes. The error names `file_name`, the line, the
// key, what was found and what was expected, for example
// "/etc/libvirt/qemu.conf:2: Invalid value for migrate_tls_x509_verify:
// found the string "1", expected a boolean written bare (0 or 1)".
util::Result<void> check_value_type(const QemuConf& conf,
                                    const std::string& key, ValueType expected,
                                    const std::string& file_name);

}  // namespace qmt::conf
