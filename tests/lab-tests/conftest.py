"""Session fixtures for tests against the namespace lab (tests/lab/lab).

Only one lab can exist on a machine because its namespace names are fixed,
so run every session under the lab lock, with Debian's Python (it has
python3-cryptography):

    flock /tmp/qmt-lab.lock /usr/bin/python3 -m pytest tests/lab-tests

The `lab` fixture runs `lab up 2` once per session and `lab down` at the
end, also after a failed `up`. It refuses to start when a lab already
exists, and then leaves that lab alone. The modules run from module/NAME,
the links that a build with -DQMT_MODULE_LINKS=ON creates.
"""

import json
import os
import shlex
import subprocess

import pytest

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..",
                                          ".."))
LAB_SCRIPT = os.path.join(SOURCE_DIR, "tests", "lab", "lab")
MODULE_DIR = os.path.join(SOURCE_DIR, "module")
BINARY = os.environ.get("QMT_BINARY",
                        os.path.join(SOURCE_DIR, "build", "qemu-migration-tls"))
LAB_DIR = os.environ.get("QMT_LAB_DIR", "/var/tmp/qmt-lab")
LAB_LOCK = "/tmp/qmt-lab.lock"
HOST_COUNT = 2
DOMAIN = "lab.test"
# Network namespaces a lab creates; any of them means a lab exists.
LAB_NETNS = ["qmt-lab"] + [f"qmt-h{i}" for i in range(1, 9)]
MODULES = ["qemu_migration_tls_ca", "qemu_migration_tls_cert",
           "qemu_migration_tls_config", "qemu_migration_tls_info",
           "qemu_migration_tls_migrate"]


class LabCommandError(AssertionError):
    """A lab command exited non-zero; the message carries its output."""


def _check(completed, command):
    if completed.returncode != 0:
        raise LabCommandError(
            f"{shlex.join(command)} exited with {completed.returncode}\n"
            f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}")
    return completed


class Lab:
    """The running lab: hosts h1..hN, commands inside them, and Ansible."""

    def __init__(self, host_count):
        self.hosts = [f"h{i}" for i in range(1, host_count + 1)]
        self.script = LAB_SCRIPT
        self.binary = BINARY
        self.module_dir = MODULE_DIR
        self.lab_dir = LAB_DIR

    @staticmethod
    def fqdn(host):
        return f"{host}.{DOMAIN}"

    @staticmethod
    def address(host):
        return f"10.213.7.{10 + int(host[1:])}"

    def run(self, *arguments, check=True, timeout=300, input=None, env=None):
        """Run `lab ARGUMENTS...` and return the CompletedProcess."""
        command = [self.script, *arguments]
        full_env = dict(os.environ)
        full_env.update(env or {})
        completed = subprocess.run(command, capture_output=True, text=True,
                                   timeout=timeout, input=input, env=full_env)
        return _check(completed, command) if check else completed

    def exec(self, host, *command, check=True, timeout=300, input=None):
        """Run COMMAND inside HOST's namespaces as root."""
        return self.run("exec", host, *command, check=check, timeout=timeout,
                        input=input)

    def sh(self, host, script, check=True, timeout=300, input=None):
        """Run a /bin/sh script inside HOST."""
        return self.exec(host, "/bin/sh", "-c", script, check=check,
                         timeout=timeout, input=input)

    def read_file(self, host, path):
        """Return the text of PATH inside HOST."""
        return self.exec(host, "cat", path).stdout

    def write_file(self, host, path, text, mode="0644", owner="root:root"):
        """Write TEXT to PATH inside HOST with MODE and OWNER."""
        self.exec(host, "/bin/sh", "-c",
                  'cat >"$1" && chmod "$2" "$1" && chown "$3" "$1"',
                  "write-file", path, mode, owner, input=text)

    def libvirtd(self, host, action, check=True):
        """Start, stop, restart or query HOST's libvirtd."""
        return self.run("libvirtd", host, action, check=check)

    def guest(self, host, name, mib=256):
        """Define and start the test guest and wait until it filled its RAM."""
        return self.run("guest", host, name, str(mib))

    def guest_check(self, host, name, check=True):
        """Check that the guest on HOST still counts and kept its RAM."""
        return self.run("guest-check", host, name, check=check)

    def _ansible_env(self):
        return {"ANSIBLE_LIBRARY": self.module_dir,
                "ANSIBLE_STDOUT_CALLBACK": "json",
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "False"}

    def ansible(self, pattern, module, args=None, check_mode=False,
                timeout=300, extra=()):
        """Run MODULE ad hoc on the hosts matching PATTERN.

        Returns {fqdn: result} as the json callback reports it; a failed
        module is a result with failed: true, not an exception.
        """
        command = ["ansible", pattern, "-m", module, *extra]
        if args:
            command += ["-a", json.dumps(args)]
        if check_mode:
            command.append("--check")
        completed = self.run(*command, check=False, timeout=timeout,
                             env=self._ansible_env())
        return _json_results(completed, command)

    def module(self, host, module, args=None, check_mode=False, timeout=300):
        """Run MODULE on one host through Ansible and return its result."""
        results = self.ansible(self.fqdn(host), module, args,
                               check_mode=check_mode, timeout=timeout)
        return results[self.fqdn(host)]

    def playbook(self, path, extra_vars=None, check_mode=False, timeout=600):
        """Run a playbook and return (CompletedProcess, json callback output)."""
        command = ["ansible-playbook", path]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        if check_mode:
            command.append("--check")
        completed = self.run(*command, check=False, timeout=timeout,
                             env=self._ansible_env())
        try:
            document = json.loads(completed.stdout)
        except json.JSONDecodeError as error:
            raise LabCommandError(
                f"{shlex.join(command)} printed no JSON ({error})\n"
                f"--- stdout\n{completed.stdout}\n"
                f"--- stderr\n{completed.stderr}") from error
        return completed, document


def _json_results(completed, command):
    try:
        document = json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise LabCommandError(
            f"{shlex.join(command)} printed no JSON ({error})\n"
            f"--- stdout\n{completed.stdout}\n"
            f"--- stderr\n{completed.stderr}") from error
    results = {}
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            results.update(task.get("hosts", {}))
    return results


def _existing_lab_parts():
    parts = [f"network namespace {name}" for name in LAB_NETNS
             if os.path.exists(f"/run/netns/{name}")]
    if os.path.exists(LAB_DIR):
        parts.append(f"directory {LAB_DIR}")
    return parts


def _check_module_links():
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"{BINARY} is missing; build it with "
                    "cmake -S . -B build -DQMT_MODULE_LINKS=ON && "
                    "cmake --build build -j2")
    for name in MODULES:
        link = os.path.join(MODULE_DIR, name)
        if not os.access(link, os.X_OK):
            pytest.fail(f"{link} is missing; build with "
                        "-DQMT_MODULE_LINKS=ON to create the module links")


@pytest.fixture(scope="session")
def lab():
    """A lab of HOST_COUNT hosts for the whole session, removed at the end."""
    _check_module_links()
    existing = _existing_lab_parts()
    if existing:
        pytest.fail("A lab already exists (" + ", ".join(existing) + "); "
                    "another session may be using it. Run the tests as "
                    f"flock {LAB_LOCK} /usr/bin/python3 -m pytest ...")
    instance = Lab(HOST_COUNT)
    try:
        instance.run("up", str(HOST_COUNT), timeout=600)
        yield instance
    finally:
        # Also after a failed "up": that partial lab is this session's.
        subprocess.run([LAB_SCRIPT, "down"], capture_output=True, text=True,
                       timeout=300)
