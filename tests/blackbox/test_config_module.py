"""qemu_migration_tls_config run as Ansible runs it."""

import json
import os
import subprocess

from conftest import MODULE_DIR

CONFIG = "qemu_migration_tls_config"


def config_args(sandbox, **extra):
    args = {"path": str(sandbox.conf), "cert_dir": "/etc/pki/qemu-migrate",
            "check_cert_dir": False}
    args.update(extra)
    return args


def active_lines(path):
    return [line for line in path.read_text().splitlines()
            if line.startswith("migrate_tls")]


def test_config_four_steps(sandbox, run_module):
    args = config_args(sandbox)
    before = sandbox.snapshot()

    first_check = run_module(CONFIG, args, check=True, diff=True)
    assert first_check["changed"] is True
    assert sandbox.snapshot() == before
    assert "+migrate_tls_x509_cert_dir = \"/etc/pki/qemu-migrate\"" not in str(
        first_check)  # the diff is before/after text, not a patch
    assert 'migrate_tls_x509_cert_dir = "/etc/pki/qemu-migrate"' in \
        first_check["diff"][0]["after"]

    first_apply = run_module(CONFIG, args)
    assert first_apply["changed"] is True
    assert active_lines(sandbox.conf) == [
        'migrate_tls_x509_cert_dir = "/etc/pki/qemu-migrate"',
        "migrate_tls_x509_verify = 1"]

    after_apply = sandbox.snapshot()
    second_check = run_module(CONFIG, args, check=True)
    assert second_check["changed"] is False
    assert sandbox.snapshot() == after_apply

    second_apply = run_module(CONFIG, args)
    assert second_apply["changed"] is False
    assert sandbox.snapshot() == after_apply


def test_config_keeps_other_lines(sandbox, run_module):
    original = sandbox.conf.read_text().splitlines()
    run_module(CONFIG, config_args(sandbox))
    updated = sandbox.conf.read_text().splitlines()
    assert updated[:len(original)] == original
    assert len(updated) == len(original) + 2


def test_config_trailing_slash_no_change(sandbox, run_module):
    run_module(CONFIG, config_args(sandbox))
    result = run_module(CONFIG, config_args(sandbox,
                                            cert_dir="/etc/pki/./qemu-migrate/"))
    assert result["changed"] is False


def test_config_duplicates_first_updated(sandbox, run_module):
    sandbox.conf.write_text(
        "# head\n"
        'migrate_tls_x509_cert_dir = "/old/one"\n'
        "vnc_listen = \"0.0.0.0\"\n"
        'migrate_tls_x509_cert_dir = "/old/two"\n'
        "migrate_tls_x509_verify = 0\n"
        "migrate_tls_x509_verify = 1\n")
    result = run_module(CONFIG, config_args(sandbox))
    assert result["changed"] is True
    assert sandbox.conf.read_text() == (
        "# head\n"
        'migrate_tls_x509_cert_dir = "/etc/pki/qemu-migrate"\n'
        "vnc_listen = \"0.0.0.0\"\n"
        "migrate_tls_x509_verify = 1\n")
    assert run_module(CONFIG, config_args(sandbox))["changed"] is False


def test_config_force_tls_written_bare(sandbox, run_module):
    run_module(CONFIG, config_args(sandbox, force_tls=True, verify_peer="no"))
    assert active_lines(sandbox.conf) == [
        'migrate_tls_x509_cert_dir = "/etc/pki/qemu-migrate"',
        "migrate_tls_x509_verify = 0",
        "migrate_tls_force = 1"]


def test_config_absent_removes_keys(sandbox, run_module):
    run_module(CONFIG, config_args(sandbox, force_tls=False))
    stock = open(os.path.join(os.path.dirname(__file__), "..", "data",
                              "qemu.conf", "debian-stock.conf")).read()
    result = run_module(CONFIG, config_args(sandbox, state="absent"))
    assert result["changed"] is True
    assert sandbox.conf.read_text() == stock
    assert run_module(CONFIG, config_args(sandbox, state="absent"))[
        "changed"] is False


def test_config_keeps_mode_and_backs_up(sandbox, run_module):
    os.chmod(sandbox.conf, 0o600)
    original = sandbox.conf.read_text()
    result = run_module(CONFIG, config_args(sandbox, backup=True))
    assert os.stat(sandbox.conf).st_mode & 0o7777 == 0o600
    backup = result["backup_file"]
    assert open(backup).read() == original
    assert os.stat(backup).st_mode & 0o7777 == 0o600


def test_config_missing_cert_dir_rejected(sandbox, run_module):
    args = config_args(sandbox, cert_dir=str(sandbox.root / "missing"))
    del args["check_cert_dir"]
    before = sandbox.snapshot()
    result = run_module(CONFIG, args)
    assert result["failed"] is True
    assert result["msg"] == (
        f"cert_dir {sandbox.root}/missing does not exist; libvirt refuses to "
        "start its QEMU driver when migrate_tls_x509_cert_dir names a missing "
        "folder. Install the certificate set first, or set check_cert_dir "
        "to false")
    assert sandbox.snapshot() == before


def test_config_missing_cert_dir_warns_in_check_mode(sandbox, run_module):
    args = config_args(sandbox, cert_dir=str(sandbox.root / "missing"))
    del args["check_cert_dir"]
    result = run_module(CONFIG, args, check=True)
    assert "failed" not in result
    assert result["changed"] is True
    assert "does not exist" in result["warnings"][0]


def test_config_returns_masked_invocation(sandbox, run_module):
    result = run_module(CONFIG, config_args(sandbox))
    assert result["invocation"]["module_args"]["path"] == str(sandbox.conf)
    assert result["invocation"]["module_args"]["verify_peer"] is True


def test_config_writes_through_symlink(sandbox, run_module):
    target = sandbox.root / "real.conf"
    sandbox.conf.rename(target)
    sandbox.conf.symlink_to(target)
    result = run_module(CONFIG, config_args(sandbox))
    assert result["changed"] is True
    assert sandbox.conf.is_symlink()
    assert active_lines(target)[0] == \
        'migrate_tls_x509_cert_dir = "/etc/pki/qemu-migrate"'


def test_config_accepts_qualified_module_name(sandbox, tmp_path):
    args = dict(config_args(sandbox),
                _ansible_module_name="ansible.legacy." + CONFIG,
                _ansible_check_mode="yes", _ansible_verbosity="3")
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    completed = subprocess.run([os.path.join(MODULE_DIR, CONFIG),
                                str(args_file)], capture_output=True,
                               text=True, timeout=60)
    result = json.loads(completed.stdout)
    assert result["changed"] is True
    assert active_lines(sandbox.conf) == []
