#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pki/checks.hpp"
#include "util/check.hpp"
#include "util/result.hpp"
#include "virt/daemon.hpp"

namespace qmt::virt {

// libvirt 3.2.0 added VIR_MIGRATE_TLS; 6.0.0 added
// VIR_MIGRATE_PARAM_TLS_DESTINATION.
inline constexpr unsigned long long k_min_libvirt_tls = 3002000;
inline constexpr unsigned long long k_min_libvirt_tls_destination = 6000000;
// Lowest QEMU this tool accepts for TLS migration: its migration parameters
// tls-creds and tls-hostname are what VIR_MIGRATE_TLS sets.
inline constexpr unsigned long long k_min_qemu_tls = 2009000;

// Turns a probe of `uri` into "libvirt.connect", "libvirt.version" and
// "libvirt.qemu-version". A daemon that did not respond within `timeout`
// or refused the connection gives one failed "libvirt.connect" naming the
// URI and libvirt's message.
util::Checks check_daemon(const std::string& uri, const DaemonProbe& probe,
                          std::chrono::milliseconds timeout);

// A file and the time of its last change.
struct FileTime {
  std::string path;
  std::int64_t modified = 0;  // Unix seconds (st_mtime)
};

// Returns the modification time of `path`, or nullopt when it does not
// exist.
util::Result<std::optional<FileTime>> read_file_time(const std::string& path);

// "libvirt.config-loaded": a warning when qemu.conf changed after the daemon
// started, because libvirt reads it only at start. `process` is the result
// of read_daemon_process for the pid file named `pid_file`. Certificate
// files changed later need no restart (QEMU loads them at each migration)
// and are named in the message only.
util::Check check_config_loaded(const util::Result<DaemonProcess>& process,
                                const std::string& pid_file,
                                const FileTime& qemu_conf,
                                const std::vector<FileTime>& certificates);

// "migration.client-auth": both hosts of a migration authenticate each other
// only when this host has client-cert.pem and client-key.pem (failed
// without them) and migrate_tls_x509_verify is on (a warning when off).
// `verify` is the qemu.conf value, nullopt when unset (libvirt's default 1).
util::Check check_client_auth(const pki::CertificateSet& set,
                              std::optional<bool> verify,
                              const std::string& qemu_conf);

}  // namespace qmt::virt
