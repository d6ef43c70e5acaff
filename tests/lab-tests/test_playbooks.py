"""The role and playbooks over SSH against lab hosts, as an operator runs
them: host-deploy (enrolment through the QEMU CA), check mode, diff mode,
the drift check, renewal and CA rotation."""

import json
import os

import pytest

from conftest import SOURCE_DIR

PLAYBOOKS = os.path.join(SOURCE_DIR, "playbooks")
CERT_DIR = "/etc/pki/qemu-migrate"
QEMU_CONF = "/etc/libvirt/qemu.conf"


def deploy_vars(lab, ca_dir, **extra):
    values = {"qemu_migration_tls_ca_dir": str(ca_dir),
              "qemu_migration_tls_restart_command":
                  f"{lab.lab_dir}/bin/lab-libvirtd restart",
              "qemu_migration_tls_destination_uri_format":
                  "qemu+tcp://%s/system",
              "qemu_migration_tls_extra_names": ["{{ ansible_host }}"]}
    values.update(extra)
    return values


def changed_by_host(document):
    return {host: stats["changed"] for host, stats in document["stats"].items()
            if host != "localhost"}


def failures(document):
    return {host: stats["failures"] for host, stats in document["stats"].items()}


def host_state(lab, host):
    """Hash, mode and owner of qemu.conf and every file of the set."""
    listing = lab.sh(host, f"find {QEMU_CONF} {CERT_DIR} -exec stat -c '%n %a %U:%G' {{}} + "
                     f"2>/dev/null; find {QEMU_CONF} {CERT_DIR} -type f "
                     "-exec sha256sum {} + 2>/dev/null", check=False)
    return sorted(listing.stdout.splitlines())


def reset_hosts(lab):
    """Take both hosts back to never enrolled."""
    for host in lab.hosts:
        lab.sh(host, "for domain in $(virsh list --all --name); do "
               "virsh destroy $domain; virsh undefine $domain; done",
               check=False)
        lab.sh(host, f"rm -rf {CERT_DIR}; sed -i '/^migrate_tls_/d' {QEMU_CONF}")
        lab.libvirtd(host, "restart")


def play(lab, name, variables, check_mode=False, extra=None):
    completed, document = lab.playbook(os.path.join(PLAYBOOKS, name),
                                       variables, check_mode=check_mode)
    return completed, document


def task_results(document, task_name):
    """Results of the task named TASK_NAME; role tasks are reported as
    "ROLE : NAME"."""
    results = {}
    for each_play in document["plays"]:
        for task in each_play["tasks"]:
            name = task["task"]["name"]
            if name == task_name or name.endswith(" : " + task_name):
                results.update(task["hosts"])
    return results


@pytest.fixture(scope="module")
def fresh_lab(lab):
    reset_hosts(lab)
    return lab


def test_deploy_check_apply_check_apply(fresh_lab, tmp_path):
    lab = fresh_lab
    variables = deploy_vars(lab, tmp_path / "ca")
    before = {host: host_state(lab, host) for host in lab.hosts}

    completed, first_check = play(lab, "host-deploy.yml", variables,
                                  check_mode=True)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert all(count > 0 for count in changed_by_host(first_check).values())
    assert {host: host_state(lab, host) for host in lab.hosts} == before
    assert not (tmp_path / "ca").exists()

    completed, first_apply = play(lab, "host-deploy.yml", variables)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert all(count > 0 for count in changed_by_host(first_apply).values())
    applied = {host: host_state(lab, host) for host in lab.hosts}

    completed, second_check = play(lab, "host-deploy.yml", variables,
                                   check_mode=True)
    assert completed.returncode == 0
    assert set(changed_by_host(second_check).values()) == {0}
    assert {host: host_state(lab, host) for host in lab.hosts} == applied

    completed, second_apply = play(lab, "host-deploy.yml", variables)
    assert completed.returncode == 0
    assert set(changed_by_host(second_apply).values()) == {0}
    assert {host: host_state(lab, host) for host in lab.hosts} == applied

    for host in lab.hosts:
        listing = lab.exec(host, "stat", "-c", "%n %a", f"{CERT_DIR}/server-key.pem",
                           f"{CERT_DIR}/client-key.pem",
                           f"{CERT_DIR}/server-cert.pem").stdout.split("\n")
        assert listing[0].endswith(" 640")
        assert listing[1].endswith(" 640")
        assert listing[2].endswith(" 644")

    # The host keys were made on the hosts, so no output of any run contains
    # them.
    outputs = json.dumps([first_check, first_apply, second_check,
                          second_apply])
    for host in lab.hosts:
        key_body = lab.read_file(host, f"{CERT_DIR}/server-key.pem").splitlines()[1]
        assert key_body not in outputs
    ca_key_body = (tmp_path / "ca" / "ca-key.pem").read_text().splitlines()[1]
    assert ca_key_body not in outputs


def test_deploy_diff_shows_qemu_conf_lines(lab, tmp_path):
    reset_hosts(lab)
    variables = deploy_vars(lab, tmp_path / "ca")
    completed, document = lab.playbook(
        os.path.join(PLAYBOOKS, "host-deploy.yml"), variables)
    assert completed.returncode == 0
    lab.sh("h1", f"sed -i '/^migrate_tls_x509_verify/d' {QEMU_CONF}")
    command = ["ansible-playbook", os.path.join(PLAYBOOKS, "host-deploy.yml"),
               "-e", json.dumps(variables), "--diff", "--check",
               "--limit", "h1.lab.test"]
    completed = lab.run(*command, check=False,
                        env={"ANSIBLE_NOCOLOR": "1",
                             "ANSIBLE_LIBRARY": lab.module_dir})
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "+migrate_tls_x509_verify = 1" in completed.stdout


def test_drift_check_finds_broken_key(lab, tmp_path):
    reset_hosts(lab)
    variables = deploy_vars(lab, tmp_path / "ca")
    completed, _ = play(lab, "host-deploy.yml", variables)
    assert completed.returncode == 0

    completed, healthy = play(lab, "check.yml", {})
    assert completed.returncode == 0, completed.stdout[-3000:]
    table = task_results(healthy, "Show one row a host")["localhost"]["msg"]
    assert [line.split()[1] for line in table[1:]] == ["ok", "ok"]

    lab.exec("h2", "chmod", "0644", f"{CERT_DIR}/server-key.pem")
    before = host_state(lab, "h2")
    completed, broken = play(lab, "check.yml", {})
    assert completed.returncode != 0
    assert host_state(lab, "h2") == before
    table = task_results(broken, "Show one row a host")["localhost"]["msg"]
    rows = "\n".join(table)
    assert "h1.lab.test                  ok" in rows
    assert "h2.lab.test                  drift" in rows
    assert "server-key.pem: mode 0644 -> 0640" in rows


def test_drift_check_never_enrolled_host(lab, tmp_path):
    reset_hosts(lab)
    completed, document = play(lab, "check.yml", {})
    assert completed.returncode != 0
    table = task_results(document, "Show one row a host")["localhost"]["msg"]
    assert "h1.lab.test                  not enrolled  no certificate set installed" in table
    assert failures(document).get("h1.lab.test", 0) == 0


def test_renewal_and_ca_rotation(lab, tmp_path):
    reset_hosts(lab)
    old_ca = tmp_path / "ca-old"
    completed, _ = play(lab, "host-deploy.yml", deploy_vars(lab, old_ca))
    assert completed.returncode == 0
    first_serial = lab.exec("h1", "openssl", "x509", "-noout", "-serial", "-in",
                            f"{CERT_DIR}/server-cert.pem").stdout

    # Nothing is due: the renewal playbook changes nothing.
    completed, quiet = play(lab, "enroll-certificates.yml",
                            deploy_vars(lab, old_ca))
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert set(changed_by_host(quiet).values()) == {0}

    # A renewal window longer than the certificate's life makes every host due.
    completed, renewed = play(lab, "enroll-certificates.yml", deploy_vars(
        lab, old_ca, qemu_migration_tls_renew_before_days=500))
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert all(count > 0 for count in changed_by_host(renewed).values())
    assert lab.exec("h1", "openssl", "x509", "-noout", "-serial", "-in",
                    f"{CERT_DIR}/server-cert.pem").stdout != first_serial

    # Rotation, step one: the new CA signs, both CAs are trusted.
    new_ca = tmp_path / "ca-new"
    old_pem = (old_ca / "ca-cert.pem").read_text()
    completed, rotated = play(lab, "host-deploy.yml", deploy_vars(
        lab, new_ca, qemu_migration_tls_ca_subject="/CN=QEMU Migration CA 2",
        qemu_migration_tls_extra_ca_certs=[old_pem]))
    assert completed.returncode == 0, completed.stdout[-3000:]
    bundle = lab.read_file("h1", f"{CERT_DIR}/ca-cert.pem")
    assert bundle.count("BEGIN CERTIFICATE") == 2
    issuer = lab.exec("h1", "openssl", "x509", "-noout", "-issuer", "-in",
                      f"{CERT_DIR}/server-cert.pem").stdout
    assert "QEMU Migration CA 2" in issuer

    # Step two: only the new CA; hosts keep their certificates.
    completed, finished = play(lab, "host-deploy.yml", deploy_vars(lab, new_ca))
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert lab.read_file("h1", f"{CERT_DIR}/ca-cert.pem").count(
        "BEGIN CERTIFICATE") == 1
    assert lab.exec("h1", "openssl", "x509", "-noout", "-issuer", "-in",
                    f"{CERT_DIR}/server-cert.pem").stdout == issuer
    completed, again = play(lab, "host-deploy.yml", deploy_vars(lab, new_ca))
    assert set(changed_by_host(again).values()) == {0}


def test_maintenance_requires_no_guests(lab, tmp_path):
    reset_hosts(lab)
    variables = deploy_vars(lab, tmp_path / "ca")
    completed, _ = play(lab, "host-deploy.yml", variables)
    assert completed.returncode == 0, completed.stdout[-3000:]
    lab.guest("h1", "maint1", 64)

    completed, refused = play(lab, "host-deploy.yml", variables)
    assert completed.returncode != 0
    message = task_results(refused, "Assert that the host runs no guests")[
        "h1.lab.test"]["msg"]
    assert message.startswith("h1.lab.test runs guests (maint1), so it is "
                              "not in maintenance.")

    # With evacuation the guest leaves h1 encrypted, then leaves h2 when
    # h2's turn comes, and keeps running throughout.
    completed, evacuated = play(lab, "host-deploy.yml", dict(
        variables, qemu_migration_tls_evacuate=True))
    assert completed.returncode == 0, completed.stdout[-3000:]
    moves = task_results(evacuated,
                         "Migrate the guests to the other hosts, encrypted")
    assert moves["h1.lab.test"]["results"][0]["encrypted"] is True
    assert moves["h2.lab.test"]["results"][0]["encrypted"] is True
    lab.guest_check("h1", "maint1")
