"""Interoperability of the issued certificate sets with QEMU's TLS migration.

The CA and both host sets are made with the product's CLI only. Two real
qemu-system-x86_64 processes load them as tls-creds-x509 objects and migrate
a stopped 64 MiB guest over 127.0.0.1, driven through QMP. Expected failure
texts are those of QEMU 7.2 with GnuTLS 3.7 (Debian 12).
"""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from qemu_process import QemuProcess

SOURCE_DIR = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("QMT_BINARY",
                        os.path.join(SOURCE_DIR, "build", "qemu-migration-tls"))
STOCK_QEMU_CONF = os.path.join(SOURCE_DIR, "tests", "data", "qemu.conf",
                               "debian-stock.conf")

SOURCE_HOST = "src.lab.test"
DESTINATION_HOST = "dst.lab.test"
KEY_TYPES = ["rsa3072", "ec-p256"]

# QEMU 7.2 defaults max-bandwidth to 128 MiB/s, which would slow the tests.
MAX_BANDWIDTH = 10 * 1024**3
MIGRATION_TIMEOUT = 60


def run_cli(*arguments):
    """Run the CLI with --json, assert success and return the parsed output."""
    completed = subprocess.run([BINARY, *arguments, "--json"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout)
    assert result["failed"] is False, result["msg"]
    return result


def create_ca(ca_dir, key_type):
    run_cli("ca", "--ca-dir", ca_dir, "--key-type", key_type)


def enroll_host(work_dir, ca_dir, hostname, key_type):
    """Enroll one host folder as a host would be: CSR, signing, installation.

    Returns the certificate folder, a stand-in for /etc/pki/qemu-migrate.
    """
    host_dir = os.path.join(work_dir, hostname)
    os.makedirs(host_dir)
    conf = os.path.join(host_dir, "qemu.conf")
    shutil.copy(STOCK_QEMU_CONF, conf)
    cert_dir = os.path.join(host_dir, "qemu-migrate")

    request = run_cli("install", "--state", "csr", "--cert-dir", cert_dir,
                      "--hostname", hostname, "--path", conf,
                      "--key-type", key_type)
    assert request["enrollment_needed"] is True
    csr_path = os.path.join(host_dir, "request.csr")
    with open(csr_path, "w") as f:
        f.write(request["csr"])

    issued = run_cli("ca", "--ca-dir", ca_dir, "--csr", csr_path,
                     "--hostname", hostname)
    ca_cert_path = os.path.join(host_dir, "ca-cert.pem")
    cert_path = os.path.join(host_dir, "cert.pem")
    with open(ca_cert_path, "w") as f:
        f.write(issued["ca_certificate"])
    with open(cert_path, "w") as f:
        f.write(issued["certificate"])

    installed = run_cli("install", "--cert-dir", cert_dir, "--ca-cert",
                        ca_cert_path, "--cert", cert_path, "--hostname",
                        hostname, "--group", "root", "--path", conf)
    assert installed["changed"] is True
    assert installed["certificate"]["dns_names"] == [hostname]
    return cert_dir


@pytest.fixture
def work_dir():
    # A short /tmp path keeps the QMP socket paths under the 108-byte limit.
    path = tempfile.mkdtemp(prefix="qmt-interop-")
    yield path
    shutil.rmtree(path)


@contextlib.contextmanager
def started_pair(work_dir, source_cert_dir, destination_cert_dir):
    """Start the destination (-incoming defer) and the source QEMU.

    Both are killed by pid on exit, also when the block raises.
    """
    processes = []
    try:
        destination = QemuProcess(work_dir, "dst", [
            "-object",
            f"tls-creds-x509,id=tls0,dir={destination_cert_dir},"
            "endpoint=server,verify-peer=on",
            "-incoming", "defer"])
        processes.append(destination)
        source = QemuProcess(work_dir, "src", [
            "-object",
            f"tls-creds-x509,id=tls0,dir={source_cert_dir},"
            "endpoint=client,verify-peer=on"])
        processes.append(source)
        yield source, destination
    finally:
        for process in processes:
            process.stop()


def tls_creds(process):
    """The properties of the process's tls0 object that the tests check."""
    return {name: process.qmp.execute("qom-get", path="/objects/tls0",
                                      property=name)
            for name in ("endpoint", "verify-peer", "loaded")}


def migrate(source, destination, tls_hostname):
    """Migrate source to destination over TLS and return the source's final
    query-migrate result, after "completed" or "failed"."""
    destination.qmp.execute("migrate-set-parameters", **{"tls-creds": "tls0"})
    # Port 0 lets the kernel pick a free port, and query-migrate reports it.
    destination.qmp.execute("migrate-incoming", uri="tcp:127.0.0.1:0")
    addresses = destination.qmp.execute("query-migrate")["socket-address"]
    assert len(addresses) == 1
    assert addresses[0]["host"] == "127.0.0.1"
    port = addresses[0]["port"]

    source.qmp.execute("migrate-set-parameters", **{
        "tls-creds": "tls0",
        "tls-hostname": tls_hostname,
        "max-bandwidth": MAX_BANDWIDTH})
    parameters = source.qmp.execute("query-migrate-parameters")
    assert parameters["tls-hostname"] == tls_hostname
    source.qmp.execute("migrate", uri=f"tcp:127.0.0.1:{port}")

    info = None
    deadline = time.monotonic() + MIGRATION_TIMEOUT
    while time.monotonic() < deadline:
        info = source.qmp.execute("query-migrate")
        if info.get("status") in ("completed", "failed"):
            return info
        time.sleep(0.1)
    pytest.fail(f"Migration timed out after {MIGRATION_TIMEOUT} s: {info}")


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_migration_completes(work_dir, key_type):
    ca_dir = os.path.join(work_dir, "ca")
    create_ca(ca_dir, key_type)
    source_dir = enroll_host(work_dir, ca_dir, SOURCE_HOST, key_type)
    destination_dir = enroll_host(work_dir, ca_dir, DESTINATION_HOST, key_type)

    with started_pair(work_dir, source_dir, destination_dir) as (source,
                                                                 destination):
        assert tls_creds(source) == {"endpoint": "client",
                                     "verify-peer": True, "loaded": True}
        assert tls_creds(destination) == {"endpoint": "server",
                                          "verify-peer": True, "loaded": True}

        info = migrate(source, destination, DESTINATION_HOST)

        assert info["status"] == "completed", info.get("error-desc")
        assert "error-desc" not in info
        # The RAM total also counts ROMs such as the BIOS, so it exceeds -m.
        assert info["ram"]["total"] >= 64 * 1024**2
        assert destination.qmp.execute("query-migrate")["status"] == \
            "completed"
        assert source.qmp.execute("query-status")["status"] == "postmigrate"
        # The source guest never ran (-S), so the destination keeps it stopped.
        assert destination.qmp.execute("query-status")["status"] == \
            "prelaunch"


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_wrong_hostname_fails(work_dir, key_type):
    ca_dir = os.path.join(work_dir, "ca")
    create_ca(ca_dir, key_type)
    source_dir = enroll_host(work_dir, ca_dir, SOURCE_HOST, key_type)
    destination_dir = enroll_host(work_dir, ca_dir, DESTINATION_HOST, key_type)

    with started_pair(work_dir, source_dir, destination_dir) as (source,
                                                                 destination):
        info = migrate(source, destination, "wrong.lab.test")

        assert info["status"] == "failed"
        assert info["error-desc"] == \
            "Certificate does not match the hostname wrong.lab.test"
        assert source.qmp.execute("query-status")["status"] == "prelaunch"


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_foreign_ca_fails(work_dir, key_type):
    ca_dir = os.path.join(work_dir, "ca")
    foreign_ca_dir = os.path.join(work_dir, "foreign-ca")
    create_ca(ca_dir, key_type)
    create_ca(foreign_ca_dir, key_type)
    source_dir = enroll_host(work_dir, ca_dir, SOURCE_HOST, key_type)
    destination_dir = enroll_host(work_dir, foreign_ca_dir, DESTINATION_HOST,
                                  key_type)

    with started_pair(work_dir, source_dir, destination_dir) as (source,
                                                                 destination):
        info = migrate(source, destination, DESTINATION_HOST)

        assert info["status"] == "failed"
        assert info["error-desc"] == \
            "The certificate hasn't got a known issuer"
        # The destination checks the source's client certificate too, against
        # its own ca-cert.pem, and rejects it for the same reason.
        assert destination.wait_for_stderr(
            "The certificate hasn't got a known issuer", timeout=5), \
            destination.stderr()
        assert source.qmp.execute("query-status")["status"] == "prelaunch"
