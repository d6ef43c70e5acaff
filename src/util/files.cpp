#include "util/files.hpp"

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <vector>

namespace qmt::util {

namespace {

Error errno_error(const std::string& action, const std::string& path,
                  int error_number) {
  return Error{action + " " + path + ": " + errno_text(error_number)};
}

std::string parent_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

std::string random_suffix() {
  static std::mt19937_64 generator{std::random_device{}()};
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string suffix;
  for (int i = 0; i < 8; ++i) {
    suffix += alphabet[generator() % (sizeof(alphabet) - 1)];
  }
  return suffix;
}

Result<void> write_all(int fd, const std::string& content,
                       const std::string& path) {
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno_error("Failed to write", path, errno);
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  return {};
}

void copy_selinux_context(const std::string& from, int fd) {
  std::vector<char> context(256);
  ssize_t size = ::getxattr(from.c_str(), "security.selinux", context.data(),
                            context.size());
  if (size > 0) {
    // Best effort, as ansible.builtin does: a file system without SELinux
    // support simply has no context to keep.
    (void)::fsetxattr(fd, "security.selinux", context.data(),
                      static_cast<std::size_t>(size), 0);
  }
}

// libvirt's qemu.conf writes numeric ids as "+107"; plain digits count too.
std::optional<unsigned long> numeric_id(const std::string& name) {
  std::string digits = !name.empty() && name[0] == '+' ? name.substr(1) : name;
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoul(digits);
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  reset(other.release());
  return *this;
}

UniqueFd::~UniqueFd() { reset(); }

int UniqueFd::release() {
  int fd = m_fd;
  m_fd = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = fd;
}

std::string errno_text(int error_number) {
  return std::strerror(error_number);
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("Failed to read", path, errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return Error{"Failed to read " + path + ": it is a folder, not a file"};
  }
  std::string content;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd.get(), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno_error("Failed to read", path, errno);
    }
    if (got == 0) break;
    content.append(buffer, static_cast<std::size_t>(got));
  }
  return content;
}

Result<std::optional<FileMode>> stat_path(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<FileMode>{};
    }
    return errno_error("Failed to stat", path, errno);
  }
  return std::optional<FileMode>{
      FileMode{info.st_uid, info.st_gid, info.st_mode & 07777}};
}

Result<void> sync_directory(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("Failed to open folder", path, errno);
  if (::fsync(fd.get()) != 0) {
    return errno_error("Failed to sync folder", path, errno);
  }
  return {};
}

Result<void> atomic_write_file(const std::string& path,
                               const std::string& content,
                               const WriteOptions& options) {
  const std::string folder = parent_of(path);
  const std::string name = std::filesystem::path(path).filename().string();
  const std::string temporary = folder + "/." + name + ".tmp-" + random_suffix();

  // The file starts as 0600 at most (the umask can only narrow it) and gets
  // its owner before its final mode, so it is never readable by anyone the
  // final mode excludes. The umask is left alone: it is shared by threads.
  UniqueFd fd(::open(temporary.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     0600));
  if (!fd.valid()) return errno_error("Failed to create", temporary, errno);

  auto fail = [&](const Error& error) -> Result<void> {
    ::unlink(temporary.c_str());
    return error;
  };
  if (::fchown(fd.get(), options.mode.uid, options.mode.gid) != 0) {
    return fail(errno_error("Failed to set owner of", temporary, errno));
  }
  if (::fchmod(fd.get(), options.mode.mode) != 0) {
    return fail(errno_error("Failed to set mode of", temporary, errno));
  }
  if (!options.selinux_context_from.empty()) {
    copy_selinux_context(options.selinux_context_from, fd.get());
  }
  if (auto written = write_all(fd.get(), content, temporary); !written) {
    return fail(written.error());
  }
  if (::fsync(fd.get()) != 0) {
    return fail(errno_error("Failed to sync", temporary, errno));
  }
  fd.reset();
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return fail(errno_error("Failed to replace", path, errno));
  }
  return sync_directory(folder);
}

Result<std::string> backup_file(const std::string& path) {
  auto content = read_file(path);
  if (!content) return content.error();
  auto mode = stat_path(path);
  if (!mode) return mode.error();
  if (!mode.value()) return Error{"Failed to back up " + path + ": missing"};

  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char stamp[64];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d@%H:%M:%S", &local);
  std::string backup = path + "." + std::to_string(::getpid()) + "." + stamp +
                       "~";
  WriteOptions options{*mode.value(), path};
  if (auto written = atomic_write_file(backup, content.value(), options);
      !written) {
    return written.error();
  }
  return backup;
}

std::string normalize_path(const std::string& path) {
  if (path.empty()) return path;
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

std::string under_root(const std::string& root, const std::string& path) {
  if (root.empty() || root == "/") return path;
  std::string base = root;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + (path.empty() || path.front() == '/' ? "" : "/") + path;
}

Result<uid_t> lookup_user(const std::string& name) {
  if (auto id = numeric_id(name)) return static_cast<uid_t>(*id);
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  int rc = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(),
                        &found);
  if (rc != 0) return Error{"Failed to look up user " + name + ": " +
                            errno_text(rc)};
  if (found == nullptr) return Error{"User " + name + " does not exist"};
  return found->pw_uid;
}

Result<gid_t> lookup_group(const std::string& name) {
  if (auto id = numeric_id(name)) return static_cast<gid_t>(*id);
  struct group entry {};
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  int rc = ::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(),
                        &found);
  if (rc != 0) return Error{"Failed to look up group " + name + ": " +
                            errno_text(rc)};
  if (found == nullptr) return Error{"Group " + name + " does not exist"};
  return found->gr_gid;
}

std::string host_fqdn() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* info = nullptr;
  std::string fqdn = name;
  if (::getaddrinfo(name, nullptr, &hints, &info) == 0 && info != nullptr) {
    if (info->ai_canonname != nullptr) fqdn = info->ai_canonname;
    ::freeaddrinfo(info);
  }
  return fqdn;
}

}  // namespace qmt::util
