#!/usr/bin/python3
"""Times no-change runs of each module on one sandbox host, the way Ansible
starts them (one JSON args file), and records each run's peak memory.

    /usr/bin/python3 bench/module_noop.py [--runs 30]

Prints one line a module with the median and spread of the wall time and
the peak resident memory (ru_maxrss of the child), and writes the raw
samples to bench/results/module-noop.json.
"""

import argparse
import json
import os
import platform
import resource  # noqa: F401  (used by the child code)
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "blackbox"))

import pkitool  # noqa: E402

MODULE_DIR = os.path.join(SOURCE_DIR, "module")
STOCK = os.path.join(SOURCE_DIR, "tests", "data", "qemu.conf",
                     "debian-stock.conf")


def run_once(module, args, folder):
    path = os.path.join(folder, "args.json")
    payload = dict(args, _ansible_module_name=module)
    with open(path, "w") as handle:
        json.dump(payload, handle)
    completed = subprocess.run([os.path.join(MODULE_DIR, module), path],
                               capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def measure(module, args, runs, folder):
    times, peaks = [], []
    for _ in range(runs):
        # ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so each
        # sample runs under a fresh python child that reports its own child.
        code = ("import json,os,resource,subprocess,sys,time;"
                "t=time.perf_counter();"
                "p=subprocess.run(sys.argv[1:],capture_output=True);"
                "e=time.perf_counter()-t;"
                "print(json.dumps([e,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,p.stdout.decode()]))")
        path = os.path.join(folder, "args.json")
        with open(path, "w") as handle:
            json.dump(dict(args, _ansible_module_name=module), handle)
        out = subprocess.run([sys.executable, "-c", code,
                              os.path.join(MODULE_DIR, module), path],
                             capture_output=True, text=True, check=True)
        elapsed, peak_kib, stdout = json.loads(out.stdout)
        result = json.loads(stdout)
        if result.get("failed") or result.get("changed"):
            raise SystemExit(f"{module}: expected a no-change run: {result.get('msg')}")
        times.append(elapsed)
        peaks.append(peak_kib)
    return times, peaks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    options = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="qmt-bench-")
    try:
        conf = os.path.join(folder, "qemu.conf")
        shutil.copy(STOCK, conf)
        cert_dir = os.path.join(folder, "pki")
        host = pkitool.HostSet(kind="rsa")
        cert_args = {"path": conf, "cert_dir": cert_dir,
                     "ca_cert": host.ca_pem, "cert": host.cert_pem,
                     "key": host.key_pem, "hostname": host.hostname,
                     "extra_names": ["10.213.7.11"], "group": "root"}
        config_args = {"path": conf, "cert_dir": cert_dir}
        info_args = {"path": conf, "hostname": host.hostname,
                     "extra_names": ["10.213.7.11"], "check_libvirt": False,
                     "fail_on_error": False}
        run_once("qemu_migration_tls_cert", cert_args, folder)
        run_once("qemu_migration_tls_config", config_args, folder)

        report = {"machine": {"processor": platform.processor() or
                              platform.machine(),
                              "cpus": os.cpu_count(),
                              "kernel": platform.release()},
                  "runs": options.runs, "modules": {}}
        for module, args in (("qemu_migration_tls_config", config_args),
                             ("qemu_migration_tls_cert", cert_args),
                             ("qemu_migration_tls_info", info_args)):
            times, peaks = measure(module, args, options.runs, folder)
            report["modules"][module] = {"seconds": times, "peak_kib": peaks}
            ordered = sorted(times)
            print(f"{module:28s} median {statistics.median(times) * 1000:6.1f} ms"
                  f"  (p10 {ordered[len(ordered) // 10] * 1000:.1f},"
                  f" p90 {ordered[len(ordered) * 9 // 10] * 1000:.1f})"
                  f"  peak RSS median {statistics.median(peaks) / 1024:.1f} MiB")
        results = os.path.join(HERE, "results")
        os.makedirs(results, exist_ok=True)
        with open(os.path.join(results, "module-noop.json"), "w") as handle:
            json.dump(report, handle, indent=1)
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
