#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/check.hpp"
#include "util/files.hpp"
#include "util/result.hpp"

namespace qmt::virt {

// The user and groups that libvirt gives QEMU processes, which the kernel
// checks when QEMU opens the certificate files.
struct Account {
  std::string user;   // as qemu.conf names it ("libvirt-qemu", "+107")
  std::string group;  // as qemu.conf names it
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // every group QEMU runs with, gid included
  // True when permission bits do not restrict QEMU: it runs as uid 0 and
  // keeps CAP_DAC_OVERRIDE because qemu.conf sets
  // clear_emulator_capabilities = 0.
  bool bypasses_permissions = false;
};

// Resolves qemu.conf's `user` and `group` (names, or numeric ids written
// "+107") the way libvirt does before it starts QEMU: the group named by
// `group` plus the supplementary groups getgrouplist() returns for the user.
// `keeps_capabilities` is qemu.conf's clear_emulator_capabilities == 0.
// Errors name the user or group that does not exist.
util::Result<Account> resolve_account(const std::string& user,
                                      const std::string& group,
                                      bool keeps_capabilities);

// The access QEMU needs: read on a file, search (x) on a folder.
enum class Access { read, search };

// Decides whether `account` has `access` to an entry with owner, group and
// permission bits `mode`, as the kernel's generic permission check does
// without ACLs. Only the owner bits apply to the owner and only the group
// bits to members of the group. The other bits apply to everybody else.
bool allows(const util::FileMode& mode, const Account& account, Access access);

// Formats permission bits as four octal digits ("0640").
std::string mode_text(mode_t mode);

// Formats owner and group as "name:name", with numbers for unknown ids.
std::string owner_text(const util::FileMode& mode);

// Describes `account` for messages: "user libvirt-qemu (uid 64055) and
// group kvm (gid 104), supplementary groups kvm".
std::string account_text(const Account& account);

// The certificate folder and the account that reads it.
struct PermissionInput {
  std::string root;      // prefixes every path, as HostPaths::root
  std::string cert_dir;  // as qemu.conf names it, without root
  Account account;
};

// Checks that `account` can reach and read the certificate set:
// "permissions.folder" for every folder on the path of cert_dir (search),
// "permissions.file" for each file QEMU reads (read), and
// "permissions.key" for private keys, which other users must not read.
// Missing files are left to the certificate checks. Every failed check
// names the entry, its mode and owner, the account and the command to run.
util::Checks check_permissions(const PermissionInput& input);

}  // namespace qmt::virt
