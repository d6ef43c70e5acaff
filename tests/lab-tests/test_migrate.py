"""Live migrations on the lab with qemu_migration_tls_migrate.

The hosts are enrolled with the product's own playbook (host-deploy.yml),
the lab's test guest runs on h1, and each test leaves it running there.
Negative cases change one host's certificates or daemon through the
product or the lab and restore them afterwards.

    flock /tmp/qmt-lab.lock /usr/bin/python3 -m pytest tests/lab-tests/test_migrate.py
"""

import json
import os
import shlex

import pytest

from conftest import SOURCE_DIR, LabCommandError

GUEST = "mg1"
GUEST_MIB = 256
MIB = 1024 * 1024
MODULE = "qemu_migration_tls_migrate"
PLAYBOOK_DIR = os.path.join(SOURCE_DIR, "playbooks")
PATTERN = "QMT-RAM-PATTERN!"


def uri(lab, host):
    return f"qemu+tcp://{lab.fqdn(host)}/system"


def run_playbook(lab, name, extra_vars, limit=None, timeout=900):
    """Run playbooks/NAME on the lab; returns (CompletedProcess, json)."""
    command = ["ansible-playbook", os.path.join(PLAYBOOK_DIR, name),
               "-e", json.dumps(extra_vars)]
    if limit:
        command += ["--limit", limit]
    env = lab._ansible_env()
    env["ANSIBLE_ROLES_PATH"] = os.path.join(SOURCE_DIR, "roles")
    completed = lab.run(*command, check=False, timeout=timeout, env=env)
    try:
        document = json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise LabCommandError(
            f"{shlex.join(command)} printed no JSON ({error})\n"
            f"--- stdout\n{completed.stdout}\n"
            f"--- stderr\n{completed.stderr}") from error
    return completed, document


def failed_tasks(document):
    """The messages of every failed task in a json callback document."""
    failures = []
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed"):
                    failures.append(f"{task['task']['name']} on {host}: "
                                    f"{result.get('msg')}")
    return failures


class Enrolment:
    """Runs the product's host deployment with a chosen CA."""

    def __init__(self, lab, ca_dir):
        self.lab = lab
        self.ca_dir = ca_dir
        self.restart = f"{lab.lab_dir}/bin/lab-libvirtd restart"

    def deploy(self, limit=None, ca_dir=None, **variables):
        extra = {"qemu_migration_tls_ca_dir": ca_dir or self.ca_dir,
                 "qemu_migration_tls_restart_command": self.restart}
        extra.update(variables)
        completed, document = run_playbook(self.lab, "host-deploy.yml", extra,
                                           limit=limit)
        assert completed.returncode == 0, (
            "host-deploy.yml failed: " + "; ".join(failed_tasks(document))
            + "\n" + completed.stderr)


def domain_state(lab, host):
    """The guest's state on HOST in virsh's words, or "absent"."""
    completed = lab.exec(host, "virsh", "-q", "-c", "qemu:///system",
                         "domstate", GUEST, check=False)
    if completed.returncode != 0:
        return "absent"
    return completed.stdout.strip()


def assert_nothing_left(lab, host):
    """No running or paused copy of the guest on HOST."""
    assert domain_state(lab, host) in ("absent", "shut off")


def assert_failed_on_source(lab, result, cause):
    """A failed migration: CAUSE in msg, guest still running on h1."""
    assert result["failed"] is True, result["msg"]
    assert result["changed"] is False
    assert cause in result["msg"]
    assert result["source_state"] == "running"
    assert domain_state(lab, "h1") == "running"
    assert_nothing_left(lab, "h2")
    lab.guest_check("h1", GUEST)


@pytest.fixture(scope="module")
def enrolled(lab, tmp_path_factory):
    """Both hosts enrolled with one QEMU CA and the guest running on h1."""
    ca_dir = str(tmp_path_factory.mktemp("qemu-ca") / "ca")
    enrolment = Enrolment(lab, ca_dir)
    enrolment.deploy()
    lab.guest("h1", GUEST, GUEST_MIB)
    yield enrolment
    for host in lab.hosts:
        lab.exec(host, "virsh", "-q", "-c", "qemu:///system", "destroy", GUEST,
                 check=False)
        lab.exec(host, "virsh", "-q", "-c", "qemu:///system", "undefine",
                 GUEST, check=False)


def migrate(lab, source, destination, check_mode=False, **options):
    args = {"domain": GUEST, "destination_uri": uri(lab, destination)}
    args.update(options)
    return lab.module(source, MODULE, args, check_mode=check_mode, timeout=600)


def test_encrypted_round_trip(lab, enrolled):
    result = migrate(lab, "h1", "h2", encrypted=True,
                     tls_destination=lab.fqdn("h2"))
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] is True
    assert result["encrypted"] is True
    assert result["encryption_reason"] == "encrypted is true"
    assert result["tls_name"] == "h2.lab.test"
    assert result["tls_name_source"] == "tls_destination"
    assert result["destination_state"] == "running"
    assert result["source_state"] == "shut off"
    assert result["bytes_transferred"] > 200 * MIB
    assert result["duration_seconds"] > 0
    assert result["throughput_mib_s"] > 0
    assert result["downtime_ms"] is not None
    lab.guest_check("h2", GUEST)

    # Back over the migration address; its host is the name checked.
    result = migrate(lab, "h2", "h1", encrypted=True,
                     migration_address=f"tcp://{lab.fqdn('h1')}")
    assert result.get("failed") is not True, result["msg"]
    assert result["tls_name"] == "h1.lab.test"
    assert result["tls_name_source"] == "migration_address"
    assert result["destination_state"] == "running"
    assert result["source_state"] == "absent"
    lab.guest_check("h1", GUEST)


def test_capture_proves_encryption(lab, enrolled):
    result = migrate(lab, "h1", "h2", encrypted=True,
                     tls_destination=lab.fqdn("h2"), capture=True)
    assert result.get("failed") is not True, result["msg"]
    wire = result["wire"]
    assert wire["verdict"] == "encrypted"
    assert wire["tls_handshake"] is True
    assert wire["magic_seen"] is False
    assert wire["pattern_seen"] is False
    assert wire["bytes_captured"] > 200 * MIB
    assert wire["file"] is None

    # The same check detects the plaintext, so it can tell the two apart.
    result = migrate(lab, "h2", "h1", encrypted=False, capture=True)
    assert result.get("failed") is not True, result["msg"]
    wire = result["wire"]
    assert wire["verdict"] == "plaintext"
    assert wire["tls_handshake"] is False
    assert wire["magic_seen"] is True
    assert wire["pattern_seen"] is True
    assert wire["pattern"] == PATTERN
    # The guest fills all but 2 MiB of its RAM with the 16-byte pattern.
    assert wire["pattern_count"] > (GUEST_MIB - 8) * MIB // 16
    lab.guest_check("h1", GUEST)


def test_compare_reports_both(lab, enrolled):
    result = migrate(lab, "h1", "h2", compare=True,
                     tls_destination=lab.fqdn("h2"),
                     return_tls_destination=lab.fqdn("h1"))
    assert result.get("failed") is not True, result["msg"]
    comparison = result["comparison"]
    assert [run["encrypted"] for run in comparison["runs"]] == [False, True]
    assert [run["from"] for run in comparison["runs"]] == ["h1.lab.test",
                                                           "h2.lab.test"]
    for mode in ("unencrypted", "encrypted"):
        assert comparison[mode]["runs"] == 1
        assert comparison[mode]["duration_seconds"] > 0
        assert comparison[mode]["throughput_mib_s"] > 0
    assert comparison["duration_ratio"] > 0
    assert comparison["throughput_ratio"] > 0
    assert comparison["overhead_percent"] is not None
    assert result["return_uri"] == "qemu+tcp://h1.lab.test/system"
    assert result["source_state"] == "running"
    assert domain_state(lab, "h1") == "running"
    assert_nothing_left(lab, "h2")


def test_low_cluster_level_not_encrypted(lab, enrolled):
    result = migrate(lab, "h1", "h2", check_mode=True, encrypted=True,
                     cluster_level="4.3")
    assert result.get("failed") is not True, result["msg"]
    assert result["encrypted"] is False
    assert result["encryption_reason"] == (
        "encrypted is true; cluster level 4.3 is below 4.4, so encryption "
        "is not offered")
    assert result["warnings"] == [
        "Migration is not encrypted although encrypted requests it: cluster "
        "level 4.3 is below 4.4, the first level that offers encrypted "
        "migration"]
    assert result["msg"].startswith("Would migrate mg1 from h1.lab.test to "
                                    "h2.lab.test unencrypted")
    assert domain_state(lab, "h1") == "running"


def test_ip_without_tls_name(lab, enrolled):
    result = migrate(lab, "h1", "h2", encrypted=True,
                     migration_address=f"tcp://{lab.address('h2')}")
    assert result["tls_name"] == lab.address("h2")
    assert_failed_on_source(
        lab, result, f"Certificate does not match the hostname "
                     f"{lab.address('h2')}")
    assert "Set tls_destination to a name in the destination's certificate" \
        in result["msg"]


def test_destination_cert_without_name(lab, enrolled):
    enrolled.deploy(limit=lab.fqdn("h2"),
                    qemu_migration_tls_hostname="h2-other.lab.test")
    try:
        result = migrate(lab, "h1", "h2", encrypted=True,
                         tls_destination=lab.fqdn("h2"))
        assert_failed_on_source(
            lab, result, "Certificate does not match the hostname h2.lab.test")
    finally:
        enrolled.deploy(limit=lab.fqdn("h2"))


def test_destination_other_ca(lab, enrolled, tmp_path):
    enrolled.deploy(limit=lab.fqdn("h2"), ca_dir=str(tmp_path / "other-ca"))
    try:
        result = migrate(lab, "h1", "h2", encrypted=True,
                         tls_destination=lab.fqdn("h2"))
        assert_failed_on_source(
            lab, result, "The certificate hasn't got a known issuer")
    finally:
        enrolled.deploy(limit=lab.fqdn("h2"))


def test_source_without_client_cert(lab, enrolled):
    folder = "/etc/pki/qemu-migrate"
    lab.sh("h1", f"mkdir -p /root/qmt-saved && "
                 f"mv {folder}/client-cert.pem {folder}/client-key.pem "
                 f"/root/qmt-saved/")
    try:
        result = migrate(lab, "h1", "h2", encrypted=True,
                         tls_destination=lab.fqdn("h2"))
        # The destination's QEMU logs "No certificate was found", which the
        # source cannot read, so the module looks at its own set.
        assert_failed_on_source(
            lab, result, f"The source's certificate folder {folder} has no "
                         f"client-cert.pem and client-key.pem, so a "
                         f"destination that verifies client certificates "
                         f"(migrate_tls_x509_verify = 1) rejects the "
                         f"connection")
    finally:
        lab.sh("h1", f"mv /root/qmt-saved/client-cert.pem "
                     f"/root/qmt-saved/client-key.pem {folder}/ && "
                     f"rmdir /root/qmt-saved")


def test_destination_libvirtd_down(lab, enrolled):
    lab.libvirtd("h2", "stop")
    try:
        result = migrate(lab, "h1", "h2", encrypted=True,
                         tls_destination=lab.fqdn("h2"))
        assert result["failed"] is True
        assert ("unable to connect to server at 'h2.lab.test:16509': "
                "Connection refused") in result["msg"]
        assert result["source_state"] == "running"
        assert result["destination_state"] is None
        assert any("The destination state cannot be read" in warning
                   for warning in result["warnings"])
    finally:
        lab.libvirtd("h2", "start")
    assert_nothing_left(lab, "h2")
    lab.guest_check("h1", GUEST)


def test_timeout_aborts_cleanly(lab, enrolled):
    result = migrate(lab, "h1", "h2", encrypted=True,
                     tls_destination=lab.fqdn("h2"), bandwidth=5, timeout=3)
    assert result["timed_out"] is True
    assert result["duration_seconds"] < 30
    assert_failed_on_source(
        lab, result, "exceeded the timeout of 3 s and was aborted "
                     "(operation aborted: job 'migration out' canceled by "
                     "client)")


def test_playbook_summary(lab, enrolled):
    completed, document = run_playbook(lab, "test-migration.yml", {
        "qemu_migration_tls_test_domain": GUEST,
        "qemu_migration_tls_test_uri": "qemu+tcp://%s/system",
        "qemu_migration_tls_test_compare": True,
    })
    assert completed.returncode == 0, "; ".join(failed_tasks(document))
    summary = None
    for play in document["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == "Summarise the migrations":
                summary = next(iter(task["hosts"].values()))["msg"]
    assert summary is not None
    assert summary[0].split() == ["kind", "from", "to", "result", "seconds",
                                  "MiB/s", "downtime", "ms", "note"]
    rows = [line.split() for line in summary[1:]]
    assert [(row[0], row[1], row[2], row[3]) for row in rows] == [
        ("pair", "h1.lab.test", "h2.lab.test", "ok"),
        ("pair", "h2.lab.test", "h1.lab.test", "ok"),
        ("compare", "h1.lab.test", "h2.lab.test", "ok"),
    ]
    assert domain_state(lab, "h1") == "running"
    assert_nothing_left(lab, "h2")
