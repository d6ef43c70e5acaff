"""A QEMU process started for one test and a minimal QMP client for it."""

import json
import os
import socket
import subprocess
import time

QEMU = "qemu-system-x86_64"


class QmpError(Exception):
    """A QMP command returned an error object."""


class QmpClient:
    """Sends QMP commands over a unix socket and returns their results.

    Asynchronous events are read and dropped, because the tests poll state
    with query commands instead.
    """

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r", encoding="utf-8")
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise QmpError(f"Invalid QMP greeting from {path}: {greeting}")
        self.execute("qmp_capabilities")

    def _read_message(self):
        line = self.reader.readline()
        if not line:
            raise QmpError("QMP socket closed by QEMU")
        return json.loads(line)

    def execute(self, command, **arguments):
        """Run one command and return its "return" value, or raise QmpError."""
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._read_message()
            if "return" in message:
                return message["return"]
            if "error" in message:
                raise QmpError(f"{command} failed: {message['error']['desc']}")

    def close(self):
        self.reader.close()
        self.sock.close()


class QemuProcess:
    """qemu-system-x86_64 with TCG, no default devices, stopped (-S), and QMP.

    stop() kills this process by its pid and signals nothing else.
    """

    def __init__(self, work_dir, name, extra_arguments, start_timeout=10):
        self.name = name
        self.qmp_path = os.path.join(work_dir, f"{name}.qmp")
        self.stderr_path = os.path.join(work_dir, f"{name}.stderr")
        self.qmp = None
        arguments = [QEMU, "-accel", "tcg", "-m", "64", "-nodefaults",
                     "-display", "none", "-S",
                     "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                     *extra_arguments]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(arguments,
                                            stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL,
                                            stderr=stderr)
        try:
            self._connect(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _connect(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"QEMU {self.name} exited with status "
                    f"{self.process.returncode} at start-up: {self.stderr()}")
            if os.path.exists(self.qmp_path):
                try:
                    self.qmp = QmpClient(self.qmp_path, timeout)
                    return
                except ConnectionRefusedError:
                    pass
            time.sleep(0.05)
        raise TimeoutError(
            f"QEMU {self.name} opened no QMP socket at {self.qmp_path} "
            f"within {timeout} s")

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()

    def wait_for_stderr(self, line, timeout):
        """Return True once stderr has the line "qemu-system-x86_64: LINE"."""
        expected = f"{QEMU}: {line}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expected in self.stderr().splitlines():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        """Kill the process by pid and reap it. A second call does nothing."""
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
