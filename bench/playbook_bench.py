#!/usr/bin/python3
"""Time the playbooks on lab hosts against equivalent stock-module plays.

    flock /tmp/qmt-lab.lock /usr/bin/python3 bench/playbook_bench.py \
        [--reps 3] [--fleet-reps 1]

Brings up an 8-host lab (tests/lab/lab), measures, and removes the lab.
The whole session holds /tmp/qmt-lab.lock, the lock every lab user on this
machine takes. Under `flock` the script finds the locked descriptor it
inherits, and without it the script takes the lock itself.

It measures, with cold SSH connections for every run (each run gets its
own ControlPath folder, so no ControlPersist master carries over):

- playbooks/host-deploy.yml against bench/playbooks/stock-deploy.yml: the
  first run from nothing and the no-change second run, on 2 hosts (serial
  1, the playbook's default) and on 8 hosts at once (serial 8, forks 8),
  and our playbook alone on 1 host and on 8 hosts with the default forks;
- playbooks/check.yml against bench/playbooks/stock-check.yml on 2 and 8
  hosts;
- qemu_migration_tls_info per host: ad hoc through Ansible, and the module
  alone inside a host;
- the module calls of an enrolment replayed alone, to split the wall time
  of an enrolment into our modules, libvirtd restarts and Ansible.

Writes raw samples to bench/results/playbook-bench.json, each Ansible log
to bench/results/playbook-bench-logs/, and the tables to
bench/results/playbook-bench.md.
"""

import argparse
import concurrent.futures
import datetime
import errno
import fcntl
import glob
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
LAB = os.path.join(SOURCE_DIR, "tests", "lab", "lab")
MODULE_DIR = os.path.join(SOURCE_DIR, "module")
BINARY = os.path.join(SOURCE_DIR, "build", "module-bin", "qemu-migration-tls")
RESULTS_DIR = os.path.join(HERE, "results")
LOG_DIR = os.path.join(RESULTS_DIR, "playbook-bench-logs")
LOCK_PATH = "/tmp/qmt-lab.lock"
LAB_DIR = os.environ.get("QMT_LAB_DIR", "/var/tmp/qmt-lab")
HOST_COUNT = 8
CERT_DIR = "/etc/pki/qemu-migrate"
QEMU_CONF = "/etc/libvirt/qemu.conf"
RESTART_COMMAND = f"{LAB_DIR}/bin/lab-libvirtd restart"

# Runs a module inside a lab host and prints its wall time and output, so
# the time of `lab exec` (nsenter, env) stays out of the figure.
TIMER_CODE = """\
import json, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rc": done.returncode,
                  "stdout": done.stdout, "stderr": done.stderr}))
"""

RECAP_LINE = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
    r"failed=(\d+)")
PROFILE_LINE = re.compile(r"^(.*?) -{3,} (\d+\.\d+)s$")


def log(message):
    print(f"playbook_bench: {message}", file=sys.stderr, flush=True)


def acquire_lab_lock():
    """Return a descriptor holding an exclusive flock on LOCK_PATH.

    A descriptor inherited from `flock LOCK_PATH COMMAND` already holds the
    lock, and locking it again succeeds at once; otherwise wait for the lock.
    """
    for entry in glob.glob("/proc/self/fd/*"):
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target != LOCK_PATH:
            continue
        fd = int(os.path.basename(entry))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as error:
            if error.errno != errno.EWOULDBLOCK:
                raise
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for {LOCK_PATH}: another lab session runs")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def run(command, env=None, check=True):
    """Run COMMAND from the source folder; return (seconds, CompletedProcess).

    The CompletedProcess gets `cpu_seconds`: user plus system time of the
    command and the children it waited for, on this machine.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=SOURCE_DIR, env=env, text=True,
                          capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.cpu_seconds = (after.ru_utime - usage.ru_utime +
                        after.ru_stime - usage.ru_stime)
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with exit code {done.returncode}:\n"
            f"{done.stdout}\n{done.stderr}")
    return elapsed, done


def machine_cpu_jiffies():
    """Return (busy, total) jiffies of all CPUs from /proc/stat.

    Lab hosts share this kernel, so the figures cover the controller, every
    host and any other work on the machine.
    """
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


class Lab:
    """Lab session: hosts, inventories and the state each run starts from."""

    def __init__(self, work):
        self.work = work
        self.hosts = [f"h{i}" for i in range(1, HOST_COUNT + 1)]
        self.saved_conf = os.path.join(work, "qemu.conf.orig")
        self.inventories = {}
        self.run_number = 0

    def up(self):
        seconds, _ = run([LAB, "up", str(HOST_COUNT)])
        log(f"lab up {HOST_COUNT} took {seconds:.1f} s")
        # Every host starts with the same qemu.conf apart from its address.
        for host in self.hosts:
            shutil.copy(self.host_path(host, "etc-libvirt", "qemu.conf"),
                        f"{self.saved_conf}.{host}")
        with open(os.path.join(LAB_DIR, "inventory.yml")) as handle:
            inventory = yaml.safe_load(handle)
        all_hosts = inventory["all"]["children"]["hypervisors"]["hosts"]
        for count in (1, 2, HOST_COUNT):
            subset = dict(inventory)
            subset["all"] = dict(inventory["all"])
            names = sorted(all_hosts)[:count]
            subset["all"]["children"] = {
                "hypervisors": {"hosts": {name: all_hosts[name]
                                          for name in names}}}
            path = os.path.join(self.work, f"inventory-{count}.yml")
            with open(path, "w") as handle:
                yaml.safe_dump(subset, handle)
            self.inventories[count] = path
        return seconds

    @staticmethod
    def down():
        run([LAB, "down"], check=False)

    @staticmethod
    def host_path(host, private_dir, *names):
        return os.path.join(LAB_DIR, "hosts", host, private_dir, *names)

    def reset(self, hosts):
        """Return HOSTS to the state `lab up` left and drop both CAs.

        Restores qemu.conf, empties /etc/pki and restarts libvirtd, so the
        next deploy enrols from nothing and libvirtd runs the old qemu.conf.
        """
        for name in ("ca-ours", "ca-stock"):
            shutil.rmtree(os.path.join(self.work, name), ignore_errors=True)
        for host in hosts:
            shutil.copy(f"{self.saved_conf}.{host}",
                        self.host_path(host, "etc-libvirt", "qemu.conf"))
            pki = self.host_path(host, "etc-pki")
            for entry in os.listdir(pki):
                path = os.path.join(pki, entry)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
            list(pool.map(lambda host: run([LAB, "libvirtd", host, "restart"]),
                          hosts))

    def ansible_env(self):
        """Return an environment whose SSH connections start cold."""
        self.run_number += 1
        control_dir = os.path.join(self.work, "cp", str(self.run_number))
        os.makedirs(control_dir)
        env = dict(os.environ)
        env.update({
            "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
            "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
            "PROFILE_TASKS_SORT_ORDER": "none",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        })
        return env, control_dir

    def close_masters(self, control_dir):
        """Stop the ControlPersist masters that a run left behind."""
        for socket_path in glob.glob(os.path.join(control_dir, "*")):
            run([LAB, "run", "ssh", "-o", f"ControlPath={socket_path}", "-O",
                 "exit", "lab-master"], check=False)

    def playbook(self, label, playbook, count, extra, forks=None):
        """Run PLAYBOOK on COUNT hosts; return the sample of that run."""
        env, control_dir = self.ansible_env()
        command = [LAB, "ansible-playbook", "-i", self.inventories[count],
                   playbook]
        for item in extra:
            command += ["-e", item]
        if forks:
            command += ["-f", str(forks)]
        busy_before, total_before = machine_cpu_jiffies()
        seconds, done = run(command, env=env, check=False)
        busy_after, total_after = machine_cpu_jiffies()
        self.close_masters(control_dir)
        log_name = f"{self.run_number:03d}-{label}.log"
        with open(os.path.join(LOG_DIR, log_name), "w") as handle:
            handle.write(" ".join(command) + "\n\n")
            handle.write(done.stdout + done.stderr)
        recap = {}
        tasks = []
        for line in done.stdout.splitlines():
            match = RECAP_LINE.match(line)
            if match:
                recap[match.group(1)] = {
                    "ok": int(match.group(2)), "changed": int(match.group(3)),
                    "unreachable": int(match.group(4)),
                    "failed": int(match.group(5))}
            match = PROFILE_LINE.match(line)
            if match:
                tasks.append([match.group(1).strip(), float(match.group(2))])
        return {"label": label, "seconds": seconds, "rc": done.returncode,
                "controller_cpu_seconds": done.cpu_seconds,
                "machine_busy": (busy_after - busy_before) /
                                max(1, total_after - total_before),
                "recap": recap,
                "tasks": tasks, "log": log_name}

    def exec_timed(self, host, module, args):
        """Run MODULE with ARGS inside HOST; return (seconds, result)."""
        path = self.write_args(module, args)
        _, done = run([LAB, "exec", host, "/usr/bin/python3",
                       os.path.join(self.work, "timer.py"),
                       os.path.join(MODULE_DIR, module), path])
        return self.parse_timed(module, done.stdout)

    def local_timed(self, module, args):
        """Run MODULE with ARGS on the controller; return (seconds, result)."""
        path = self.write_args(module, args)
        _, done = run(["/usr/bin/python3", os.path.join(self.work, "timer.py"),
                       os.path.join(MODULE_DIR, module), path])
        return self.parse_timed(module, done.stdout)

    def write_args(self, module, args):
        path = os.path.join(self.work, f"args-{module}.json")
        payload = dict(args, _ansible_module_name=module,
                       _ansible_check_mode=False, _ansible_diff=False,
                       _ansible_no_log=False, _ansible_verbosity=0)
        with open(path, "w") as handle:
            json.dump(payload, handle)
        return path

    @staticmethod
    def parse_timed(module, stdout):
        timed = json.loads(stdout)
        result = json.loads(timed["stdout"])
        if result.get("failed"):
            raise RuntimeError(f"{module} failed: {result.get('msg')}")
        return timed["seconds"], result


def host_fqdn(host):
    return f"{host}.lab.test"


def host_address(host):
    return f"10.213.7.{10 + int(host[1:])}"


def info_args(host, check_libvirt=True):
    return {"path": QEMU_CONF, "root": "/", "hostname": host_fqdn(host),
            "extra_names": [host_address(host)], "renew_before_days": 30,
            "libvirt_ca_cert": "/etc/pki/CA/cacert.pem",
            "check_libvirt": check_libvirt, "fail_on_error": True}


def replay_enrolment(lab, hosts):
    """Run the role's module calls alone, in the role's order, on HOSTS.

    Starts from reset hosts. Returns the seconds of the CA creation on the
    controller, and per host those of each module call and of the libvirtd
    restart.
    """
    lab.reset(hosts)
    ca_dir = os.path.join(lab.work, "ca-ours")
    ca_seconds, ca = lab.local_timed("qemu_migration_tls_ca", {
        "ca_dir": ca_dir, "subject": "/CN=QEMU Migration CA",
        "key_type": "ec-p256"})
    samples = {"ca_create": ca_seconds, "hosts": {}}
    for host in hosts:
        names = {"hostname": host_fqdn(host),
                 "extra_names": [host_address(host)]}
        common = dict(names, path=QEMU_CONF, root="/", cert_dir=CERT_DIR,
                      renew_before_days=30)
        steps = {}
        steps["cert_csr"], request = lab.exec_timed(
            host, "qemu_migration_tls_cert",
            dict(common, state="csr", ca_cert=ca["ca_certificate"],
                 key_type="rsa3072"))
        steps["ca_sign"], signed = lab.local_timed(
            "qemu_migration_tls_ca",
            dict(names, ca_dir=ca_dir, csr=request["csr"],
                 cert_validity_days=398))
        steps["cert_install"], _ = lab.exec_timed(
            host, "qemu_migration_tls_cert",
            dict(common, ca_cert=ca["ca_certificate"],
                 cert=signed["certificate"]))
        steps["config"], _ = lab.exec_timed(
            host, "qemu_migration_tls_config",
            {"path": QEMU_CONF, "root": "/", "cert_dir": CERT_DIR,
             "verify_peer": True, "backup": False})
        steps["restart"] = restart_seconds(lab, host)
        steps["info"], _ = lab.exec_timed(host, "qemu_migration_tls_info",
                                          info_args(host))
        samples["hosts"][host] = steps
    return samples


def restart_seconds(lab, host):
    """Return the seconds of the lab's libvirtd restart inside HOST."""
    _, done = run([LAB, "exec", host, "/usr/bin/python3",
                   os.path.join(lab.work, "timer.py"), "/bin/sh", "-c",
                   RESTART_COMMAND])
    return json.loads(done.stdout)["seconds"]


def expect(sample, changed):
    """Fail unless the run succeeded and changed (or did not change) hosts."""
    if sample["rc"] != 0:
        raise RuntimeError(f"{sample['label']} failed with exit code"
                           f" {sample['rc']};"
                           f" see {os.path.join(LOG_DIR, sample['log'])}")
    for host, counts in sample["recap"].items():
        if host == "localhost":
            continue
        if changed is not None and (counts["changed"] > 0) != changed:
            raise RuntimeError(
                f"{sample['label']}: {host} changed={counts['changed']},"
                f" expected {'some' if changed else 'none'}; see"
                f" {os.path.join(LOG_DIR, sample['log'])}")


def machine_facts():
    def first_line(command):
        try:
            return subprocess.run(command, capture_output=True, text=True,
                                  check=True).stdout.splitlines()[0]
        except (OSError, subprocess.CalledProcessError, IndexError):
            return "unknown"

    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    with open("/proc/cpuinfo") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle
                  if line.startswith("model name")]
    return {
        "nproc": os.cpu_count(),
        "cpu": models[0] if models else platform.machine(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "libvirt": first_line(["libvirtd", "--version"]),
        "qemu": first_line(["qemu-system-x86_64", "--version"]),
        "ansible_core": first_line(["ansible", "--version"]),
        "community_crypto": first_line(
            ["sh", "-c", "ansible-galaxy collection list community.crypto"
             " 2>/dev/null | awk '$1==\"community.crypto\"{print $2}'"]),
        "commit": first_line(["git", "-C", SOURCE_DIR, "rev-parse",
                              "--short", "HEAD"]),
        "uncommitted": first_line(
            ["sh", "-c", f"cd {SOURCE_DIR} && git status --porcelain --"
             " roles playbooks src bench/playbooks | wc -l"]),
        "binary_built": datetime.datetime.fromtimestamp(
            os.stat(BINARY).st_mtime, datetime.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "date": datetime.datetime.now(datetime.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
    }


def deploy_runs(lab, samples, key, count, serial, forks,
                sides=("stock", "ours"), second=True):
    """Measure the deploy plays of SIDES in one setting.

    Each side's first run starts from reset hosts, and a no-change second
    run follows when SECOND is true. List "ours" last, so the hosts end
    with our role's set for the drift checks.
    """
    plays = {
        "stock": ("bench/playbooks/stock-deploy.yml",
                  ["@" + os.path.join(lab.work, "stock-vars.json"),
                   f"stock_serial={serial}"]),
        "ours": ("playbooks/host-deploy.yml",
                 ["@" + os.path.join(lab.work, "ours-vars.json"),
                  f"qemu_migration_tls_serial={serial}"]),
    }
    for side in sides:
        playbook, extra = plays[side]
        lab.reset(lab.hosts[:count])
        first = lab.playbook(f"{key}-{side}-first", playbook, count, extra,
                             forks)
        expect(first, changed=True)
        samples.setdefault(f"{key}/{side}/first", []).append(first)
        message = f"{key} {side}: first {first['seconds']:.1f} s"
        if second:
            again = lab.playbook(f"{key}-{side}-second", playbook, count,
                                 extra, forks)
            expect(again, changed=False)
            samples.setdefault(f"{key}/{side}/second", []).append(again)
            message += f", second {again['seconds']:.1f} s"
        log(message)


def check_runs(lab, samples, key, count, forks, sides=("ours", "stock")):
    """Measure the drift checks of SIDES on the first COUNT hosts.

    The hosts hold a set that our role deployed. The stock check reads the
    same five files and qemu.conf keys, so neither check finds drift.
    """
    plays = {"ours": "playbooks/check.yml",
             "stock": "bench/playbooks/stock-check.yml"}
    for side in sides:
        sample = lab.playbook(f"{key}-{side}", plays[side], count, [], forks)
        expect(sample, changed=None)
        samples.setdefault(f"{key}/{side}", []).append(sample)
        log(f"{key} {side}: {sample['seconds']:.1f} s")


def adhoc_info(lab, samples, count, forks):
    env, control_dir = lab.ansible_env()
    command = [LAB, "ansible", "-i", lab.inventories[count], "hypervisors",
               "-m", "qemu_migration_tls_info", "-a",
               "hostname={{ inventory_hostname }} "
               "extra_names={{ ansible_host }}", "-f", str(forks)]
    seconds, done = run(command, env=env, check=False)
    lab.close_masters(control_dir)
    if done.returncode != 0:
        raise RuntimeError(f"ad hoc info failed:\n{done.stdout}{done.stderr}")
    samples.setdefault(f"info-adhoc-{count}", []).append(seconds)


def measure(lab, reps, fleet_reps):
    samples = {}
    with open(os.path.join(lab.work, "ours-vars.json"), "w") as handle:
        json.dump({"qemu_migration_tls_ca_dir":
                       os.path.join(lab.work, "ca-ours"),
                   "qemu_migration_tls_restart_command": RESTART_COMMAND,
                   "qemu_migration_tls_destination_uri_format":
                       "qemu+tcp://%s/system",
                   "qemu_migration_tls_extra_names": ["{{ ansible_host }}"]},
                  handle)
    with open(os.path.join(lab.work, "stock-vars.json"), "w") as handle:
        json.dump({"stock_ca_dir": os.path.join(lab.work, "ca-stock"),
                   "stock_restart_command": RESTART_COMMAND}, handle)
    with open(os.path.join(lab.work, "timer.py"), "w") as handle:
        handle.write(TIMER_CODE)

    # One repetition of the 8-host runs took 6 to 9 minutes on a 2-core
    # machine, so they repeat FLEET_REPS times after the first small
    # repetition, and the runs on 1 and 2 hosts repeat REPS times.
    for rep in range(reps):
        log(f"repetition {rep + 1} of {reps} on 1 and 2 hosts")
        deploy_runs(lab, samples, "deploy-1h-s1-f5", 1, 1, None,
                    sides=("ours",), second=False)
        deploy_runs(lab, samples, "deploy-2h-s1-f5", 2, 1, None)
        check_runs(lab, samples, "check-2h-f5", 2, None)
        adhoc_info(lab, samples, 1, 5)
        for check_libvirt in (True, False):
            key = f"info-alone-libvirt-{'on' if check_libvirt else 'off'}"
            for _ in range(5):
                seconds, _ = lab.exec_timed("h1", "qemu_migration_tls_info",
                                            info_args("h1", check_libvirt))
                samples.setdefault(key, []).append(seconds)
        samples.setdefault("restart", []).append(restart_seconds(lab, "h1"))
        if rep > 0:
            continue
        for fleet_rep in range(fleet_reps):
            log(f"repetition {fleet_rep + 1} of {fleet_reps} on 8 hosts")
            samples.setdefault("replay", []).append(
                replay_enrolment(lab, lab.hosts))
            deploy_runs(lab, samples, "deploy-8h-s8-f5", 8, 8, None,
                        sides=("ours",), second=False)
            deploy_runs(lab, samples, "deploy-8h-s8-f8", 8, 8, 8)
            check_runs(lab, samples, "check-8h-f5", 8, None)
            check_runs(lab, samples, "check-8h-f8", 8, 8, sides=("ours",))
            for _ in range(3):
                adhoc_info(lab, samples, 8, 8)
    return samples


# Role task names (profile_tasks prefixes "qemu_migration_tls : ") and the
# replayed module call each one runs.
ROLE_TASKS = (
    ("Create the QEMU CA when it is missing", "ca_create"),
    ("Request a certificate", "cert_csr"),
    ("Sign the request with the QEMU CA", "ca_sign"),
    ("Install the signed certificate", "cert_install"),
    ("Set the migration TLS keys in qemu.conf", "config"),
    ("Restart libvirtd", "restart"),
    ("Check qemu.conf, the certificate set and libvirt", "info"),
)
MODULE_STEPS = ("cert_csr", "ca_sign", "cert_install", "config", "info")


def median(values):
    return statistics.median(values) if values else float("nan")


def spread(values):
    """Format the median with the minimum and maximum of VALUES."""
    if not values:
        return "n/a"
    digits = 3 if median(values) < 1 else 2
    return (f"{median(values):.{digits}f}"
            f" ({min(values):.{digits}f}-{max(values):.{digits}f})")


def seconds_of(samples, key):
    return [sample["seconds"] for sample in samples.get(key, [])]


def task_seconds(samples, key, task):
    """Return the per-run duration of the role task named TASK."""
    values = []
    for sample in samples.get(key, []):
        values.append(sum(seconds for name, seconds in sample["tasks"]
                          if task in name))
    return values


def replay_host_seconds(samples, step):
    return [hosts[step] for replay in samples["replay"]
            for hosts in replay["hosts"].values()]


def replay_fleet_seconds(samples, steps, count):
    """Return, per repetition, the sum of STEPS over the first COUNT hosts."""
    values = []
    for replay in samples["replay"]:
        hosts = sorted(replay["hosts"], key=lambda name: int(name[1:]))[:count]
        total = sum(replay["hosts"][host][step] for host in hosts
                    for step in steps)
        values.append(total)
    return values


def cpu_cell(samples, key):
    """Format median controller CPU seconds and machine busy share of KEY."""
    runs = samples.get(key, [])
    if not runs:
        return "-"
    cpu = median([sample["controller_cpu_seconds"] for sample in runs])
    busy = median([sample["machine_busy"] for sample in runs])
    return f"{cpu:.1f} s, {busy:.0%}"


def render(report):
    """Return the Markdown tables of REPORT."""
    samples = report["samples"]
    machine = report["machine"]
    lines = [
        f"Run {machine['date']} at commit {machine['commit']}"
        f" ({machine['uncommitted']} uncommitted files under roles, playbooks,"
        f" src and bench/playbooks; module binary built"
        f" {machine['binary_built']}) with `{report['command']}`."
        f" Runs on 1 and 2 hosts repeat {report['reps']} times, runs on 8"
        f" hosts {report['fleet_reps']} time(s); cells show the median in"
        " seconds and (minimum-maximum). Machine:"
        f" {machine['nproc']} CPUs ({machine['cpu']}),"
        f" {machine['memory_gib']} GiB, Linux {machine['kernel']},"
        f" {machine['libvirt']}, {machine['qemu']}, {machine['ansible_core']},"
        f" community.crypto {machine['community_crypto']}. Whole run:"
        f" {report['total_seconds'] / 60:.1f} min, with `lab up"
        f" {HOST_COUNT}` taking {report['lab_up_seconds']:.1f} s.",
        "",
        "CPU columns: user plus system CPU time of ansible-playbook and its"
        " children on the controller, and the share of the whole machine"
        " (both cores, all lab hosts, and anything else running) that was"
        " busy during the run.",
        "",
        "#### Deploy: playbooks/host-deploy.yml against stock-deploy.yml",
        "",
        "| Hosts | serial | forks | Run | Ours (s) | Stock (s) | Ours / stock"
        " | CPU ours | CPU stock |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    settings = (("1h-s1-f5", 1, 1, 5), ("2h-s1-f5", 2, 1, 5),
                ("8h-s8-f5", 8, 8, 5), ("8h-s8-f8", 8, 8, 8))
    for name, count, serial, forks in settings:
        for run_name in ("first", "second"):
            ours_key = f"deploy-{name}/ours/{run_name}"
            stock_key = f"deploy-{name}/stock/{run_name}"
            ours = seconds_of(samples, ours_key)
            stock = seconds_of(samples, stock_key)
            if not ours:
                continue
            ratio = f"{median(ours) / median(stock):.2f}" if stock else "-"
            lines.append(
                f"| {count} | {serial} | {forks} | {run_name} |"
                f" {spread(ours)} | {spread(stock) if stock else '-'} |"
                f" {ratio} | {cpu_cell(samples, ours_key)} |"
                f" {cpu_cell(samples, stock_key)} |")
    lines += [
        "",
        "#### Drift check: playbooks/check.yml against stock-check.yml",
        "",
        "| Hosts | forks | Ours (s) | Stock (s) | Ours / stock | CPU ours |"
        " CPU stock |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, count, forks in (("2h-f5", 2, 5), ("8h-f5", 8, 5),
                               ("8h-f8", 8, 8)):
        ours = seconds_of(samples, f"check-{name}/ours")
        stock = seconds_of(samples, f"check-{name}/stock")
        ratio = f"{median(ours) / median(stock):.2f}" if stock else "-"
        lines.append(
            f"| {count} | {forks} | {spread(ours)} |"
            f" {spread(stock) if stock else '-'} | {ratio} |"
            f" {cpu_cell(samples, f'check-{name}/ours')} |"
            f" {cpu_cell(samples, f'check-{name}/stock')} |")

    adhoc_1 = samples["info-adhoc-1"]
    adhoc_8 = samples["info-adhoc-8"]
    lines += [
        "",
        "#### qemu_migration_tls_info per host",
        "",
        "| How | Seconds | Per host (s) |",
        "| --- | --- | --- |",
        f"| `lab ansible` ad hoc, 1 host | {spread(adhoc_1)} |"
        f" {median(adhoc_1):.2f} |",
        f"| `lab ansible` ad hoc, 8 hosts, -f 8 | {spread(adhoc_8)} |"
        f" {median(adhoc_8) / 8:.2f} |",
        "| Module alone inside h1, libvirt checks on |"
        f" {spread(samples['info-alone-libvirt-on'])} |"
        f" {median(samples['info-alone-libvirt-on']):.3f} |",
        "| Module alone inside h1, check_libvirt=false |"
        f" {spread(samples['info-alone-libvirt-off'])} |"
        f" {median(samples['info-alone-libvirt-off']):.3f} |",
        "",
        "#### Enrolment of one host, per task",
        "",
        "Task times from ansible.posix.profile_tasks in the first run of"
        " host-deploy.yml on one host, against the same module call run"
        " alone (inside the host, or on the controller for the CA) with the"
        " arguments the role passes.",
        "",
        "| Task | In the playbook (s) | Our module alone (s) |"
        " Ansible overhead (s) |",
        "| --- | --- | --- | --- |",
    ]
    ca_create = [replay["ca_create"] for replay in samples["replay"]]
    first_key = "deploy-1h-s1-f5/ours/first"
    module_total = tasks_total = 0.0
    for task, _ in samples[first_key][0]["tasks"]:
        in_playbook = median(task_seconds(samples, first_key, task))
        tasks_total += in_playbook
        step = next((step for name, step in ROLE_TASKS if name in task), None)
        if step is None or step == "restart":
            # Not one of our modules: the whole task is Ansible's, or the
            # lab's restart command run through ansible.builtin.command.
            lines.append(f"| {task} | {in_playbook:.2f} | - | - |")
            continue
        alone = median(ca_create if step == "ca_create"
                       else replay_host_seconds(samples, step))
        module_total += alone
        lines.append(f"| {task} | {in_playbook:.2f} | {alone:.3f} |"
                     f" {in_playbook - alone:.2f} |")
    wall_1 = median(seconds_of(samples, first_key))
    lines.append(f"| Sum of the tasks (wall time {wall_1:.2f}) |"
                 f" {tasks_total:.2f} | {module_total:.3f} | |")

    restart = median(replay_host_seconds(samples, "restart"))
    lines += [
        "",
        "#### Enrolment: where the time goes",
        "",
        "Our modules: the module calls of the role replayed alone (CA"
        " creation once, then request, signing, install, qemu.conf and"
        " readiness check for each host), summed over the hosts. Restart:"
        " the lab's libvirtd restart command run alone. The rest of the"
        " wall time is Ansible: SSH, module transfer, task and handler"
        " machinery, and the tasks that run no module of ours.",
        "",
        "| Enrolment | Wall (s) | Our modules (s) | libvirtd restarts (s) |"
        " Rest (s) | Our modules / wall |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| 1 host | {wall_1:.2f} | {module_total:.3f} | {restart:.2f} |"
        f" {wall_1 - module_total - restart:.2f} |"
        f" {module_total / wall_1:.1%} |",
    ]
    modules_8 = median(ca_create) + median(
        replay_fleet_seconds(samples, MODULE_STEPS, HOST_COUNT))
    restarts_8 = median(replay_fleet_seconds(samples, ("restart",),
                                             HOST_COUNT))
    for name, forks in (("8h-s8-f5", 5), ("8h-s8-f8", 8)):
        wall = median(seconds_of(samples, f"deploy-{name}/ours/first"))
        lines.append(
            f"| 8 hosts at once, forks {forks} | {wall:.2f} |"
            f" {modules_8:.3f} | {restarts_8:.2f} |"
            f" {wall - modules_8 - restarts_8:.2f} |"
            f" {modules_8 / wall:.1%} |")
    lines += [
        "",
        "A libvirtd restart inside a host took"
        f" {spread(samples['restart'])} s when run alone.",
        "",
    ]
    return "\n".join(lines)

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3,
                        help="repetitions of the 1- and 2-host runs"
                        " (default 3)")
    parser.add_argument("--fleet-reps", type=int, default=1,
                        help="repetitions of the 8-host runs (default 1)")
    options = parser.parse_args()
    if not os.path.exists(BINARY):
        sys.exit("playbook_bench: build/module-bin/qemu-migration-tls is"
                 " missing; run ./scripts/build first")

    lock_fd = acquire_lab_lock()
    os.makedirs(LOG_DIR, exist_ok=True)
    for old in glob.glob(os.path.join(LOG_DIR, "*.log")):
        os.unlink(old)
    work = tempfile.mkdtemp(prefix="qmt-playbook-bench-", dir="/var/tmp")
    lab = Lab(work)
    started = time.perf_counter()
    report = {"machine": machine_facts(), "reps": options.reps,
              "fleet_reps": options.fleet_reps,
              "command": "flock /tmp/qmt-lab.lock /usr/bin/python3"
                         f" bench/playbook_bench.py --reps {options.reps}"
                         f" --fleet-reps {options.fleet_reps}"}
    try:
        report["lab_up_seconds"] = lab.up()
        report["samples"] = measure(lab, options.reps, options.fleet_reps)
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
        os.close(lock_fd)
    report["total_seconds"] = time.perf_counter() - started
    with open(os.path.join(RESULTS_DIR, "playbook-bench.json"), "w") as handle:
        json.dump(report, handle, indent=1)
    table = render(report)
    with open(os.path.join(RESULTS_DIR, "playbook-bench.md"), "w") as handle:
        handle.write(table)
    print(table)
    log(f"done in {report['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
