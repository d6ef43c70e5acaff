#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace qmt::pki {

// The file names QEMU reads from migrate_tls_x509_cert_dir, in the order
// reports list them.
const std::vector<std::string>& certificate_file_names();

// One file to install. `name` is a plain file name ("server-key.pem");
// a secret file gets key_mode, others cert_mode.
struct InstallFile {
  std::string name;
  std::string content;
  bool secret = false;
};

// A certificate set to install into `cert_dir` (an absolute path). Files,
// and the folder itself, get owner uid:gid. Entries of cert_dir that are not
// named in `files` are kept as they are.
struct InstallRequest {
  std::string cert_dir;
  std::vector<InstallFile> files;
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t key_mode = 0640, cert_mode = 0644, dir_mode = 0755;
};

// One difference between the request and the disk. `name` is a file name,
// or "." for the folder itself. `what` is one of "created", "content
// changed", "mode 0644 -> 0640", "owner 0:0 -> 0:107", "symbolic link
// replaced by a file", "removed", "folder created", "folder removed",
// "folder mode ...", "folder owner ...", or "leftover of an interrupted
// install, removed" for a `.<folder>.new-XXXXXX` sibling.
struct FileChange {
  std::string name;
  std::string what;
};

// Changes that install_set or remove_set would make. `changed` is false when
// the disk already matches.
struct SetPlan {
  bool changed = false;
  std::vector<FileChange> changes;
};

// Compares the request with the disk without changing anything. Errors: an
// invalid request (relative folder, bad file name, private keys readable by
// others), cert_dir or a set file that is not the expected type, unreadable
// files.
util::Result<SetPlan> plan_install(const InstallRequest& request);

// Installs the set all or nothing. A new folder is built next to cert_dir
// (`.<name>.new-XXXXXX`, mode 0700 while written) and swapped in with
// renameat2(RENAME_EXCHANGE), so a crash at any point leaves the old or the
// new set. The next install or removal cleans up after an interrupted one. Only
// mode or owner changes are fixed in place. When cert_dir is a mount point, or
// its file system lacks RENAME_EXCHANGE, each file is replaced atomically on
// its own instead. cert_dir and its parents are created when missing (parents
// with mode 0755). Takes an exclusive flock on the parent folder for the
// duration.
util::Result<void> install_set(const InstallRequest& request);

// Called by install_set_with_hook before (and after some) steps with the
// step name ("stage", "write", "written", "link", "move", "exchange",
// "exchanged", "cleanup", "rename", "replace", "fix") and the path it
// concerns. Returning an error makes the step fail with that error.
using InstallStepHook = std::function<util::Result<void>(
    const std::string& step, const std::string& path)>;

// install_set with a hook for failure injection and crash tests.
util::Result<void> install_set_with_hook(const InstallRequest& request,
                                         const InstallStepHook& hook);

// Lists the files of certificate_file_names() that remove_set would remove,
// and the folder when nothing else would be left in it. A missing folder
// gives no change.
util::Result<SetPlan> plan_removal(const std::string& cert_dir);

// Removes the five files, then the folder when it is empty (and is neither a
// mount point nor reached through a symbolic link). libvirt refuses to start
// its QEMU driver while migrate_tls_x509_cert_dir names a missing folder, so
// callers point qemu.conf elsewhere first.
util::Result<void> remove_set(const std::string& cert_dir);

}  // namespace qmt::pki
