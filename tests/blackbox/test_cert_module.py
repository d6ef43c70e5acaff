"""qemu_migration_tls_cert run as Ansible runs it."""

import os
import stat

CERT = "qemu_migration_tls_cert"
FILES = ["ca-cert.pem", "server-cert.pem", "server-key.pem",
         "client-cert.pem", "client-key.pem"]


def cert_args(sandbox, host_set, **extra):
    args = {"path": str(sandbox.conf), "cert_dir": str(sandbox.cert_dir),
            "ca_cert": host_set.ca_pem, "cert": host_set.cert_pem,
            "key": host_set.key_pem, "hostname": host_set.hostname,
            "extra_names": ["10.213.7.11"], "group": "root"}
    args.update(extra)
    return args


def test_cert_four_steps(sandbox, host_set, run_module):
    args = cert_args(sandbox, host_set)
    before = sandbox.snapshot()

    first_check = run_module(CERT, args, check=True)
    assert first_check["changed"] is True
    assert sandbox.snapshot() == before

    first_apply = run_module(CERT, args)
    assert first_apply["changed"] is True
    assert sorted(os.listdir(sandbox.cert_dir)) == sorted(FILES)

    installed = sandbox.snapshot()
    second_check = run_module(CERT, args, check=True)
    assert second_check["changed"] is False
    assert sandbox.snapshot() == installed

    second_apply = run_module(CERT, args)
    assert second_apply["changed"] is False
    assert sandbox.snapshot() == installed


def test_cert_modes_and_contents(sandbox, host_set, run_module):
    run_module(CERT, cert_args(sandbox, host_set))
    modes = {name: stat.S_IMODE(os.stat(sandbox.cert_dir / name).st_mode)
             for name in FILES}
    assert modes == {"ca-cert.pem": 0o644, "server-cert.pem": 0o644,
                     "server-key.pem": 0o640, "client-cert.pem": 0o644,
                     "client-key.pem": 0o640}
    assert stat.S_IMODE(os.stat(sandbox.cert_dir).st_mode) == 0o755
    assert (sandbox.cert_dir / "client-cert.pem").read_text() == \
        host_set.cert_pem
    assert (sandbox.cert_dir / "server-key.pem").read_text() == \
        host_set.key_pem


def test_cert_mode_drift_repaired(sandbox, host_set, run_module):
    run_module(CERT, cert_args(sandbox, host_set))
    os.chmod(sandbox.cert_dir / "server-key.pem", 0o644)
    check = run_module(CERT, cert_args(sandbox, host_set), check=True)
    assert check["changed"] is True
    assert check["changes"] == ["server-key.pem: mode 0644 -> 0640"]
    run_module(CERT, cert_args(sandbox, host_set))
    assert stat.S_IMODE(
        os.stat(sandbox.cert_dir / "server-key.pem").st_mode) == 0o640


def test_cert_key_never_in_result(sandbox, host_set, run_module):
    body = host_set.key_pem.splitlines()[1]
    for check in (True, False):
        result = run_module(CERT, cert_args(sandbox, host_set), check=check,
                            diff=True, verbosity=4)
        assert body not in str(result)
        assert result["invocation"]["module_args"]["key"] == "********"


def test_cert_diff_masks_keys(sandbox, host_set, run_module):
    result = run_module(CERT, cert_args(sandbox, host_set), check=True,
                        diff=True)
    key_diff = [d for d in result["diff"]
                if d["after_header"].endswith("server-key.pem (after)")]
    assert key_diff[0]["after"] == \
        "******** (private key)\nmode: 0640 owner: 0:0\n"


def test_cert_absent_removes_set(sandbox, host_set, run_module):
    run_module(CERT, cert_args(sandbox, host_set))
    result = run_module(CERT, {"path": str(sandbox.conf),
                               "cert_dir": str(sandbox.cert_dir),
                               "state": "absent"})
    assert result["changed"] is True
    assert not sandbox.cert_dir.exists() or os.listdir(sandbox.cert_dir) == []
    again = run_module(CERT, {"path": str(sandbox.conf),
                              "cert_dir": str(sandbox.cert_dir),
                              "state": "absent"})
    assert again["changed"] is False


def test_cert_files_given_as_paths(sandbox, host_set, run_module, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "ca.pem").write_text(host_set.ca_pem)
    (source / "host.pem").write_text(host_set.cert_pem)
    (source / "host-key.pem").write_text(host_set.key_pem)
    os.chmod(source / "host-key.pem", 0o600)
    result = run_module(CERT, cert_args(
        sandbox, host_set, ca_cert=str(source / "ca.pem"),
        cert=str(source / "host.pem"), key=str(source / "host-key.pem")))
    assert result["changed"] is True
    assert (sandbox.cert_dir / "ca-cert.pem").read_text() == host_set.ca_pem


def test_cert_csr_then_present(sandbox, run_module, tmp_path):
    """The key is made on the host; the CA signs the request; the set is
    installed with the staged key, which never travels."""
    ca_dir = tmp_path / "ca"
    created = run_module("qemu_migration_tls_ca", {"ca_dir": str(ca_dir)})
    assert created["changed"] is True
    request_args = {"path": str(sandbox.conf),
                    "cert_dir": str(sandbox.cert_dir), "state": "csr",
                    "hostname": "host1.lab.test",
                    "ca_cert": created["ca_certificate"]}
    request = run_module(CERT, request_args)
    assert request["changed"] is True
    assert request["enrollment_needed"] is True
    staged = sandbox.cert_dir / ".staging" / "server-key.pem"
    assert stat.S_IMODE(os.stat(staged).st_mode) == 0o600
    staged_key = staged.read_text()

    again = run_module(CERT, request_args)
    assert again["changed"] is False
    assert staged.read_text() == staged_key

    signed = run_module("qemu_migration_tls_ca", {
        "ca_dir": str(ca_dir), "csr": request["csr"],
        "hostname": "host1.lab.test"})
    assert signed["changed"] is True
    installed = run_module(CERT, {"path": str(sandbox.conf),
                                  "cert_dir": str(sandbox.cert_dir),
                                  "ca_cert": signed["ca_certificate"],
                                  "cert": signed["certificate"],
                                  "hostname": "host1.lab.test",
                                  "group": "root"})
    assert installed["changed"] is True
    assert (sandbox.cert_dir / "server-key.pem").read_text() == staged_key
    assert not staged.exists()
    assert staged_key.splitlines()[1] not in str(request) + str(installed)

    done = run_module(CERT, request_args)
    assert done["changed"] is False
    assert done["enrollment_needed"] is False
    assert done["csr"] is None
