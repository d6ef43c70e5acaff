"""qemu_migration_tls_info on a sandbox (no libvirt), and the CA module's
four-step run."""

import os

import pkitool

CERT = "qemu_migration_tls_cert"
CONFIG = "qemu_migration_tls_config"
INFO = "qemu_migration_tls_info"
CA = "qemu_migration_tls_ca"


def enrolled(sandbox, host_set, run_module, ca_pem=None):
    run_module(CERT, {"path": str(sandbox.conf),
                      "cert_dir": str(sandbox.cert_dir),
                      "ca_cert": ca_pem or host_set.ca_pem,
                      "cert": host_set.cert_pem, "key": host_set.key_pem,
                      "hostname": host_set.hostname,
                      "extra_names": ["10.213.7.11"], "group": "root"})
    run_module(CONFIG, {"path": str(sandbox.conf),
                        "cert_dir": str(sandbox.cert_dir)})


def info(sandbox, host_set, run_module, **extra):
    args = {"path": str(sandbox.conf), "hostname": host_set.hostname,
            "check_libvirt": False}
    args.update(extra)
    return run_module(INFO, args)


def statuses(result):
    return {check["name"]: check["status"] for check in result["checks"]}


def test_info_not_enrolled_reports_failure(sandbox, host_set, run_module):
    result = info(sandbox, host_set, run_module, fail_on_error=False)
    assert "failed" not in result
    assert result["enrolled"] is False
    assert statuses(result)["qemu.conf.cert_dir"] == "failed"


def test_info_fails_task_by_default(sandbox, host_set, run_module):
    result = info(sandbox, host_set, run_module)
    assert result["failed"] is True
    assert "qemu.conf.cert_dir: migrate_tls_x509_cert_dir is not set" in \
        result["msg"]


def test_info_enrolled_reports_days_left(sandbox, host_set, run_module):
    enrolled(sandbox, host_set, run_module)
    result = info(sandbox, host_set, run_module, fail_on_error=False)
    assert result["enrolled"] is True
    assert result["certificate"]["days_left"] in (364, 365)
    found = statuses(result)
    assert found["server-cert.chain"] == "ok"
    assert found["server-cert.hostname"] == "ok"
    assert found["separation.libvirt_ca"] == "ok"


def test_info_same_ca_as_libvirt_fails(sandbox, host_set, run_module):
    enrolled(sandbox, host_set, run_module)
    libvirt_ca = sandbox.root / "libvirt-cacert.pem"
    libvirt_ca.write_text(host_set.ca_pem)
    result = info(sandbox, host_set, run_module,
                  libvirt_ca_cert=str(libvirt_ca), fail_on_error=False)
    same = [c for c in result["checks"] if c["name"] == "separation.same_ca"]
    assert same[0]["status"] == "failed"
    assert same[0]["message"].startswith(
        f"{sandbox.cert_dir}/ca-cert.pem contains libvirt's own CA from "
        f"{libvirt_ca}; QEMU certificates must come from a CA used for QEMU "
        "only")


def test_info_leaf_verifying_against_libvirt_ca_fails(sandbox, host_set,
                                                       run_module):
    """The QEMU CA is distinct, but libvirt's CA also signed the host
    certificate: its CA has the QEMU CA's name and key, so the two are
    different certificates that both verify the host certificate."""
    enrolled(sandbox, host_set, run_module)
    _, cross = pkitool.make_ca("Test QEMU CA", key=host_set.ca_key)
    libvirt_ca = sandbox.root / "libvirt-cacert.pem"
    libvirt_ca.write_text(pkitool.cert_pem(cross))
    result = info(sandbox, host_set, run_module,
                  libvirt_ca_cert=str(libvirt_ca), fail_on_error=False)
    found = statuses(result)
    assert found.get("separation.same_ca") is None
    assert found["separation.libvirt_ca"] == "failed"


def test_info_trust_bundle_fails(sandbox, host_set, run_module):
    bundle = host_set.ca_pem + "".join(
        pkitool.cert_pem(pkitool.make_ca(f"Public CA {i}")[1])
        for i in range(4))
    enrolled(sandbox, host_set, run_module, ca_pem=bundle)
    result = info(sandbox, host_set, run_module, fail_on_error=False)
    count = [c for c in result["checks"] if c["name"] == "ca-cert.count"][0]
    assert count["status"] == "failed"
    assert count["message"].startswith(
        f"{sandbox.cert_dir}/ca-cert.pem holds 5 CA certificates; expected "
        "the QEMU CA alone (two while it is rotated)")


def test_ca_four_steps(tmp_path, run_module):
    args = {"ca_dir": str(tmp_path / "ca"), "subject": "/O=Test/CN=QEMU CA",
            "key_type": "rsa3072"}
    first_check = run_module(CA, args, check=True)
    assert first_check["changed"] is True
    assert not (tmp_path / "ca").exists()

    first_apply = run_module(CA, args)
    assert first_apply["changed"] is True
    key_mode = os.stat(tmp_path / "ca" / "ca-key.pem").st_mode & 0o777
    assert key_mode == 0o600
    files = sorted(os.listdir(tmp_path / "ca"))

    second_check = run_module(CA, args, check=True)
    assert second_check["changed"] is False
    second_apply = run_module(CA, args)
    assert second_apply["changed"] is False
    assert sorted(os.listdir(tmp_path / "ca")) == files
    assert second_apply["ca_certificate"] == first_apply["ca_certificate"]
    key_body = (tmp_path / "ca" / "ca-key.pem").read_text().splitlines()[1]
    assert key_body not in str([first_apply, second_apply])


def test_ca_warns_when_certificate_clipped(sandbox, tmp_path, run_module):
    ca_args = {"ca_dir": str(tmp_path / "ca"), "validity_days": 10}
    run_module(CA, ca_args)
    request = run_module(CERT, {"path": str(sandbox.conf),
                                "cert_dir": str(sandbox.cert_dir),
                                "state": "csr", "hostname": "host1.lab.test",
                                "key_type": "ec-p256"})
    signed = run_module(CA, dict(ca_args, csr=request["csr"],
                                 hostname="host1.lab.test"))
    assert signed["changed"] is True
    assert signed["warnings"] == [
        "The certificate for host1.lab.test expires with the CA, before the "
        "requested 398 days; rotate the CA before then"]
