"""The libvirt readiness checks of qemu_migration_tls_info on lab hosts.

Each case breaks one thing on h1 (or h2), runs the module over SSH through
Ansible or the binary inside the host, asserts the failed check that names
the cause, and puts the host back. Certificates come from
tests/blackbox/pkitool.py (python3-cryptography), independent of the
product's own OpenSSL code.
"""

import json
import os
import sys
import time

import pytest

from conftest import BINARY, SOURCE_DIR

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "blackbox"))

import pkitool  # noqa: E402

CERT_DIR = "/etc/pki/qemu-migrate"
QEMU_CONF = "/etc/libvirt/qemu.conf"
QEMU_CONF_BACKUP = "/etc/libvirt/qemu.conf.qmt-readiness"
MODULE = "qemu_migration_tls_info"
# An account that exists only in h1's /etc overlay; the machine's own
# /etc/passwd has no entry with this name or id.
QEMU_USER = "qmt-qemu"
QEMU_ID = 64000
TIMEOUT = 10


class CertificateAuthority:
    """A CA that issues host sets with serverAuth and clientAuth."""

    def __init__(self, name):
        self.key, self.cert = pkitool.make_ca(name)

    def host_files(self, lab, host):
        key, cert = pkitool.make_leaf(self.key, self.cert,
                                      [lab.fqdn(host), lab.address(host)])
        cert_pem = pkitool.cert_pem(cert)
        key_pem = pkitool.key_pem(key)
        return {"ca-cert.pem": (pkitool.cert_pem(self.cert), "0644"),
                "server-cert.pem": (cert_pem, "0644"),
                "server-key.pem": (key_pem, "0640"),
                "client-cert.pem": (cert_pem, "0644"),
                "client-key.pem": (key_pem, "0640")}


def enroll(lab, host, authority):
    """Install a fresh set from AUTHORITY in CERT_DIR, as the role does."""
    lab.sh(host, f"rm -rf {CERT_DIR} && mkdir -p {CERT_DIR} && "
                 f"chmod 0755 /etc/pki {CERT_DIR}")
    for name, (text, mode) in authority.host_files(lab, host).items():
        lab.write_file(host, f"{CERT_DIR}/{name}", text, mode=mode)


def run_info(lab, host, **options):
    """Run the module on HOST through Ansible; returns (result, seconds)."""
    arguments = {"hostname": lab.fqdn(host), "fail_on_error": False,
                 "libvirt_timeout": TIMEOUT}
    arguments.update(options)
    start = time.monotonic()
    result = lab.module(host, MODULE, arguments)
    return result, time.monotonic() - start


def run_verify(lab, host, *flags):
    """Run `qemu-migration-tls verify` inside HOST; returns (JSON, seconds)."""
    start = time.monotonic()
    completed = lab.exec(host, BINARY, "--json", "verify", "--hostname",
                         lab.fqdn(host), "--fail-on-error", "false", *flags,
                         check=False)
    elapsed = time.monotonic() - start
    assert completed.stderr == "", completed.stderr
    return json.loads(completed.stdout), elapsed


def checks_named(result, name):
    return [check for check in result["checks"] if check["name"] == name]


def only_check(result, name):
    found = checks_named(result, name)
    assert len(found) == 1, (name, result["checks"])
    return found[0]


def statuses(result):
    return {check["name"]: check["status"] for check in result["checks"]}


@pytest.fixture(scope="module")
def hosts(lab):
    """Both hosts enrolled by one CA, qemu.conf pointing at CERT_DIR."""
    authority = CertificateAuthority("QEMU Migration Test CA")
    for host in lab.hosts:
        enroll(lab, host, authority)
        lab.sh(host, f"sed -i '/^migrate_tls_/d' {QEMU_CONF} && "
                     f"echo 'migrate_tls_x509_cert_dir = \"{CERT_DIR}\"' "
                     f">>{QEMU_CONF} && cp -p {QEMU_CONF} {QEMU_CONF_BACKUP}")
        lab.libvirtd(host, "restart")
    return authority


@pytest.fixture
def h1(lab, hosts):
    """h1 as the hosts fixture left it; restored after the test."""
    yield lab
    lab.libvirtd("h1", "start")
    lab.sh("h1", f"cp -p {QEMU_CONF_BACKUP} {QEMU_CONF} && chmod 0755 /etc/pki")
    enroll(lab, "h1", hosts)


def add_qemu_account(lab):
    """Make qemu.conf on h1 name an unprivileged account that exists there."""
    lab.sh("h1", f"grep -q '^{QEMU_USER}:' /etc/passwd || {{ "
                 f"echo '{QEMU_USER}:x:{QEMU_ID}:{QEMU_ID}::/nonexistent:"
                 f"/usr/sbin/nologin' >>/etc/passwd && "
                 f"echo '{QEMU_USER}:x:{QEMU_ID}:' >>/etc/group; }}")
    lab.sh("h1", f"sed -i -E 's/^user = .*/user = \"{QEMU_USER}\"/; "
                 f"s/^group = .*/group = \"{QEMU_USER}\"/' {QEMU_CONF}")


def test_ready_host_passes(lab, hosts):
    timings = {}
    for host in lab.hosts:
        result, seconds = run_info(lab, host)
        timings[host] = (seconds, result["libvirt"]["seconds"])
        assert result.get("failed", False) is False
        found = statuses(result)
        failed = [check for check in result["checks"]
                  if check["status"] != "ok"]
        assert failed == [], failed
        for name in ("libvirt.connect", "libvirt.version",
                     "libvirt.qemu-version", "libvirt.config-loaded",
                     "permissions.account", "permissions.folder",
                     "permissions.file", "permissions.key",
                     "migration.client-auth"):
            assert found.get(name) == "ok", name
        libvirt = result["libvirt"]
        assert libvirt["connected"] is True
        assert libvirt["version"] == "9.0.0"
        assert libvirt["qemu_version"].startswith("7.2.")
        assert libvirt["emulator"] == "/usr/bin/qemu-system-x86_64"
        assert libvirt["daemon_pid"] > 0
    both_start = time.monotonic()
    results = lab.ansible("hypervisors", MODULE,
                          {"fail_on_error": False, "libvirt_timeout": TIMEOUT})
    both = time.monotonic() - both_start
    assert sorted(results) == [lab.fqdn(host) for host in lab.hosts]
    verify, inside = run_verify(lab, "h1")
    assert verify["libvirt"]["connected"] is True
    print(f"\ninfo timings: ansible per host {timings}, ansible both hosts "
          f"{both:.2f} s, verify inside h1 {inside:.2f} s "
          f"(libvirt {verify['libvirt']['seconds']:.3f} s)")


def test_empty_folder_fails(lab, h1):
    lab.sh("h1", "mkdir -p /etc/pki/qmt-empty && chmod 0755 /etc/pki/qmt-empty")
    try:
        result, _ = run_info(lab, "h1", cert_dir="/etc/pki/qmt-empty")
    finally:
        lab.sh("h1", "rmdir /etc/pki/qmt-empty")
    assert result.get("failed", False) is False
    check = only_check(result, "migration.client-auth")
    assert check["status"] == "failed"
    assert check["message"].startswith(
        "/etc/pki/qmt-empty/client-cert.pem and "
        "/etc/pki/qmt-empty/client-key.pem are missing, so as migration "
        "source this host presents no client certificate")
    assert only_check(result, "ca-cert.parse")["status"] == "failed"
    assert only_check(result, "server-cert.parse")["status"] == "failed"
    assert checks_named(result, "permissions.file") == []


def test_root_only_keys_for_unprivileged_user(lab, h1):
    add_qemu_account(lab)
    lab.sh("h1", f"chmod 0600 {CERT_DIR}/server-key.pem {CERT_DIR}/client-key.pem")
    result, _ = run_info(lab, "h1", fail_on_error=True)
    assert result.get("failed") is True
    assert result["qemu_user"] == QEMU_USER
    account = only_check(result, "permissions.account")
    assert account["message"] == (
        f"QEMU runs as user {QEMU_USER} (uid {QEMU_ID}) and group {QEMU_USER} "
        f"(gid {QEMU_ID}) (from qemu.conf)")
    files = checks_named(result, "permissions.file")
    assert [check["file"] for check in files] == [
        f"{CERT_DIR}/server-key.pem", f"{CERT_DIR}/client-key.pem"]
    key = f"{CERT_DIR}/server-key.pem"
    assert files[0]["status"] == "failed"
    assert files[0]["message"] == (
        f"{key} (mode 0600, owner root:root) is not readable by QEMU's user "
        f"{QEMU_USER} (uid {QEMU_ID}) and group {QEMU_USER} (gid {QEMU_ID}), "
        f"and QEMU reads it as migration destination; run chgrp {QEMU_USER} "
        f"{key} && chmod g+r {key}")
    assert "permissions.file: " + files[0]["message"] in result["msg"]
    # qemu.conf changed after libvirtd started, so the daemon check warns.
    assert only_check(result, "libvirt.config-loaded")["status"] == "warning"


def test_private_folder_on_path(lab, h1):
    add_qemu_account(lab)
    lab.sh("h1", "chmod 0700 /etc/pki")
    result, _ = run_info(lab, "h1")
    folders = checks_named(result, "permissions.folder")
    assert len(folders) == 1
    assert folders[0]["status"] == "failed"
    assert folders[0]["file"] == "/etc/pki"
    assert folders[0]["message"] == (
        f"/etc/pki (mode 0700, owner root:root) is not searchable by QEMU's "
        f"user {QEMU_USER} (uid {QEMU_ID}) and group {QEMU_USER} "
        f"(gid {QEMU_ID}), so QEMU cannot open the certificate files below "
        f"it; run chmod o+x /etc/pki")


def test_missing_client_certificate(lab, h1):
    lab.sh("h1", f"rm {CERT_DIR}/client-cert.pem")
    result, _ = run_info(lab, "h1", fail_on_error=True)
    assert result.get("failed") is True
    check = only_check(result, "migration.client-auth")
    assert check["status"] == "failed"
    assert check["file"] == f"{CERT_DIR}/client-cert.pem"
    assert check["message"] == (
        f"{CERT_DIR}/client-cert.pem is missing, so as migration source this "
        "host presents no client certificate, and a destination with "
        "migrate_tls_x509_verify on (libvirt's default) rejects it (\"No "
        "certificate was found\") however its server files look; install "
        "client-cert.pem and client-key.pem")


def test_stopped_daemon_fails_fast(lab, h1):
    lab.libvirtd("h1", "stop")
    result, seconds = run_info(lab, "h1")
    check = only_check(result, "libvirt.connect")
    assert check["status"] == "failed"
    assert check["message"].startswith("Failed to connect to qemu:///system: "
                                       "Failed to connect socket to ")
    assert "No such file or directory" in check["message"]
    assert result["libvirt"]["connected"] is False
    assert result["libvirt"]["seconds"] < TIMEOUT
    assert seconds < TIMEOUT + 20
    assert checks_named(result, "libvirt.version") == []

    skipped, _ = run_info(lab, "h1", check_libvirt=False)
    assert checks_named(skipped, "libvirt.connect") == []
    assert skipped["libvirt"] == {"checked": False}


def test_hung_daemon_times_out(lab, h1):
    pid = lab.exec("h1", "cat", "/run/libvirtd.pid").stdout.strip()
    lab.exec("h1", "kill", "-STOP", pid)
    try:
        result, seconds = run_verify(lab, "h1", "--libvirt-timeout", "3")
    finally:
        lab.exec("h1", "kill", "-CONT", pid)
    check = only_check(result, "libvirt.connect")
    assert check["status"] == "failed"
    assert check["message"].startswith(
        "libvirt at qemu:///system did not respond within 3.0 s "
        "(libvirt_timeout)")
    assert result["libvirt"]["timed_out"] is True
    assert 3 <= seconds < 8


def test_qemu_conf_changed_after_start(lab, h1):
    time.sleep(2)
    lab.sh("h1", f"echo '# changed by the readiness test' >>{QEMU_CONF}")
    result, _ = run_info(lab, "h1")
    check = only_check(result, "libvirt.config-loaded")
    assert check["status"] == "warning"
    assert check["file"] == QEMU_CONF
    assert check["message"].startswith(f"{QEMU_CONF} changed at ")
    assert ", after libvirtd (pid " in check["message"]
    assert "; restart libvirtd to apply it" in check["message"]

    lab.libvirtd("h1", "restart")
    result, _ = run_info(lab, "h1")
    assert only_check(result, "libvirt.config-loaded")["status"] == "ok"


def peer_options(lab, host, name):
    return {"peer_ca_cert": lab.read_file(host, f"{CERT_DIR}/ca-cert.pem"),
            "peer_server_cert": lab.read_file(host,
                                              f"{CERT_DIR}/server-cert.pem"),
            "peer_name": name}


def test_pair_with_same_ca(lab, hosts):
    result, _ = run_info(lab, "h1", **peer_options(lab, "h2", "h2.lab.test"))
    pair = {check["name"]: check["status"] for check in result["checks"]
            if check["name"].startswith("pair.")}
    assert pair == {"pair.peer-server-cert.chain": "ok",
                    "pair.peer-server-cert.hostname": "ok",
                    "pair.peer-server-cert.validity": "ok",
                    "pair.peer-server-cert.purpose": "ok",
                    "pair.client-cert.chain": "ok",
                    "pair.client-cert.validity": "ok",
                    "pair.client-cert.purpose": "ok"}


def test_pair_with_peer_of_other_ca(lab, hosts):
    enroll(lab, "h2", CertificateAuthority("Other QEMU CA"))
    try:
        options = peer_options(lab, "h2", "h2.lab.test")
        result, _ = run_info(lab, "h1", fail_on_error=True, **options)
    finally:
        enroll(lab, "h2", hosts)
    assert result.get("failed") is True
    chain = only_check(result, "pair.peer-server-cert.chain")
    assert chain["status"] == "failed"
    assert chain["message"].startswith(
        "peer_server_cert (CN=h2.lab.test, issuer CN=Other QEMU CA) does not "
        f"chain to this host's {CERT_DIR}/ca-cert.pem: unable to get local "
        "issuer certificate. As migration source this host rejects the peer")
    client = only_check(result, "pair.client-cert.chain")
    assert client["status"] == "failed"
    assert client["message"].startswith(
        f"{CERT_DIR}/client-cert.pem (CN=h1.lab.test, issuer CN=QEMU "
        "Migration Test CA) does not chain to the peer's peer_ca_cert")


def test_pair_with_wrong_peer_name(lab, hosts):
    result, _ = run_info(lab, "h1", **peer_options(lab, "h2", "h2"))
    check = only_check(result, "pair.peer-server-cert.hostname")
    assert check["status"] == "failed"
    assert check["message"] == (
        "peer_server_cert does not match h2 (found DNS:h2.lab.test, "
        "IP:10.213.7.12). As migration source this host rejects the peer "
        "(\"Certificate does not match the hostname h2\"); expected DNS:h2 "
        "in the peer's subjectAltName")
