#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "util/result.hpp"

namespace qmt::util {

// Owns a file descriptor and closes it once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  int release();
  void reset(int fd = -1);

 private:
  int m_fd = -1;
};

// Owner, group and permission bits of a file system entry.
struct FileMode {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;  // permission bits only (07777)
};

// Reads a whole file. The error names the path and the system's reason.
Result<std::string> read_file(const std::string& path);

// Returns the owner, group and mode of `path`, or nullopt when it does not
// exist. Other stat failures are errors.
Result<std::optional<FileMode>> stat_path(const std::string& path);

// Options for atomic_write_file.
struct WriteOptions {
  FileMode mode;
  // Copy the security.selinux extended attribute from this file, if set.
  std::string selinux_context_from;
};

// Replaces `path` with `content` atomically: a temporary file in the same
// folder, created 0600 and given its final owner and mode before the first
// byte is written, fsync'ed, renamed over `path`, then the folder is fsync'ed. A
// failure leaves `path` untouched and removes the temporary file.
Result<void> atomic_write_file(const std::string& path,
                               const std::string& content,
                               const WriteOptions& options);

// Copies `path` to `path.YYYY-MM-DD@HH:MM:SS~` (the form ansible.builtin
// uses) keeping mode and owner, and returns the copy's path.
Result<std::string> backup_file(const std::string& path);

// fsyncs a folder so that renames inside it are durable.
Result<void> sync_directory(const std::string& path);

// Normalises a folder path for comparison and storage: collapses "." and
// "..", repeated and trailing slashes ("/etc/pki/x/./" gives "/etc/pki/x").
std::string normalize_path(const std::string& path);

// Prefixes an absolute `path` with `root` unless root is empty or "/".
std::string under_root(const std::string& root, const std::string& path);

// Returns the printable text of errno value `error_number`.
std::string errno_text(int error_number);

// Looks up a user or group by name or numeric id ("107" or libvirt's
// "+107").
Result<uid_t> lookup_user(const std::string& name);
Result<gid_t> lookup_group(const std::string& name);

// Returns the fully qualified host name of this machine, or the short host
// name when no domain is known.
std::string host_fqdn();

}  // namespace qmt::util
