"""Fixtures for black-box tests of the module binary and the CLI."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import pkitool  # noqa: E402

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE_DIR = os.path.join(SOURCE_DIR, "module")
BINARY = os.environ.get("QMT_BINARY",
                        os.path.join(SOURCE_DIR, "build", "qemu-migration-tls"))
STOCK_QEMU_CONF = os.path.join(SOURCE_DIR, "tests", "data", "qemu.conf",
                               "debian-stock.conf")


class ModuleRunner:
    """Runs a module the way Ansible does: one argument, a JSON args file."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.count = 0

    def __call__(self, module, args, check=False, diff=False, verbosity=0):
        self.count += 1
        path = self.tmp_path / f"args-{self.count}.json"
        payload = dict(args)
        payload.update({"_ansible_module_name": module,
                        "_ansible_check_mode": check,
                        "_ansible_diff": diff,
                        "_ansible_verbosity": verbosity,
                        "_ansible_no_log": False})
        path.write_text(json.dumps(payload))
        completed = subprocess.run([os.path.join(MODULE_DIR, module), str(path)],
                                   capture_output=True, text=True, timeout=120)
        path.unlink()
        assert completed.stderr == "", completed.stderr
        lines = completed.stdout.strip().splitlines()
        assert len(lines) == 1, "stdout must hold one JSON document"
        return json.loads(lines[0])


@pytest.fixture
def run_module(tmp_path):
    return ModuleRunner(tmp_path)


def run_cli(*arguments, check=True):
    completed = subprocess.run([BINARY, *arguments], capture_output=True,
                               text=True, timeout=120)
    if check:
        assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


class Sandbox:
    """A folder standing in for a host: qemu.conf and a certificate folder."""

    def __init__(self, root):
        self.root = root
        self.conf = root / "qemu.conf"
        shutil.copy(STOCK_QEMU_CONF, self.conf)
        self.cert_dir = root / "pki" / "qemu-migrate"

    def snapshot(self):
        """Every file below root with its bytes' hash, mode and owner."""
        state = {}
        for folder, _, files in os.walk(self.root):
            info = os.lstat(folder)
            state[folder] = ("dir", stat.S_IMODE(info.st_mode), info.st_uid,
                             info.st_gid)
            for name in files:
                path = os.path.join(folder, name)
                info = os.lstat(path)
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                state[path] = (digest, stat.S_IMODE(info.st_mode), info.st_uid,
                               info.st_gid)
        return state


@pytest.fixture
def sandbox(tmp_path):
    root = tmp_path / "host"
    root.mkdir()
    return Sandbox(root)


@pytest.fixture(scope="session")
def host_set():
    return pkitool.HostSet()
