#include "virt/permissions.hpp"

#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

namespace qmt::virt {

namespace {

using util::Check;
using util::Checks;
using util::CheckStatus;

struct UserEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

std::optional<UserEntry> user_by_name(const std::string& name) {
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(),
                   &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return UserEntry{found->pw_name, found->pw_uid, found->pw_gid};
}

std::optional<UserEntry> user_by_id(uid_t uid) {
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return UserEntry{found->pw_name, found->pw_uid, found->pw_gid};
}

std::optional<gid_t> group_by_name(const std::string& name) {
  struct group entry {};
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(),
                   &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return found->gr_gid;
}

std::optional<std::string> group_name(gid_t gid) {
  struct group entry {};
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return std::string(found->gr_name);
}

std::optional<unsigned long> parse_id(const std::string& text) {
  if (text.empty() || text.size() > 10 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const unsigned long value = std::stoul(text);
  if (value >= static_cast<unsigned long>(UINT_MAX)) return std::nullopt;
  return value;
}

// libvirt's virGetUserID and virGetGroupID: "+N" is always a number, a name
// is looked up first, and a plain number that is no name counts as an id.
std::optional<uid_t> user_id(const std::string& user) {
  if (!user.empty() && user[0] == '+') return parse_id(user.substr(1));
  if (auto entry = user_by_name(user)) return entry->uid;
  return parse_id(user);
}

std::optional<gid_t> group_id(const std::string& group) {
  if (!group.empty() && group[0] == '+') return parse_id(group.substr(1));
  if (auto gid = group_by_name(group)) return gid;
  return parse_id(group);
}

bool has_group(const Account& account, gid_t gid) {
  return std::find(account.groups.begin(), account.groups.end(), gid) !=
         account.groups.end();
}

std::string user_label(uid_t uid) {
  if (auto entry = user_by_id(uid)) return entry->name;
  return std::to_string(uid);
}

std::string group_label(gid_t gid) {
  if (auto name = group_name(gid)) return *name;
  return std::to_string(gid);
}

struct Entry {
  std::string path;
  util::FileMode mode;
  bool is_folder = false;
  bool has_acl = false;
};

// Returns nullopt when `path` does not exist; other stat errors become a
// failed check in the caller.
util::Result<std::optional<Entry>> stat_entry(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<Entry>{};
    return util::Error{"Failed to stat " + path + ": " +
                       util::errno_text(errno)};
  }
  Entry entry;
  entry.path = path;
  entry.mode = {info.st_uid, info.st_gid,
                static_cast<mode_t>(info.st_mode & 07777)};
  entry.is_folder = S_ISDIR(info.st_mode);
  entry.has_acl =
      ::getxattr(path.c_str(), "system.posix_acl_access", nullptr, 0) >= 0;
  return std::optional<Entry>{entry};
}

std::string entry_text(const Entry& entry) {
  return entry.path + " (mode " + mode_text(entry.mode.mode) + ", owner " +
         owner_text(entry.mode) + ")";
}

// The smallest change that gives `account` the access: the owner, group or
// other bit that applies to it. A private key is never opened to others;
// it gets QEMU's group instead.
std::string fix_command(const Entry& entry, const Account& account,
                        Access access, bool secret) {
  const std::string bit = access == Access::read ? "r" : "x";
  if (entry.mode.uid == account.uid) {
    return "chmod u+" + bit + " " + entry.path;
  }
  if (has_group(account, entry.mode.gid)) {
    return "chmod g+" + bit + " " + entry.path;
  }
  if (secret) {
    return "chgrp " + account.group + " " + entry.path + " && chmod g+r " +
           entry.path;
  }
  return "chmod o+" + bit + " " + entry.path;
}

// Folders QEMU passes through to open cert_dir/FILE, outermost first. With
// root "/" the folders of the resolved path count too, because the kernel
// checks search permission along the path a symbolic link leads to.
std::vector<std::string> folders_on_path(const std::string& root,
                                         const std::string& cert_dir) {
  std::vector<std::string> logical{"/"};
  std::string current;
  for (const auto& part : std::filesystem::path(cert_dir).relative_path()) {
    current += "/" + part.string();
    logical.push_back(current);
  }
  std::vector<std::string> folders;
  for (const auto& folder : logical) {
    folders.push_back(util::normalize_path(util::under_root(root, folder)));
  }
  if (util::under_root(root, "/") != "/") return folders;

  char resolved[PATH_MAX];
  if (::realpath(cert_dir.c_str(), resolved) == nullptr) return folders;
  std::string walked;
  std::vector<std::string> real{"/"};
  for (const auto& part : std::filesystem::path(resolved).relative_path()) {
    walked += "/" + part.string();
    real.push_back(walked);
  }
  for (const auto& folder : real) {
    if (std::find(folders.begin(), folders.end(), folder) == folders.end()) {
      folders.push_back(folder);
    }
  }
  return folders;
}

std::string denied_text(const Entry& entry) {
  // Only ACL entries can grant what the bits deny; their evaluation is left
  // to the kernel, so such a finding is reported as a warning.
  return entry.has_acl ? " unless its POSIX ACL grants it, which this check "
                         "does not evaluate"
                       : "";
}

void check_folders(const PermissionInput& input, const std::string& cert_dir,
                   Checks& checks) {
  const Account& account = input.account;
  std::vector<std::string> passed;
  bool failed = false;
  for (const auto& folder : folders_on_path(input.root, cert_dir)) {
    auto found = stat_entry(folder);
    if (!found) {
      checks.push_back({"permissions.folder", CheckStatus::failed, folder,
                        found.error().message});
      failed = true;
      continue;
    }
    // A missing folder is reported by the certificate checks, and nothing
    // below it can be checked.
    if (!found.value()) return;
    const Entry& entry = *found.value();
    if (!entry.is_folder) {
      checks.push_back({"permissions.folder", CheckStatus::failed, folder,
                        entry_text(entry) +
                            " is not a folder, so QEMU cannot open the "
                            "certificates below it; expected a folder"});
      failed = true;
      continue;
    }
    if (!allows(entry.mode, account, Access::search)) {
      checks.push_back(
          {"permissions.folder",
           entry.has_acl ? CheckStatus::warning : CheckStatus::failed, folder,
           entry_text(entry) + " is not searchable by QEMU's " +
               account_text(account) + denied_text(entry) +
               ", so QEMU cannot open the certificate files below it; run " +
               fix_command(entry, account, Access::search, false)});
      failed = true;
      continue;
    }
    if (folder == util::under_root(input.root, cert_dir) &&
        (entry.mode.mode & S_IWOTH) != 0 && (entry.mode.mode & S_ISVTX) == 0) {
      checks.push_back({"permissions.folder", CheckStatus::failed, folder,
                        entry_text(entry) +
                            " is writable by every user on this host, who "
                            "could replace the certificates; run chmod o-w " +
                            folder});
      failed = true;
      continue;
    }
    passed.push_back(folder);
  }
  if (failed || passed.empty()) return;
  std::string list;
  for (const auto& folder : passed) list += (list.empty() ? "" : ", ") + folder;
  checks.push_back({"permissions.folder", CheckStatus::ok,
                    util::under_root(input.root, cert_dir),
                    "QEMU's " + account_text(account) +
                        " can search every folder on the path: " + list});
}

// The files QEMU's tls-creds-x509 object loads from the folder, with the
// migration side that needs each. ca-crl.pem and dh-params.pem are optional.
struct QemuFile {
  const char* name;
  const char* use;
  bool secret;
};

constexpr QemuFile k_qemu_files[] = {
    {"ca-cert.pem", "on both sides of a migration", false},
    {"server-cert.pem", "as migration destination", false},
    {"server-key.pem", "as migration destination", true},
    {"client-cert.pem", "as migration source", false},
    {"client-key.pem", "as migration source", true},
    {"ca-crl.pem", "to reject revoked certificates", false},
    {"dh-params.pem", "as migration destination", false},
};

void check_files(const PermissionInput& input, const std::string& folder,
                 Checks& checks) {
  const Account& account = input.account;
  std::vector<std::string> passed;
  bool failed = false;
  for (const auto& file : k_qemu_files) {
    const std::string path = folder + "/" + file.name;
    auto found = stat_entry(path);
    if (!found) {
      checks.push_back({"permissions.file", CheckStatus::failed, path,
                        found.error().message});
      failed = true;
      continue;
    }
    if (!found.value()) continue;
    const Entry& entry = *found.value();
    if (!allows(entry.mode, account, Access::read)) {
      checks.push_back(
          {"permissions.file",
           entry.has_acl ? CheckStatus::warning : CheckStatus::failed, path,
           entry_text(entry) + " is not readable by QEMU's " +
               account_text(account) + denied_text(entry) +
               ", and QEMU reads it " + file.use + "; run " +
               fix_command(entry, account, Access::read, file.secret)});
      failed = true;
      continue;
    }
    if ((entry.mode.mode & S_IWOTH) != 0) {
      checks.push_back({"permissions.file", CheckStatus::failed, path,
                        entry_text(entry) +
                            " is writable by every user on this host; run "
                            "chmod o-w " +
                            path});
      failed = true;
      continue;
    }
    passed.push_back(file.name);
  }
  if (failed || passed.empty()) return;
  std::string list;
  for (const auto& name : passed) list += (list.empty() ? "" : ", ") + name;
  checks.push_back({"permissions.file", CheckStatus::ok, folder,
                    "QEMU's " + account_text(account) + " can read " + list +
                        " in " + folder});
}

// Every file whose name contains "key" counts as a private key, so backup
// copies ("server-key.pem.2025-01-31@12:00:00~") are checked too.
std::vector<std::string> key_files(const std::string& folder) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& item : std::filesystem::directory_iterator(folder, error)) {
    const std::string name = item.path().filename().string();
    std::error_code type_error;
    if (name.find("key") != std::string::npos &&
        item.is_regular_file(type_error)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

void check_keys(const PermissionInput& input, const std::string& folder,
                Checks& checks) {
  const Account& account = input.account;
  for (const auto& name : key_files(folder)) {
    const std::string path = folder + "/" + name;
    auto found = stat_entry(path);
    if (!found || !found.value()) continue;
    const Entry& entry = *found.value();
    const mode_t bits = entry.mode.mode;
    if ((bits & (S_IROTH | S_IWOTH)) != 0) {
      checks.push_back({"permissions.key", CheckStatus::failed, path,
                        entry_text(entry) +
                            " is a private key that every user on this host "
                            "can " +
                            ((bits & S_IROTH) != 0 ? "read" : "overwrite") +
                            "; run chmod o-rwx " + path});
      continue;
    }
    if ((bits & S_IRGRP) != 0 && entry.mode.gid != 0 &&
        entry.mode.uid != account.uid && !has_group(account, entry.mode.gid)) {
      checks.push_back({"permissions.key", CheckStatus::warning, path,
                        entry_text(entry) + " is readable by group " +
                            group_label(entry.mode.gid) +
                            ", which QEMU does not run with, so its members "
                            "can read a key QEMU alone needs; run chgrp " +
                            account.group + " " + path});
      continue;
    }
    checks.push_back(
        {"permissions.key", CheckStatus::ok, path,
         entry_text(entry) + " is a private key that other users cannot read"});
  }
}

}  // namespace

util::Result<Account> resolve_account(const std::string& user,
                                      const std::string& group,
                                      bool keeps_capabilities) {
  Account account;
  account.user = user;
  account.group = group;
  auto uid = user_id(user);
  if (!uid) {
    return util::Error{"User " + user +
                       " does not exist on this host, so libvirt cannot "
                       "start QEMU as that user"};
  }
  auto gid = group_id(group);
  if (!gid) {
    return util::Error{"Group " + group +
                       " does not exist on this host, so libvirt cannot "
                       "start QEMU with that group"};
  }
  account.uid = *uid;
  account.gid = *gid;
  account.groups.push_back(*gid);

  // libvirt's virGetGroupList (libvirt 9.0, src/util/virutil.c) adds the
  // groups that getgrouplist() returns for the user's passwd entry,
  // including its primary group. An id without a passwd entry adds none.
  if (auto entry = user_by_id(*uid)) {
    int count = 16;
    std::vector<gid_t> groups(count);
    while (::getgrouplist(entry->name.c_str(), entry->gid, groups.data(),
                          &count) < 0) {
      groups.resize(count);
    }
    groups.resize(count);
    for (gid_t member : groups) {
      if (!has_group(account, member)) account.groups.push_back(member);
    }
  }
  account.bypasses_permissions = *uid == 0 && keeps_capabilities;
  return account;
}

bool allows(const util::FileMode& mode, const Account& account, Access access) {
  if (account.bypasses_permissions) return true;
  const mode_t required_bit = access == Access::read ? 04 : 01;
  int shift = 0;
  if (mode.uid == account.uid) {
    shift = 6;
  } else if (has_group(account, mode.gid)) {
    shift = 3;
  }
  return ((mode.mode >> shift) & required_bit) != 0;
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode));
  return text;
}

std::string owner_text(const util::FileMode& mode) {
  return user_label(mode.uid) + ":" + group_label(mode.gid);
}

std::string account_text(const Account& account) {
  std::string text = "user " + account.user + " (uid " +
                     std::to_string(account.uid) + ") and group " +
                     account.group + " (gid " + std::to_string(account.gid) +
                     ")";
  std::string others;
  for (gid_t gid : account.groups) {
    if (gid == account.gid) continue;
    others += (others.empty() ? "" : ", ") + group_label(gid);
  }
  if (!others.empty()) text += ", supplementary groups " + others;
  return text;
}

util::Checks check_permissions(const PermissionInput& input) {
  Checks checks;
  const std::string cert_dir = util::normalize_path(input.cert_dir);
  const std::string folder = util::under_root(input.root, cert_dir);
  if (input.account.bypasses_permissions) {
    checks.push_back({"permissions.file", CheckStatus::ok, folder,
                      "QEMU runs as root and keeps its capabilities "
                      "(clear_emulator_capabilities = 0), so permission bits "
                      "do not restrict what it reads in " +
                          folder});
  } else {
    check_folders(input, cert_dir, checks);
    check_files(input, folder, checks);
  }
  check_keys(input, folder, checks);
  return checks;
}

}  // namespace qmt::virt
