#include "virt/readiness.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "pki/certificate.hpp"
#include "util/files.hpp"
#include "virt/libvirt.hpp"

namespace qmt::virt {

namespace {

using util::Check;
using util::Checks;
using util::CheckStatus;

// btime in /proc/stat is whole seconds and the start time is in clock
// ticks, so the computed start may be up to one second early. A file must
// be newer than that to count as changed after the start.
constexpr std::int64_t k_start_time_slack = 1;

std::string seconds_text(double seconds, int decimals) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", decimals, seconds);
  return text;
}

Check connect_check(const std::string& uri, const DaemonProbe& probe,
                    std::chrono::milliseconds timeout) {
  const std::string limit =
      seconds_text(std::chrono::duration<double>(timeout).count(), 1);
  if (probe.timed_out) {
    return {"libvirt.connect", CheckStatus::failed, "",
            "libvirt at " + uri + " did not respond within " + limit +
                " s (libvirt_timeout): the daemon accepted no connection or "
                "sent no reply; check that it runs and responds (virsh -c " +
                uri + " version)"};
  }
  if (!probe.facts.connected) {
    return {"libvirt.connect", CheckStatus::failed, "",
            probe.facts.error +
                "; start the libvirt daemon or set libvirt_uri, or set "
                "check_libvirt to false to skip the daemon checks"};
  }
  return {"libvirt.connect", CheckStatus::ok, "",
          "Connected to " + uri + (probe.facts.read_only ? " read-only" : "") +
              " in " + seconds_text(probe.seconds, 3) + " s"};
}

Check library_version_check(const std::string& uri, const DaemonFacts& facts) {
  if (facts.library_version == 0) {
    return {"libvirt.version", CheckStatus::failed, "",
            facts.version_error.empty()
                ? "libvirt at " + uri + " reported no version"
                : facts.version_error};
  }
  const std::string version = version_text(facts.library_version);
  if (facts.library_version < k_min_libvirt_tls) {
    return {"libvirt.version", CheckStatus::failed, "",
            "libvirt " + version + " at " + uri +
                " is older than 3.2.0, which added VIR_MIGRATE_TLS, so it "
                "cannot migrate over QEMU's TLS; upgrade libvirt"};
  }
  if (facts.library_version < k_min_libvirt_tls_destination) {
    return {"libvirt.version", CheckStatus::warning, "",
            "libvirt " + version + " at " + uri +
                " has VIR_MIGRATE_TLS (3.2.0 or later) but not "
                "VIR_MIGRATE_PARAM_TLS_DESTINATION (6.0.0 or later), so the "
                "source always checks the host name of the migration URI in "
                "the destination's certificate; upgrade libvirt to choose "
                "that name"};
  }
  return {"libvirt.version", CheckStatus::ok, "",
          "libvirt " + version + " at " + uri +
              " has VIR_MIGRATE_TLS (3.2.0 or later) and "
              "VIR_MIGRATE_PARAM_TLS_DESTINATION (6.0.0 or later)"};
}

// libvirt learns whether QEMU accepts the tls-creds migration parameter only
// when a migration starts (query-migrate-parameters). Neither the domain
// capabilities nor libvirt's QEMU capability flags announce it (seen with
// libvirt 9.0 and QEMU 7.2), so the decision is by version. The domain
// capabilities name the binary it concerns.
Check qemu_version_check(const std::string& uri, const DaemonFacts& facts) {
  if (!facts.hypervisor_type.empty() && facts.hypervisor_type != "QEMU") {
    return {"libvirt.qemu-version", CheckStatus::failed, "",
            uri + " is a " + facts.hypervisor_type +
                " connection, not QEMU; expected a URI of libvirt's QEMU "
                "driver such as qemu:///system"};
  }
  if (facts.hypervisor_version == 0) {
    return {"libvirt.qemu-version", CheckStatus::failed, "",
            facts.version_error.empty()
                ? "libvirt at " + uri + " reported no QEMU version"
                : facts.version_error};
  }
  const std::string version = version_text(facts.hypervisor_version);
  const std::string binary =
      facts.emulator.empty()
          ? "the default emulator (its path is unknown: " +
                facts.domain_capabilities_error + ")"
          : facts.emulator + ", the emulator of the domain capabilities";
  if (facts.hypervisor_version < k_min_qemu_tls) {
    return {"libvirt.qemu-version", CheckStatus::failed, binary,
            "QEMU " + version + " (" + binary +
                ") is older than 2.9.0, so it lacks the TLS migration "
                "parameters that VIR_MIGRATE_TLS sets; upgrade QEMU"};
  }
  return {"libvirt.qemu-version", CheckStatus::ok, facts.emulator,
          "QEMU " + version + " (" + binary +
              ") is 2.9.0 or later, so it supports TLS migration; decided "
              "by version because libvirt probes the tls-creds migration "
              "parameter only when a migration starts"};
}

}  // namespace

util::Checks check_daemon(const std::string& uri, const DaemonProbe& probe,
                          std::chrono::milliseconds timeout) {
  Checks checks{connect_check(uri, probe, timeout)};
  if (probe.timed_out || !probe.facts.connected) return checks;
  checks.push_back(library_version_check(uri, probe.facts));
  checks.push_back(qemu_version_check(uri, probe.facts));
  return checks;
}

util::Result<std::optional<FileTime>> read_file_time(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<FileTime>{};
    }
    return util::Error{"Failed to stat " + path + ": " +
                       util::errno_text(errno)};
  }
  return std::optional<FileTime>{
      FileTime{path, static_cast<std::int64_t>(info.st_mtime)}};
}

util::Check check_config_loaded(const util::Result<DaemonProcess>& process,
                                const std::string& pid_file,
                                const FileTime& qemu_conf,
                                const std::vector<FileTime>& certificates) {
  if (!process) {
    return {"libvirt.config-loaded", CheckStatus::warning, pid_file,
            "Cannot tell whether the libvirt daemon runs with " +
                qemu_conf.path + ": " + process.error().message +
                "; set libvirtd_pid_file to the daemon's pid file"};
  }
  const DaemonProcess& daemon = process.value();
  const std::string name = daemon.name.empty() ? "libvirtd" : daemon.name;
  const std::string daemon_text = name + " (pid " + std::to_string(daemon.pid) +
                                  ", started " +
                                  pki::format_time(daemon.start_time) + ")";
  if (name != "libvirtd" && name != "virtqemud") {
    return {"libvirt.config-loaded", CheckStatus::warning, pid_file,
            pid_file + " names process " + std::to_string(daemon.pid) + " (" +
                name +
                "), which is not a libvirt daemon; the pid file may be "
                "stale. Set libvirtd_pid_file to the running daemon's pid "
                "file"};
  }

  const std::int64_t started = daemon.start_time + k_start_time_slack;
  std::string later_certificates;
  for (const auto& file : certificates) {
    if (file.modified <= started) continue;
    later_certificates += (later_certificates.empty() ? "" : ", ") + file.path +
                          " at " + pki::format_time(file.modified);
  }
  const std::string certificate_note =
      later_certificates.empty()
          ? ""
          : ". Certificate files changed since then (" + later_certificates +
                ") need no restart, because QEMU loads them at each migration";

  if (qemu_conf.modified > started) {
    return {"libvirt.config-loaded", CheckStatus::warning, qemu_conf.path,
            qemu_conf.path + " changed at " +
                pki::format_time(qemu_conf.modified) + ", after " +
                daemon_text +
                ", and libvirt reads it only at start, so the daemon still "
                "runs with the settings from before; restart " +
                name + " to apply it" + certificate_note};
  }
  return {"libvirt.config-loaded", CheckStatus::ok, qemu_conf.path,
          daemon_text + " runs with " + qemu_conf.path +
              " as it is on disk (last changed " +
              pki::format_time(qemu_conf.modified) + ")" + certificate_note};
}

util::Check check_client_auth(const pki::CertificateSet& set,
                              std::optional<bool> verify,
                              const std::string& qemu_conf) {
  std::string missing;
  for (const pki::PemFile* file : {&set.client_cert, &set.client_key}) {
    if (file->pem.empty()) {
      missing += (missing.empty() ? "" : " and ") + file->label;
    }
  }
  if (!missing.empty()) {
    return {"migration.client-auth", CheckStatus::failed, set.client_cert.label,
            missing +
                (missing.find(" and ") != std::string::npos ? " are" : " is") +
                " missing, so as migration source this host presents no "
                "client certificate, and a destination with "
                "migrate_tls_x509_verify on (libvirt's default) rejects it "
                "(\"No certificate was found\") however its server files "
                "look; install client-cert.pem and client-key.pem"};
  }
  if (verify.has_value() && !*verify) {
    return {"migration.client-auth", CheckStatus::warning, qemu_conf,
            "This host presents " + set.client_cert.label +
                " as migration source, but as destination it accepts any "
                "source because migrate_tls_x509_verify is 0 in " +
                qemu_conf +
                "; set it to 1 so both hosts authenticate each "
                "other"};
  }
  return {"migration.client-auth", CheckStatus::ok, set.client_cert.label,
          "This host presents " + set.client_cert.label +
              " as migration source and, as destination, requires a client "
              "certificate (migrate_tls_x509_verify is " +
              (verify.has_value() ? std::string("1")
                                  : std::string("unset, libvirt's default 1")) +
              "), so both hosts authenticate each other"};
}

}  // namespace qmt::virt
