#include "pki/certificate_set.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

#include "util/files.hpp"

namespace qmt::pki {

namespace {

namespace fs = std::filesystem;
using util::Error;
using util::Result;
using util::UniqueFd;

// glibc 2.28 and later declare renameat2 and its flags in <stdio.h>; older
// ones get the raw system call with the flag values of <linux/fs.h>.
#ifdef RENAME_EXCHANGE
int rename_with_flags(const std::string& from, const std::string& to,
                      unsigned int flags) {
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}
#else
constexpr unsigned int RENAME_NOREPLACE = 1 << 0;
constexpr unsigned int RENAME_EXCHANGE = 1 << 1;
int rename_with_flags(const std::string& from, const std::string& to,
                      unsigned int flags) {
  return static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, from.c_str(),
                                    AT_FDCWD, to.c_str(), flags));
}
#endif

Error errno_error(const std::string& action, const std::string& path,
                  int error_number) {
  return Error{"Failed to " + action + " " + path + ": " +
               util::errno_text(error_number)};
}

std::string mode_text(mode_t mode) {
  char text[16];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode));
  return text;
}

std::string owner_text(uid_t uid, gid_t gid) {
  return std::to_string(uid) + ":" + std::to_string(gid);
}

Result<void> run_hook(const InstallStepHook& hook, const std::string& step,
                      const std::string& path) {
  if (!hook) return {};
  return hook(step, path);
}

// The folder to install into, after resolving a symbolic link in its path.
struct Target {
  std::string path;
  std::string parent;
  std::string name;
  bool exists = false;
  bool mount_point = false;
  bool via_symlink = false;  // cert_dir itself is a symbolic link
};

bool is_mount_point(const std::string& path, const std::string& parent,
                    const struct stat& info) {
#ifdef STATX_ATTR_MOUNT_ROOT
  struct statx extended {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS, &extended) == 0 &&
      (extended.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (extended.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
#endif
  // A bind mount of a folder of the same file system keeps st_dev, so this
  // fallback misses it. renameat2 then fails with EBUSY, and install_set
  // falls back to replacing each file.
  struct stat parent_info {};
  return ::stat(parent.c_str(), &parent_info) == 0 &&
         parent_info.st_dev != info.st_dev;
}

Result<Target> resolve_target(const std::string& cert_dir) {
  if (cert_dir.empty() || cert_dir.front() != '/') {
    return Error{"Invalid certificate folder '" + cert_dir +
                 "': expected an absolute path"};
  }
  Target target;
  target.path = util::normalize_path(cert_dir);
  if (target.path == "/") {
    return Error{"Invalid certificate folder /: expected a folder below /"};
  }

  struct stat info {};
  if (::lstat(target.path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
    char resolved[PATH_MAX];
    if (::realpath(target.path.c_str(), resolved) == nullptr) {
      return errno_error("resolve the symbolic link", target.path, errno);
    }
    target.path = resolved;
    target.via_symlink = true;
    if (target.path == "/") {
      return Error{"Invalid certificate folder " + cert_dir +
                   ": it is a symbolic link to /; expected a folder below /"};
    }
  }

  const fs::path path(target.path);
  target.parent = path.parent_path().string();
  target.name = path.filename().string();

  if (::stat(target.path.c_str(), &info) != 0) {
    if (errno == ENOENT) return target;
    return errno_error("read", target.path, errno);
  }
  if (!S_ISDIR(info.st_mode)) {
    return Error{"Certificate folder " + target.path +
                 " is not a folder; expected a folder or no entry"};
  }
  target.exists = true;
  target.mount_point = is_mount_point(target.path, target.parent, info);
  return target;
}

struct Entry {
  std::string name;
  bool is_directory = false;
};

// Lists a folder without following symbolic links; a missing folder is
// empty.
Result<std::vector<Entry>> list_folder(const std::string& path) {
  std::vector<Entry> entries;
  std::error_code error;
  fs::directory_iterator iterator(path, error);
  if (error == std::errc::no_such_file_or_directory) return entries;
  if (error) return Error{"Failed to list " + path + ": " + error.message()};
  for (; iterator != fs::directory_iterator(); iterator.increment(error)) {
    if (error) return Error{"Failed to list " + path + ": " + error.message()};
    auto status = iterator->symlink_status(error);
    if (error) return Error{"Failed to list " + path + ": " + error.message()};
    entries.push_back(
        {iterator->path().filename().string(), fs::is_directory(status)});
  }
  if (error) return Error{"Failed to list " + path + ": " + error.message()};
  return entries;
}

bool entry_exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

std::string staging_prefix(const Target& target) {
  return "." + target.name + ".new-";
}

// Sibling folders left by an interrupted install: `.<name>.new-XXXXXX`.
Result<std::vector<std::string>> find_leftovers(const Target& target) {
  auto entries = list_folder(target.parent);
  if (!entries) return entries.error();
  const std::string prefix = staging_prefix(target);
  std::vector<std::string> leftovers;
  for (const auto& entry : entries.value()) {
    if (entry.is_directory && entry.name.size() == prefix.size() + 6 &&
        entry.name.compare(0, prefix.size(), prefix) == 0) {
      leftovers.push_back(target.parent + "/" + entry.name);
    }
  }
  return leftovers;
}

// True when recover_leftovers can remove `leftover`: every subfolder in it
// can move back into cert_dir.
Result<bool> is_recoverable(const Target& target, const std::string& leftover) {
  auto entries = list_folder(leftover);
  if (!entries) return entries.error();
  for (const auto& entry : entries.value()) {
    if (!entry.is_directory) continue;
    if (!target.exists || entry_exists(target.path + "/" + entry.name)) {
      return false;
    }
  }
  return true;
}

// Finishes or undoes an interrupted install. A leftover contains either the
// new set (crash before the swap) or the previous folder (crash after it).
// Its files also exist in cert_dir or are superseded, but subfolders carried
// over from cert_dir may exist nowhere else. Those move back into cert_dir,
// then the leftover is removed.
Result<void> recover_leftovers(const Target& target,
                               const std::vector<std::string>& leftovers) {
  for (const auto& leftover : leftovers) {
    auto recoverable = is_recoverable(target, leftover);
    if (!recoverable) return recoverable.error();
    // NOTE: a leftover whose subfolder has no place to go (cert_dir is
    // missing or has an entry of that name) stays for a person to sort out.
    if (!recoverable.value()) continue;
    auto entries = list_folder(leftover);
    if (!entries) return entries.error();
    for (const auto& entry : entries.value()) {
      if (!entry.is_directory) continue;
      const std::string source = leftover + "/" + entry.name;
      const std::string destination = target.path + "/" + entry.name;
      if (::rename(source.c_str(), destination.c_str()) != 0) {
        return errno_error("move " + source + " back to", destination, errno);
      }
    }
    if (target.exists) {
      if (auto synced = util::sync_directory(target.path); !synced) {
        return synced.error();
      }
    }
    std::error_code error;
    fs::remove_all(leftover, error);
    if (error) {
      return Error{"Failed to remove " + leftover + ": " + error.message()};
    }
  }
  if (leftovers.empty()) return {};
  return util::sync_directory(target.parent);
}

Result<void> validate_request(const InstallRequest& request) {
  const std::pair<const char*, mode_t> modes[] = {
      {"key_mode", request.key_mode},
      {"cert_mode", request.cert_mode},
      {"dir_mode", request.dir_mode}};
  for (const auto& [option, mode] : modes) {
    if ((mode & ~static_cast<mode_t>(07777)) != 0) {
      return Error{"Invalid " + std::string(option) + " " + mode_text(mode) +
                   " for " + request.cert_dir +
                   ": expected permission bits (at most 07777)"};
    }
  }
  if ((request.key_mode & 0007) != 0) {
    return Error{"Invalid key_mode " + mode_text(request.key_mode) + " for " +
                 request.cert_dir +
                 ": private keys must not be accessible to other users; "
                 "expected a mode without permissions for others, such as "
                 "0640"};
  }
  std::set<std::string> names;
  for (const auto& file : request.files) {
    if (file.name.empty() || file.name == "." || file.name == ".." ||
        file.name.find('/') != std::string::npos) {
      return Error{"Invalid file name '" + file.name +
                   "' for certificate folder " + request.cert_dir +
                   ": expected a plain file name such as server-cert.pem"};
    }
    if (!names.insert(file.name).second) {
      return Error{"File name " + file.name +
                   " appears twice in the request for certificate folder " +
                   request.cert_dir};
    }
  }
  return {};
}

// The state of one requested file on disk.
struct FilePlan {
  const InstallFile* file = nullptr;
  std::string path;
  mode_t mode = 0;       // requested
  bool exists = false;   // a regular file or symbolic link of that name
  bool replace = false;  // missing, a symbolic link, or other content
  bool fix_mode = false;
  bool fix_owner = false;
  util::FileMode current;
};

struct InstallPlan {
  Target target;
  std::vector<FilePlan> files;
  bool fix_folder_mode = false;
  bool fix_folder_owner = false;
  util::FileMode folder;
  std::vector<std::string> leftovers;
  SetPlan summary;
  bool set_changed = false;  // summary.changed, leftovers not counted

  bool content_changes() const {
    for (const auto& file : files) {
      if (file.replace) return true;
    }
    return !target.exists;
  }
};

Result<FilePlan> plan_file(const InstallRequest& request, const Target& target,
                           const InstallFile& file,
                           std::vector<FileChange>& changes) {
  FilePlan plan;
  plan.file = &file;
  plan.path = target.path + "/" + file.name;
  plan.mode = file.secret ? request.key_mode : request.cert_mode;
  struct stat info {};
  if (!target.exists || ::lstat(plan.path.c_str(), &info) != 0) {
    if (target.exists && errno != ENOENT) {
      return errno_error("read", plan.path, errno);
    }
    plan.replace = true;
    changes.push_back({file.name, "created"});
    return plan;
  }
  plan.exists = true;
  if (S_ISLNK(info.st_mode)) {
    plan.replace = true;
    changes.push_back({file.name, "symbolic link replaced by a file"});
    return plan;
  }
  if (!S_ISREG(info.st_mode)) {
    return Error{plan.path +
                 " is not a regular file; expected a file or no entry"};
  }
  plan.current = {info.st_uid, info.st_gid,
                  static_cast<mode_t>(info.st_mode & 07777)};
  auto content = util::read_file(plan.path);
  if (!content) return content.error();
  if (content.value() != file.content) {
    plan.replace = true;
    changes.push_back({file.name, "content changed"});
  }
  if (plan.current.mode != plan.mode) {
    plan.fix_mode = true;
    changes.push_back({file.name, "mode " + mode_text(plan.current.mode) +
                                      " -> " + mode_text(plan.mode)});
  }
  if (plan.current.uid != request.uid || plan.current.gid != request.gid) {
    plan.fix_owner = true;
    changes.push_back(
        {file.name, "owner " + owner_text(plan.current.uid, plan.current.gid) +
                        " -> " + owner_text(request.uid, request.gid)});
  }
  return plan;
}

// Adds a change for each leftover that recover_leftovers would remove.
Result<void> report_leftovers(const Target& target,
                              const std::vector<std::string>& leftovers,
                              std::vector<FileChange>& changes) {
  for (const auto& leftover : leftovers) {
    auto recoverable = is_recoverable(target, leftover);
    if (!recoverable) return recoverable.error();
    if (!recoverable.value()) continue;
    changes.push_back({fs::path(leftover).filename().string(),
                       "leftover of an interrupted install, removed"});
  }
  return {};
}

Result<InstallPlan> make_install_plan(const InstallRequest& request) {
  if (auto valid = validate_request(request); !valid) return valid.error();
  auto target = resolve_target(request.cert_dir);
  if (!target) return target.error();
  InstallPlan plan;
  plan.target = target.value();
  std::vector<FileChange>& changes = plan.summary.changes;

  auto leftovers = find_leftovers(plan.target);
  if (!leftovers) return leftovers.error();
  plan.leftovers = leftovers.value();
  if (auto reported = report_leftovers(plan.target, plan.leftovers, changes);
      !reported) {
    return reported.error();
  }
  const std::size_t leftover_changes = changes.size();

  if (!plan.target.exists) {
    changes.push_back({".", "folder created"});
  } else {
    auto folder = util::stat_path(plan.target.path);
    if (!folder) return folder.error();
    plan.folder = folder.value().value_or(util::FileMode{});
    if (plan.folder.mode != request.dir_mode) {
      plan.fix_folder_mode = true;
      changes.push_back({".", "folder mode " + mode_text(plan.folder.mode) +
                                  " -> " + mode_text(request.dir_mode)});
    }
    if (plan.folder.uid != request.uid || plan.folder.gid != request.gid) {
      plan.fix_folder_owner = true;
      changes.push_back(
          {".", "folder owner " + owner_text(plan.folder.uid, plan.folder.gid) +
                    " -> " + owner_text(request.uid, request.gid)});
    }
  }
  for (const auto& file : request.files) {
    auto file_plan = plan_file(request, plan.target, file, changes);
    if (!file_plan) return file_plan.error();
    plan.files.push_back(file_plan.value());
  }
  plan.summary.changed = !changes.empty();
  plan.set_changed = changes.size() > leftover_changes;
  return plan;
}

Result<void> check_writable(const std::string& folder) {
  if (::faccessat(AT_FDCWD, folder.c_str(), W_OK, AT_EACCESS) != 0) {
    return errno_error("write to folder", folder, errno);
  }
  return {};
}

// Creates `path` and its missing parents with mode 0755 whatever the umask.
Result<void> create_folders(const std::string& path) {
  std::string current;
  for (const auto& part : fs::path(path)) {
    if (part == "/") {
      current = "/";
      continue;
    }
    current = (current == "/" ? "/" : current + "/") + part.string();
    if (::mkdir(current.c_str(), 0755) == 0) {
      if (::chmod(current.c_str(), 0755) != 0) {
        return errno_error("set the mode of folder", current, errno);
      }
    } else if (errno != EEXIST) {
      return errno_error("create folder", current, errno);
    }
  }
  return {};
}

Result<UniqueFd> lock_folder(const std::string& folder) {
  UniqueFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open folder", folder, errno);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return errno_error("lock folder", folder, errno);
  }
  return fd;
}

// Changes owner and mode of an existing file or folder through one open
// descriptor. The mode is first narrowed to the bits both the old and the
// new mode grant, so neither owner ever gets more access than it has before
// or after the change.
Result<void> fix_attributes(const std::string& path,
                            const util::FileMode& current,
                            const util::FileMode& requested,
                            bool is_directory) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                       (is_directory ? O_DIRECTORY : 0)));
  if (!fd.valid()) return errno_error("open", path, errno);
  if (::fchmod(fd.get(), current.mode & requested.mode) != 0 ||
      ::fchown(fd.get(), requested.uid, requested.gid) != 0 ||
      ::fchmod(fd.get(), requested.mode) != 0) {
    return errno_error("set owner and mode of", path, errno);
  }
  if (::fsync(fd.get()) != 0) return errno_error("sync", path, errno);
  return {};
}

// Copies the SELinux label of `from` to the folder `to`, so files created in
// the staging folder inherit the label the old folder had. Best effort: a
// system without SELinux has no label to copy.
void copy_selinux_label(const std::string& from, const std::string& to) {
  std::vector<char> label(256);
  ssize_t size =
      ::getxattr(from.c_str(), "security.selinux", label.data(), label.size());
  if (size <= 0) return;
  (void)::setxattr(to.c_str(), "security.selinux", label.data(),
                   static_cast<std::size_t>(size), 0);
}

class Installer {
 public:
  Installer(const InstallRequest& request, const InstallPlan& plan,
            const InstallStepHook& hook)
      : m_request(request), m_plan(plan), m_target(plan.target), m_hook(hook) {}

  Result<void> create_folder();
  Result<void> fix_in_place();
  Result<void> replace_each_file();
  Result<void> exchange_folders(bool& unsupported);

 private:
  util::FileMode folder_mode() const {
    return {m_request.uid, m_request.gid, m_request.dir_mode};
  }
  Result<std::string> make_staging_folder();
  Result<void> write_files(const std::string& folder);
  Result<void> finish_staging_folder(const std::string& folder);
  Result<void> carry_over(const std::string& staging,
                          std::vector<std::string>& moved);
  Result<void> undo_staging(const std::string& staging,
                            const std::vector<std::string>& moved,
                            const Error& error);
  Result<void> remove_previous_folder(const std::string& previous);
  bool is_requested(const std::string& name) const;

  const InstallRequest& m_request;
  const InstallPlan& m_plan;
  const Target& m_target;
  const InstallStepHook& m_hook;
};

bool Installer::is_requested(const std::string& name) const {
  for (const auto& file : m_request.files) {
    if (file.name == name) return true;
  }
  return false;
}

Result<std::string> Installer::make_staging_folder() {
  // mkdtemp creates the folder with mode 0700, so no key written into it is
  // reachable by other users before the folder is complete.
  std::string pattern =
      m_target.parent + "/" + staging_prefix(m_target) + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    return errno_error("create a staging folder for " + m_target.path + " in",
                       m_target.parent, errno);
  }
  std::string staging = buffer.data();
  if (auto hooked = run_hook(m_hook, "stage", staging); !hooked) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    return hooked.error();
  }
  return staging;
}

Result<void> Installer::write_files(const std::string& folder) {
  for (const auto& file : m_plan.files) {
    const std::string path = folder + "/" + file.file->name;
    if (auto hooked = run_hook(m_hook, "write", path); !hooked) {
      return hooked.error();
    }
    util::WriteOptions options;
    options.mode = {m_request.uid, m_request.gid, file.mode};
    if (auto written =
            util::atomic_write_file(path, file.file->content, options);
        !written) {
      return written.error();
    }
    if (auto hooked = run_hook(m_hook, "written", path); !hooked) {
      return hooked.error();
    }
  }
  return {};
}

Result<void> Installer::finish_staging_folder(const std::string& folder) {
  if (auto fixed = fix_attributes(folder, util::FileMode{0, 0, 0700},
                                  folder_mode(), true);
      !fixed) {
    return fixed.error();
  }
  return util::sync_directory(folder);
}

// Carries every entry of cert_dir that the request does not name into the
// staging folder: files, symbolic links and other non-folders as hard links
// (cert_dir keeps them too), subfolders by rename. `moved` lists the renamed
// subfolders so a failure can return them.
Result<void> Installer::carry_over(const std::string& staging,
                                   std::vector<std::string>& moved) {
  auto entries = list_folder(m_target.path);
  if (!entries) return entries.error();
  for (const auto& entry : entries.value()) {
    if (entry.is_directory || is_requested(entry.name)) continue;
    const std::string source = m_target.path + "/" + entry.name;
    const std::string destination = staging + "/" + entry.name;
    if (auto hooked = run_hook(m_hook, "link", destination); !hooked) {
      return hooked.error();
    }
    if (::linkat(AT_FDCWD, source.c_str(), AT_FDCWD, destination.c_str(), 0) !=
        0) {
      return errno_error("link " + source + " to", destination, errno);
    }
  }
  if (auto finished = finish_staging_folder(staging); !finished) {
    return finished.error();
  }
  for (const auto& entry : entries.value()) {
    if (!entry.is_directory || is_requested(entry.name)) continue;
    const std::string source = m_target.path + "/" + entry.name;
    const std::string destination = staging + "/" + entry.name;
    if (auto hooked = run_hook(m_hook, "move", source); !hooked) {
      return hooked.error();
    }
    if (::rename(source.c_str(), destination.c_str()) != 0) {
      return errno_error("move " + source + " to", destination, errno);
    }
    moved.push_back(entry.name);
  }
  if (moved.empty()) return {};
  if (auto synced = util::sync_directory(m_target.path); !synced) {
    return synced.error();
  }
  return util::sync_directory(staging);
}

// Returns moved subfolders to cert_dir and removes the staging folder, then
// returns `error`. When a subfolder cannot be moved back, the staging folder
// stays so that the next install or removal recovers it.
Result<void> Installer::undo_staging(const std::string& staging,
                                     const std::vector<std::string>& moved,
                                     const Error& error) {
  for (const auto& name : moved) {
    const std::string source = staging + "/" + name;
    const std::string destination = m_target.path + "/" + name;
    if (::rename(source.c_str(), destination.c_str()) != 0) {
      return Error{error.message + "; also failed to move " + source +
                   " back to " + destination + " (" + util::errno_text(errno) +
                   "), the next install or removal moves it back"};
    }
  }
  std::error_code ignored;
  fs::remove_all(staging, ignored);
  return error;
}

Result<void> Installer::remove_previous_folder(const std::string& previous) {
  if (auto hooked = run_hook(m_hook, "cleanup", previous); !hooked) {
    return hooked.error();
  }
  auto entries = list_folder(previous);
  if (!entries) return entries.error();
  std::vector<std::string> unmoved;
  for (const auto& entry : entries.value()) {
    const std::string path = previous + "/" + entry.name;
    if (!entry.is_directory) {
      if (::unlink(path.c_str()) != 0)
        return errno_error("remove", path, errno);
      continue;
    }
    // A subfolder here was created in cert_dir after carry_over moved the
    // others; it goes to the new folder unless that has one of that name.
    const std::string destination = m_target.path + "/" + entry.name;
    if (entry_exists(destination) ||
        ::rename(path.c_str(), destination.c_str()) != 0) {
      unmoved.push_back(entry.name);
    }
  }
  if (!unmoved.empty()) {
    std::string names;
    for (const auto& name : unmoved)
      names += (names.empty() ? "" : ", ") + name;
    return Error{"Installed the new certificate set in " + m_target.path +
                 ", but kept the previous folder " + previous +
                 " because its subfolders " + names +
                 " could not be moved into the new one; move them by hand"};
  }
  if (::rmdir(previous.c_str()) != 0) {
    return errno_error("remove the previous folder", previous, errno);
  }
  return util::sync_directory(m_target.parent);
}

Result<void> Installer::exchange_folders(bool& unsupported) {
  unsupported = false;
  // The staging folder is created in the parent, so it must be writable too.
  for (const auto& folder : {m_target.path, m_target.parent}) {
    if (auto writable = check_writable(folder); !writable) {
      return writable.error();
    }
  }

  auto staging = make_staging_folder();
  if (!staging) return staging.error();
  std::vector<std::string> moved;
  copy_selinux_label(m_target.path, staging.value());
  if (auto written = write_files(staging.value()); !written) {
    return undo_staging(staging.value(), moved, written.error());
  }
  if (auto carried = carry_over(staging.value(), moved); !carried) {
    return undo_staging(staging.value(), moved, carried.error());
  }

  if (auto hooked = run_hook(m_hook, "exchange", m_target.path); !hooked) {
    return undo_staging(staging.value(), moved, hooked.error());
  }
  if (rename_with_flags(staging.value(), m_target.path, RENAME_EXCHANGE) != 0) {
    const int error_number = errno;
    // EINVAL: the file system lacks RENAME_EXCHANGE. ENOSYS: the kernel
    // lacks renameat2. EBUSY: cert_dir is a mount point.
    unsupported = error_number == EINVAL || error_number == ENOSYS ||
                  error_number == EBUSY;
    return undo_staging(staging.value(), moved,
                        errno_error("swap " + staging.value() + " with",
                                    m_target.path, error_number));
  }

  // From here on cert_dir contains the complete new set, and the staging
  // path is the previous folder.
  if (auto synced = util::sync_directory(m_target.parent); !synced) {
    return synced.error();
  }
  if (auto hooked = run_hook(m_hook, "exchanged", staging.value()); !hooked) {
    return hooked.error();
  }
  return remove_previous_folder(staging.value());
}

Result<void> Installer::create_folder() {
  if (auto created = create_folders(m_target.parent); !created) {
    return created.error();
  }
  auto staging = make_staging_folder();
  if (!staging) return staging.error();
  auto fail = [&](const Error& error) -> Result<void> {
    std::error_code ignored;
    fs::remove_all(staging.value(), ignored);
    return error;
  };
  if (auto written = write_files(staging.value()); !written) {
    return fail(written.error());
  }
  if (auto finished = finish_staging_folder(staging.value()); !finished) {
    return fail(finished.error());
  }
  if (auto hooked = run_hook(m_hook, "rename", m_target.path); !hooked) {
    return fail(hooked.error());
  }
  int renamed =
      rename_with_flags(staging.value(), m_target.path, RENAME_NOREPLACE);
  if (renamed != 0 && (errno == EINVAL || errno == ENOSYS)) {
    renamed = ::rename(staging.value().c_str(), m_target.path.c_str());
  }
  if (renamed != 0) {
    return fail(
        errno_error("rename " + staging.value() + " to", m_target.path, errno));
  }
  return util::sync_directory(m_target.parent);
}

Result<void> Installer::fix_in_place() {
  if (auto writable = check_writable(m_target.path); !writable) {
    return writable.error();
  }
  for (const auto& file : m_plan.files) {
    // A replaced file was written with the requested owner and mode.
    if (file.replace || (!file.fix_mode && !file.fix_owner)) continue;
    if (auto hooked = run_hook(m_hook, "fix", file.path); !hooked) {
      return hooked.error();
    }
    if (auto fixed = fix_attributes(
            file.path, file.current,
            util::FileMode{m_request.uid, m_request.gid, file.mode}, false);
        !fixed) {
      return fixed.error();
    }
  }
  if (m_plan.fix_folder_mode || m_plan.fix_folder_owner) {
    if (auto hooked = run_hook(m_hook, "fix", m_target.path); !hooked) {
      return hooked.error();
    }
    return fix_attributes(m_target.path, m_plan.folder, folder_mode(), true);
  }
  return {};
}

Result<void> Installer::replace_each_file() {
  if (auto writable = check_writable(m_target.path); !writable) {
    return writable.error();
  }
  for (const auto& file : m_plan.files) {
    if (!file.replace) continue;
    if (auto hooked = run_hook(m_hook, "replace", file.path); !hooked) {
      return hooked.error();
    }
    util::WriteOptions options;
    options.mode = {m_request.uid, m_request.gid, file.mode};
    options.selinux_context_from = file.exists ? file.path : m_target.path;
    if (auto written =
            util::atomic_write_file(file.path, file.file->content, options);
        !written) {
      return written.error();
    }
  }
  return fix_in_place();
}

}  // namespace

const std::vector<std::string>& certificate_file_names() {
  static const std::vector<std::string> names = {
      "ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem",
      "client-key.pem"};
  return names;
}

Result<SetPlan> plan_install(const InstallRequest& request) {
  auto plan = make_install_plan(request);
  if (!plan) return plan.error();
  return plan->summary;
}

Result<void> install_set(const InstallRequest& request) {
  return install_set_with_hook(request, InstallStepHook());
}

Result<void> install_set_with_hook(const InstallRequest& request,
                                   const InstallStepHook& hook) {
  if (auto valid = validate_request(request); !valid) return valid.error();
  auto target = resolve_target(request.cert_dir);
  if (!target) return target.error();
  if (!target->exists) {
    if (auto created = create_folders(target->parent); !created) {
      return created.error();
    }
  }
  auto lock = lock_folder(target->parent);
  if (!lock) return lock.error();
  auto leftovers = find_leftovers(target.value());
  if (!leftovers) return leftovers.error();
  if (auto recovered = recover_leftovers(target.value(), leftovers.value());
      !recovered) {
    return recovered.error();
  }

  auto plan = make_install_plan(request);
  if (!plan) return plan.error();
  if (!plan->set_changed) return {};
  Installer installer(request, plan.value(), hook);
  if (!plan->target.exists) return installer.create_folder();
  if (!plan->content_changes()) return installer.fix_in_place();
  // NOTE: a mount point cannot be swapped, and some file systems lack
  // RENAME_EXCHANGE. Then each file is replaced atomically on its own, so a
  // crash between two files leaves a mix of old and new files.
  if (plan->target.mount_point) return installer.replace_each_file();
  bool unsupported = false;
  auto exchanged = installer.exchange_folders(unsupported);
  if (exchanged || !unsupported) return exchanged;
  return installer.replace_each_file();
}

Result<SetPlan> plan_removal(const std::string& cert_dir) {
  auto target = resolve_target(cert_dir);
  if (!target) return target.error();
  SetPlan plan;
  auto leftovers = find_leftovers(target.value());
  if (!leftovers) return leftovers.error();
  if (auto reported =
          report_leftovers(target.value(), leftovers.value(), plan.changes);
      !reported) {
    return reported.error();
  }
  if (!target->exists) {
    plan.changed = !plan.changes.empty();
    return plan;
  }

  auto entries = list_folder(target->path);
  if (!entries) return entries.error();
  const auto& names = certificate_file_names();
  std::set<std::string> present;
  bool only_set_files = true;
  for (const auto& entry : entries.value()) {
    bool is_set_file =
        !entry.is_directory &&
        std::find(names.begin(), names.end(), entry.name) != names.end();
    if (is_set_file) {
      present.insert(entry.name);
    } else {
      only_set_files = false;
    }
  }
  for (const auto& name : names) {
    if (present.count(name) != 0) plan.changes.push_back({name, "removed"});
  }

  // Recovering a leftover may move a subfolder back into cert_dir.
  for (const auto& leftover : leftovers.value()) {
    auto leftover_entries = list_folder(leftover);
    if (!leftover_entries) return leftover_entries.error();
    for (const auto& entry : leftover_entries.value()) {
      if (entry.is_directory) only_set_files = false;
    }
  }
  if (only_set_files && !target->mount_point && !target->via_symlink) {
    plan.changes.push_back({".", "folder removed"});
  }
  plan.changed = !plan.changes.empty();
  return plan;
}

Result<void> remove_set(const std::string& cert_dir) {
  auto target = resolve_target(cert_dir);
  if (!target) return target.error();
  if (!target->exists && !entry_exists(target->parent)) return {};
  auto lock = lock_folder(target->parent);
  if (!lock) return lock.error();
  auto leftovers = find_leftovers(target.value());
  if (!leftovers) return leftovers.error();
  if (auto recovered = recover_leftovers(target.value(), leftovers.value());
      !recovered) {
    return recovered.error();
  }
  if (!target->exists) return {};

  if (auto writable = check_writable(target->path); !writable) {
    return writable.error();
  }
  for (const auto& name : certificate_file_names()) {
    const std::string path = target->path + "/" + name;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0 || S_ISDIR(info.st_mode)) continue;
    if (::unlink(path.c_str()) != 0) return errno_error("remove", path, errno);
  }
  if (auto synced = util::sync_directory(target->path); !synced) {
    return synced.error();
  }
  if (target->mount_point || target->via_symlink) return {};
  if (::rmdir(target->path.c_str()) != 0) {
    // Other entries remain, so the folder stays.
    if (errno == ENOTEMPTY || errno == EEXIST) return {};
    return errno_error("remove folder", target->path, errno);
  }
  return util::sync_directory(target->parent);
}

}  // namespace qmt::pki
