#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "virt/readiness.hpp"

namespace {

using qmt::util::CheckStatus;
using qmt::virt::DaemonProbe;
using qmt::virt::DaemonProcess;
using qmt::virt::FileTime;

constexpr auto k_timeout = std::chrono::seconds(30);

DaemonProbe connected_probe(unsigned long long library,
                            unsigned long long qemu) {
  DaemonProbe probe;
  probe.seconds = 0.25;
  probe.facts.connected = true;
  probe.facts.library_version = library;
  probe.facts.hypervisor_version = qemu;
  probe.facts.hypervisor_type = "QEMU";
  probe.facts.emulator = "/usr/bin/qemu-system-x86_64";
  return probe;
}

TEST(CheckDaemon, CurrentVersions) {
  auto checks = qmt::virt::check_daemon(
      "qemu:///system", connected_probe(9000000, 7002000), k_timeout);
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[0].status, CheckStatus::ok);
  EXPECT_EQ(checks[0].message, "Connected to qemu:///system in 0.250 s");
  EXPECT_EQ(checks[1].status, CheckStatus::ok);
  EXPECT_EQ(checks[1].message,
            "libvirt 9.0.0 at qemu:///system has VIR_MIGRATE_TLS (3.2.0 or "
            "later) and VIR_MIGRATE_PARAM_TLS_DESTINATION (6.0.0 or later)");
  EXPECT_EQ(checks[2].status, CheckStatus::ok);
  EXPECT_EQ(checks[2].file, "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(checks[2].message,
            "QEMU 7.2.0 (/usr/bin/qemu-system-x86_64, the emulator of the "
            "domain capabilities) is 2.9.0 or later, so it supports TLS "
            "migration; decided by version because libvirt probes the "
            "tls-creds migration parameter only when a migration starts");
}

TEST(CheckDaemon, LibvirtWithoutTlsDestination) {
  auto checks = qmt::virt::check_daemon(
      "qemu:///system", connected_probe(5010000, 4002000), k_timeout);
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[1].status, CheckStatus::warning);
  EXPECT_EQ(checks[1].message,
            "libvirt 5.10.0 at qemu:///system has VIR_MIGRATE_TLS (3.2.0 or "
            "later) but not VIR_MIGRATE_PARAM_TLS_DESTINATION (6.0.0 or "
            "later), so the source always checks the host name of the "
            "migration URI in the destination's certificate; upgrade libvirt "
            "to choose that name");
}

TEST(CheckDaemon, LibvirtWithoutTls) {
  auto checks = qmt::virt::check_daemon(
      "qemu:///system", connected_probe(3001000, 2009000), k_timeout);
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[1].status, CheckStatus::failed);
  EXPECT_EQ(checks[1].message,
            "libvirt 3.1.0 at qemu:///system is older than 3.2.0, which added "
            "VIR_MIGRATE_TLS, so it cannot migrate over QEMU's TLS; upgrade "
            "libvirt");
}

TEST(CheckDaemon, OldQemu) {
  auto checks = qmt::virt::check_daemon(
      "qemu:///system", connected_probe(9000000, 2008001), k_timeout);
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[2].status, CheckStatus::failed);
  EXPECT_EQ(checks[2].message,
            "QEMU 2.8.1 (/usr/bin/qemu-system-x86_64, the emulator of the "
            "domain capabilities) is older than 2.9.0, so it lacks the TLS "
            "migration parameters that VIR_MIGRATE_TLS sets; upgrade QEMU");
}

TEST(CheckDaemon, QemuWithoutDomainCapabilities) {
  DaemonProbe probe = connected_probe(9000000, 7002000);
  probe.facts.emulator.clear();
  probe.facts.domain_capabilities_error =
      "Failed to read the domain capabilities from qemu:///system: denied";
  auto checks = qmt::virt::check_daemon("qemu:///system", probe, k_timeout);
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[2].status, CheckStatus::ok);
  EXPECT_EQ(checks[2].file, "");
  EXPECT_EQ(checks[2].message.rfind(
                "QEMU 7.2.0 (the default emulator (its path is unknown: "
                "Failed to read the domain capabilities from qemu:///system: "
                "denied)) is 2.9.0 or later",
                0),
            0u)
      << checks[2].message;
}

TEST(CheckDaemon, ReadOnlyConnection) {
  DaemonProbe probe = connected_probe(9000000, 7002000);
  probe.facts.read_only = true;
  auto checks = qmt::virt::check_daemon("qemu:///system", probe, k_timeout);
  EXPECT_EQ(checks[0].message,
            "Connected to qemu:///system read-only in 0.250 s");
}

TEST(CheckDaemon, ConnectionRefused) {
  DaemonProbe probe;
  probe.facts.error =
      "Failed to connect to qemu:///system: Failed to connect socket to "
      "'/var/run/libvirt/libvirt-sock': No such file or directory";
  auto checks = qmt::virt::check_daemon("qemu:///system", probe, k_timeout);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].name, "libvirt.connect");
  EXPECT_EQ(checks[0].status, CheckStatus::failed);
  EXPECT_EQ(checks[0].message,
            "Failed to connect to qemu:///system: Failed to connect socket to "
            "'/var/run/libvirt/libvirt-sock': No such file or directory; "
            "start the libvirt daemon or set libvirt_uri, or set "
            "check_libvirt to false to skip the daemon checks");
}

DaemonProcess daemon_at(std::int64_t start_time) {
  DaemonProcess process;
  process.pid = 321;
  process.name = "libvirtd";
  process.start_time = start_time;
  return process;
}

// 2025-01-01 00:00:00 UTC.
constexpr std::int64_t k_start = 1735689600;

TEST(CheckConfigLoaded, ConfigChangedAfterStart) {
  qmt::util::Result<DaemonProcess> process = daemon_at(k_start);
  auto check = qmt::virt::check_config_loaded(
      process, "/run/libvirtd.pid", {"/etc/libvirt/qemu.conf", k_start + 60},
      {});
  EXPECT_EQ(check.name, "libvirt.config-loaded");
  EXPECT_EQ(check.status, CheckStatus::warning);
  EXPECT_EQ(check.file, "/etc/libvirt/qemu.conf");
  EXPECT_EQ(check.message,
            "/etc/libvirt/qemu.conf changed at 2025-01-01 00:01:00 UTC, after "
            "libvirtd (pid 321, started 2025-01-01 00:00:00 UTC), and libvirt "
            "reads it only at start, so the daemon still runs with the "
            "settings from before; restart libvirtd to apply it");
}

TEST(CheckConfigLoaded, ConfigOlderThanDaemon) {
  qmt::util::Result<DaemonProcess> process = daemon_at(k_start);
  auto check = qmt::virt::check_config_loaded(
      process, "/run/libvirtd.pid", {"/etc/libvirt/qemu.conf", k_start - 3600},
      {});
  EXPECT_EQ(check.status, CheckStatus::ok);
  EXPECT_EQ(check.message,
            "libvirtd (pid 321, started 2025-01-01 00:00:00 UTC) runs with "
            "/etc/libvirt/qemu.conf as it is on disk (last changed 2024-12-31 "
            "23:00:00 UTC)");
}

TEST(CheckConfigLoaded, WithinStartTimeSlack) {
  qmt::util::Result<DaemonProcess> process = daemon_at(k_start);
  auto check = qmt::virt::check_config_loaded(
      process, "/run/libvirtd.pid", {"/etc/libvirt/qemu.conf", k_start + 1},
      {});
  EXPECT_EQ(check.status, CheckStatus::ok);
}

TEST(CheckConfigLoaded, CertificatesNeedNoRestart) {
  qmt::util::Result<DaemonProcess> process = daemon_at(k_start);
  auto check = qmt::virt::check_config_loaded(
      process, "/run/libvirtd.pid", {"/etc/libvirt/qemu.conf", k_start - 60},
      {{"/etc/pki/qemu-migrate/server-cert.pem", k_start + 120},
       {"/etc/pki/qemu-migrate/ca-cert.pem", k_start - 60}});
  EXPECT_EQ(check.status, CheckStatus::ok);
  EXPECT_EQ(check.message,
            "libvirtd (pid 321, started 2025-01-01 00:00:00 UTC) runs with "
            "/etc/libvirt/qemu.conf as it is on disk (last changed 2024-12-31 "
            "23:59:00 UTC). Certificate files changed since then "
            "(/etc/pki/qemu-migrate/server-cert.pem at 2025-01-01 00:02:00 "
            "UTC) need no restart, because QEMU loads them at each "
            "migration");
}

TEST(CheckConfigLoaded, UnknownDaemon) {
  qmt::util::Result<DaemonProcess> process = qmt::util::Error{
      "Failed to read /run/libvirtd.pid: No such file or "
      "directory"};
  auto check = qmt::virt::check_config_loaded(
      process, "/run/libvirtd.pid", {"/etc/libvirt/qemu.conf", k_start}, {});
  EXPECT_EQ(check.status, CheckStatus::warning);
  EXPECT_EQ(check.file, "/run/libvirtd.pid");
  EXPECT_EQ(check.message,
            "Cannot tell whether the libvirt daemon runs with "
            "/etc/libvirt/qemu.conf: Failed to read /run/libvirtd.pid: No "
            "such file or directory; set libvirtd_pid_file to the daemon's "
            "pid file");
}

TEST(CheckConfigLoaded, StalePidFile) {
  DaemonProcess other = daemon_at(k_start);
  other.name = "sleep";
  qmt::util::Result<DaemonProcess> process = other;
  auto check = qmt::virt::check_config_loaded(
      process, "/run/libvirtd.pid", {"/etc/libvirt/qemu.conf", k_start}, {});
  EXPECT_EQ(check.status, CheckStatus::warning);
  EXPECT_EQ(check.message,
            "/run/libvirtd.pid names process 321 (sleep), which is not a "
            "libvirt daemon; the pid file may be stale. Set "
            "libvirtd_pid_file to the running daemon's pid file");
}

qmt::pki::CertificateSet full_set() {
  const std::string folder = "/etc/pki/qemu-migrate/";
  qmt::pki::CertificateSet set;
  set.ca_cert = {folder + "ca-cert.pem", "x"};
  set.server_cert = {folder + "server-cert.pem", "x"};
  set.server_key = {folder + "server-key.pem", "x"};
  set.client_cert = {folder + "client-cert.pem", "x"};
  set.client_key = {folder + "client-key.pem", "x"};
  return set;
}

TEST(CheckClientAuth, BothDirections) {
  auto check = qmt::virt::check_client_auth(full_set(), std::nullopt,
                                            "/etc/libvirt/qemu.conf");
  EXPECT_EQ(check.name, "migration.client-auth");
  EXPECT_EQ(check.status, CheckStatus::ok);
  EXPECT_EQ(check.message,
            "This host presents /etc/pki/qemu-migrate/client-cert.pem as "
            "migration source and, as destination, requires a client "
            "certificate (migrate_tls_x509_verify is unset, libvirt's default "
            "1), so both hosts authenticate each other");
}

TEST(CheckClientAuth, MissingClientFiles) {
  auto set = full_set();
  set.client_cert.pem.clear();
  set.client_key.pem.clear();
  auto check =
      qmt::virt::check_client_auth(set, true, "/etc/libvirt/qemu.conf");
  EXPECT_EQ(check.status, CheckStatus::failed);
  EXPECT_EQ(check.file, "/etc/pki/qemu-migrate/client-cert.pem");
  EXPECT_EQ(check.message,
            "/etc/pki/qemu-migrate/client-cert.pem and "
            "/etc/pki/qemu-migrate/client-key.pem are missing, so as "
            "migration source this host presents no client certificate, and "
            "a destination with migrate_tls_x509_verify on (libvirt's "
            "default) rejects it (\"No certificate was found\") however its "
            "server files look; install client-cert.pem and client-key.pem");
}

TEST(CheckClientAuth, MissingClientKeyOnly) {
  auto set = full_set();
  set.client_key.pem.clear();
  auto check =
      qmt::virt::check_client_auth(set, true, "/etc/libvirt/qemu.conf");
  EXPECT_EQ(check.status, CheckStatus::failed);
  EXPECT_EQ(check.message.rfind(
                "/etc/pki/qemu-migrate/client-key.pem is missing, so", 0),
            0u)
      << check.message;
}

TEST(CheckClientAuth, VerifyOff) {
  auto check =
      qmt::virt::check_client_auth(full_set(), false, "/etc/libvirt/qemu.conf");
  EXPECT_EQ(check.status, CheckStatus::warning);
  EXPECT_EQ(check.file, "/etc/libvirt/qemu.conf");
  EXPECT_EQ(check.message,
            "This host presents /etc/pki/qemu-migrate/client-cert.pem as "
            "migration source, but as destination it accepts any source "
            "because migrate_tls_x509_verify is 0 in /etc/libvirt/qemu.conf; "
            "set it to 1 so both hosts authenticate each other");
}

}  // namespace
