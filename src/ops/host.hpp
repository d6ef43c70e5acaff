#pragma once

#include <optional>
#include <string>

#include "conf/qemu_conf.hpp"
#include "ops/options.hpp"
#include "util/files.hpp"
#include "util/result.hpp"

namespace qmt::ops {

inline constexpr const char* k_cert_dir_key = "migrate_tls_x509_cert_dir";
inline constexpr const char* k_verify_key = "migrate_tls_x509_verify";
inline constexpr const char* k_force_key = "migrate_tls_force";
inline constexpr const char* k_default_qemu_conf = "/etc/libvirt/qemu.conf";
inline constexpr const char* k_default_cert_dir = "/etc/pki/qemu-migrate";

// The options `path`, `root` and `lens_dir`, shared by every operation that
// reads qemu.conf.
OptionSpecs qemu_conf_options();

// Locations of an operation's files on this host. `root` prefixes every
// absolute path, so a sandbox folder can stand in for "/". Values written
// into qemu.conf stay as libvirt inside that root reads them.
struct HostPaths {
  std::string root;
  std::string lens_dir;
  std::string qemu_conf;  // as libvirt names it, without root

  // Returns `path` as this process opens it (under root).
  std::string resolve(const std::string& path) const;
};

HostPaths host_paths(const Params& params);

// Rejects a relative folder option: libvirt reads qemu.conf's paths as
// absolute, and a module's working directory is Ansible's temporary folder.
util::Result<void> require_absolute(const std::string& option,
                                    const std::string& path);

// qemu.conf as read from disk.
struct LoadedQemuConf {
  std::string file;  // the path opened, under root
  std::string text;
  util::FileMode mode;
  conf::QemuConf conf;
};

// Reads and parses qemu.conf. Errors name the file: missing, unreadable, or
// a text the lens rejects (with line and the lens's message).
util::Result<LoadedQemuConf> load_qemu_conf(const HostPaths& paths);

// The three migration TLS keys of qemu.conf as libvirt reads them (first
// active occurrence).
struct MigrationSettings {
  std::optional<std::string> cert_dir;
  std::optional<bool> verify;
  std::optional<bool> force;
};

// Reads the migration TLS keys. A key of the wrong type, such as a quoted
// boolean or a bare string, is an error naming the file, key and value.
util::Result<MigrationSettings> read_migration_settings(
    const LoadedQemuConf& loaded);

// The account QEMU processes run as: qemu.conf's `user` and `group` when
// set, else the distribution's default (libvirt-qemu:kvm on Debian and
// Ubuntu, qemu:qemu on Fedora and RHEL).
struct QemuAccount {
  std::string user;
  std::string group;
  std::string source;  // "qemu.conf" or "distribution default"
};

QemuAccount qemu_account(const std::optional<LoadedQemuConf>& loaded,
                         const HostPaths& paths);

}  // namespace qmt::ops
