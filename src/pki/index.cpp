#include "pki/index.hpp"

#include "pki/yaml_text.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace qmt::pki {

namespace {

using util::Error;
using util::Result;

const char* const k_entry_keys[] = {"serial",     "subject",   "names",
                                    "not_before", "not_after", "issued_at"};

std::string node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return "the value \"" + node.Scalar() + "\"";
    default:
      return "nothing";
  }
}

class EntryReader {
 public:
  EntryReader(const std::string& path, std::size_t number,
              const YAML::Node& node)
      : m_path(path), m_number(number), m_node(node) {}

  Error error(const std::string& problem) const {
    return Error{"Invalid index " + m_path + ": entry " +
                 std::to_string(m_number) + " (line " +
                 std::to_string(m_node.Mark().line + 1) + ") " + problem};
  }

  Result<std::string> text(const char* key) const {
    YAML::Node value = m_node[key];
    if (!value) return error(std::string("has no ") + key);
    if (!value.IsScalar()) {
      return error(std::string("has ") + key + " " + node_kind(value) +
                   ", expected text");
    }
    return value.Scalar();
  }

  Result<std::int64_t> time(const char* key) const {
    auto value = text(key);
    if (!value) return value.error();
    auto seconds = parse_utc_time(value.value());
    if (!seconds) {
      return error(std::string("has ") + key + " \"" + value.value() +
                   "\", expected a UTC time like 2025-01-31T12:00:00Z");
    }
    return seconds.value();
  }

  Result<std::vector<std::string>> list(const char* key) const {
    YAML::Node value = m_node[key];
    if (!value) return error(std::string("has no ") + key);
    if (!value.IsSequence()) {
      return error(std::string("has ") + key + " " + node_kind(value) +
                   ", expected a list of names");
    }
    std::vector<std::string> items;
    for (const auto& item : value) {
      if (!item.IsScalar()) {
        return error(std::string("has ") + key + " containing " +
                     node_kind(item) + ", expected a name");
      }
      items.push_back(item.Scalar());
    }
    return items;
  }

  Result<void> check_keys() const {
    for (const auto& pair : m_node) {
      std::string key = pair.first.IsScalar() ? pair.first.Scalar() : "";
      bool known = false;
      for (const char* expected : k_entry_keys) known |= key == expected;
      if (!known) {
        return error("has unknown key \"" + key +
                     "\" (this version reads serial, subject, names, "
                     "not_before, not_after and issued_at)");
      }
    }
    return {};
  }

 private:
  const std::string& m_path;
  std::size_t m_number;
  const YAML::Node& m_node;
};

Result<IndexEntry> read_entry(const std::string& path, std::size_t number,
                              const YAML::Node& node) {
  EntryReader reader(path, number, node);
  if (!node.IsMap()) {
    return reader.error("is " + node_kind(node) + ", expected a map");
  }
  // Unknown keys are rejected because append_index rewrites the whole file
  // and would silently drop them.
  if (auto keys = reader.check_keys(); !keys) return keys.error();
  IndexEntry entry;
  auto serial = reader.text("serial");
  if (!serial) return serial.error();
  entry.serial_hex = serial.value();
  auto subject = reader.text("subject");
  if (!subject) return subject.error();
  entry.subject = subject.value();
  auto names = reader.list("names");
  if (!names) return names.error();
  entry.names = names.value();
  auto not_before = reader.time("not_before");
  if (!not_before) return not_before.error();
  entry.not_before = not_before.value();
  auto not_after = reader.time("not_after");
  if (!not_after) return not_after.error();
  entry.not_after = not_after.value();
  auto issued_at = reader.text("issued_at");
  if (!issued_at) return issued_at.error();
  entry.issued_at = issued_at.value();
  return entry;
}

std::string emit_index(const std::vector<IndexEntry>& entries) {
  // Every text value is double-quoted so that other YAML readers never take
  // a serial such as "1234" for a number or a time for a timestamp object.
  YAML::Emitter out;
  out << YAML::Comment(
      "Certificates issued by this QEMU migration CA, oldest first. Written "
      "by qemu-migration-tls.");
  out << YAML::BeginSeq;
  for (const auto& entry : entries) {
    out << YAML::BeginMap;
    out << YAML::Key << "serial" << YAML::Value << YAML::DoubleQuoted
        << entry.serial_hex;
    out << YAML::Key << "subject" << YAML::Value << YAML::DoubleQuoted
        << entry.subject;
    out << YAML::Key << "names" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& name : entry.names) out << YAML::DoubleQuoted << name;
    out << YAML::EndSeq;
    out << YAML::Key << "not_before" << YAML::Value << YAML::DoubleQuoted
        << format_utc_time(entry.not_before);
    out << YAML::Key << "not_after" << YAML::Value << YAML::DoubleQuoted
        << format_utc_time(entry.not_after);
    out << YAML::Key << "issued_at" << YAML::Value << YAML::DoubleQuoted
        << entry.issued_at;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

std::string format_utc_time(std::int64_t seconds) {
  std::time_t value = static_cast<std::time_t>(seconds);
  std::tm utc{};
  if (::gmtime_r(&value, &utc) == nullptr) return "invalid time";
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

Result<std::int64_t> parse_utc_time(const std::string& text) {
  std::tm utc{};
  int consumed = 0;
  int matched = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n",
                            &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
                            &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &consumed);
  if (matched == 6 && static_cast<std::size_t>(consumed) == text.size()) {
    utc.tm_year -= 1900;
    utc.tm_mon -= 1;
    std::int64_t seconds = ::timegm(&utc);
    // timegm normalises out-of-range fields ("02-30" becomes March 2), so
    // only text that formats back identically is accepted.
    if (format_utc_time(seconds) == text) return seconds;
  }
  return Error{"Invalid time \"" + text +
               "\": expected UTC in the form 2025-01-31T12:00:00Z"};
}

std::string lock_path_for(const std::string& path) {
  std::filesystem::path file(path);
  std::string folder = file.parent_path().string();
  return (folder.empty() ? std::string(".") : folder) + "/." +
         file.filename().string() + ".lock";
}

Result<util::UniqueFd> lock_file(const std::string& lock_path, bool exclusive) {
  // Read access is enough for flock(2), so a user who can only read the
  // folder can still take a shared lock.
  int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_CREAT : 0);
  util::UniqueFd fd(::open(lock_path.c_str(), flags, 0644));
  if (!fd.valid()) {
    if (!exclusive && errno == ENOENT) return util::UniqueFd();
    return Error{"Failed to open lock file " + lock_path + ": " +
                 util::errno_text(errno)};
  }
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno == EINTR) continue;
    return Error{"Failed to lock " + lock_path + ": " +
                 util::errno_text(errno)};
  }
  return fd;
}

Result<std::vector<IndexEntry>> read_index(const std::string& path) {
  auto present = util::stat_path(path);
  if (!present) return present.error();
  if (!present.value()) return std::vector<IndexEntry>{};
  auto content = util::read_file(path);
  if (!content) return content.error();

  auto parsed = parse_yaml(content.value(), path);
  if (!parsed) return parsed.error();
  YAML::Node root = parsed.value();
  if (root.IsNull()) return std::vector<IndexEntry>{};
  if (!root.IsSequence()) {
    return Error{"Invalid index " + path +
                 ": expected a list of certificates, found " + node_kind(root)};
  }
  std::vector<IndexEntry> entries;
  std::size_t number = 0;
  for (const auto& node : root) {
    auto entry = read_entry(path, ++number, node);
    if (!entry) return entry.error();
    entries.push_back(std::move(entry).value());
  }
  return entries;
}

Result<void> append_index(const std::string& path, const IndexEntry& entry) {
  auto lock = lock_file(lock_path_for(path), true);
  if (!lock) return lock.error();
  auto entries = read_index(path);
  if (!entries) return entries.error();
  entries.value().push_back(entry);
  // The owner of an existing index is kept: root running the tool must not
  // take the file away from the user who maintains the CA.
  auto current = util::stat_path(path);
  if (!current) return current.error();
  util::WriteOptions options;
  options.mode = {::getuid(), ::getgid(), 0644};
  if (current.value()) {
    options.mode.uid = current.value()->uid;
    options.mode.gid = current.value()->gid;
  }
  return util::atomic_write_file(path, emit_index(entries.value()), options);
}

}  // namespace qmt::pki
