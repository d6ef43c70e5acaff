"""Bad inputs: each fails with a message naming the file, the value and the
cause, and changes no file."""

import json
import os
import re
import subprocess

import pkitool
import pytest

CONFIG = "qemu_migration_tls_config"
CERT = "qemu_migration_tls_cert"
INFO = "qemu_migration_tls_info"
CA = "qemu_migration_tls_ca"

HOST = "host1.lab.test"


class Pki:
    """Certificates for the table, made once."""

    def __init__(self):
        self.ca_key, self.ca = pkitool.make_ca()
        self.key, self.cert = pkitool.make_leaf(self.ca_key, self.ca, [HOST])
        _, other_ca = pkitool.make_ca("Other CA", key=None)
        self.other_ca_key = _
        self.other_ca = other_ca
        _, self.foreign_cert = pkitool.make_leaf(self.other_ca_key,
                                                 self.other_ca, [HOST],
                                                 key=self.key)
        _, self.expired = pkitool.make_leaf(self.ca_key, self.ca, [HOST],
                                            key=self.key, days_before=60,
                                            days_after=-1)
        _, self.future = pkitool.make_leaf(self.ca_key, self.ca, [HOST],
                                           key=self.key, days_before=-2,
                                           days_after=30)
        _, self.wrong_name = pkitool.make_leaf(self.ca_key, self.ca,
                                               ["other.lab.test"], key=self.key)
        self.not_ca_key, self.not_ca = pkitool.make_ca("Not a CA",
                                                       ca_flag=False)
        _, self.from_not_ca = pkitool.make_leaf(self.not_ca_key, self.not_ca,
                                                [HOST], key=self.key)
        _, self.leaf_ca_flag = pkitool.make_leaf(self.ca_key, self.ca, [HOST],
                                                 key=self.key, ca_flag=True)
        _, self.code_signing = pkitool.make_leaf(self.ca_key, self.ca, [HOST],
                                                 key=self.key,
                                                 usages=("code",))
        self.other_key = pkitool.new_key()


@pytest.fixture(scope="module")
def pki():
    return Pki()


def pem(certificate):
    return pkitool.cert_pem(certificate)


def cert_args(sandbox, pki, **extra):
    args = {"path": str(sandbox.conf), "cert_dir": str(sandbox.cert_dir),
            "ca_cert": pem(pki.ca), "cert": pem(pki.cert),
            "key": pkitool.key_pem(pki.key), "hostname": HOST,
            "group": "root"}
    args.update(extra)
    return args


def config_args(sandbox, **extra):
    args = {"path": str(sandbox.conf), "check_cert_dir": False}
    args.update(extra)
    return args


def conf_text(text):
    def prepare(sandbox):
        sandbox.conf.write_bytes(text.encode())
    return prepare


# Each case: id, module, a function preparing the sandbox, a function
# building the arguments, and the expected message with {conf}, {dir} and
# {root} standing for the sandbox's paths.
CASES = [
    ("conf trailing comment", CONFIG,
     conf_text('migrate_tls_x509_cert_dir = "/x" # note\n'),
     lambda s, p: config_args(s),
     "{conf}:1:33: Iterated lens matched less than it should. The "
     "Libvirtd_qemu lens rejects a comment after a value, so move the "
     "comment to its own line."),
    ("conf single quotes", CONFIG,
     conf_text("migrate_tls_x509_cert_dir = '/x'\n"),
     lambda s, p: config_args(s), 
     "{conf}:1:29: Iterated lens matched less than it should. The Libvirtd_qemu lens rejects single quotes, so use double quotes."),
    ("conf crlf line ends", CONFIG,
     conf_text('vnc_listen = "0.0.0.0"\r\nuser = "root"\r\n'),
     lambda s, p: config_args(s), 
     "{conf}:1:23: Iterated lens matched less than it should. The line ends with CR LF, but the Libvirtd_qemu lens accepts LF line ends only."),
    ("conf quoted boolean", CONFIG,
     conf_text('migrate_tls_x509_verify = "1"\n'),
     lambda s, p: config_args(s), 
     "{conf}:1:27: Iterated lens matched less than it should. migrate_tls_x509_verify takes a boolean written bare (0 or 1), not the string \"1\"."),
    ("conf unterminated string", CONFIG,
     conf_text('migrate_tls_x509_cert_dir = "/etc/pki/qemu\n'),
     lambda s, p: config_args(s), 
     "{conf}:2:1: Iterated lens matched less than it should. The string that starts at line 1, column 29 is not closed on its line."),
    ("conf semicolon separator", CONFIG,
     conf_text('user = "root"; group = "root"\n'),
     lambda s, p: config_args(s), 
     "{conf}:1:14: Iterated lens matched less than it should. The Libvirtd_qemu lens rejects ';' between settings, so put each setting on its own line."),
    ("conf missing file", CONFIG, lambda s: s.conf.unlink(),
     lambda s, p: config_args(s),
     "Failed to read {conf}: No such file or directory"),
    ("conf is a folder", CONFIG,
     lambda s: (s.conf.unlink(), s.conf.mkdir()),
     lambda s, p: config_args(s),
     "Failed to read {conf}: it is a folder, not a file"),
    ("conf unknown option", CONFIG, None,
     lambda s, p: config_args(s, cert_dri="/x"), 
     "Unsupported parameters for qemu_migration_tls_config: cert_dri. Supported parameters include: backup, cert_dir, check_cert_dir, force_tls, lens_dir, path, root, state, verify_peer."),
    ("conf mistyped boolean", CONFIG, None,
     lambda s, p: config_args(s, verify_peer="maybe"), 
     "Invalid value for option verify_peer of qemu_migration_tls_config: 'maybe' is not a valid boolean; expected true or false (yes/no, on/off and 1/0 are accepted too)"),
    ("conf state not a choice", CONFIG, None,
     lambda s, p: config_args(s, state="enabled"), 
     "Invalid value for option state of qemu_migration_tls_config: 'enabled' is not one of present, absent"),
    ("conf cert_dir empty folder", CONFIG,
     lambda s: s.cert_dir.mkdir(parents=True),
     lambda s, p: {"path": str(s.conf), "cert_dir": str(s.cert_dir)}, 
     "cert_dir {dir} does not hold a valid certificate set: {dir}/ca-cert.pem is missing: QEMU requires it on both hosts to verify the peer's certificate; expected one or more PEM CA certificates; {dir}/server-cert.pem is missing: QEMU on the destination host requires it to accept an incoming TLS migration; expected a PEM certificate; {dir}/server-key.pem is missing: QEMU on the destination host requires it to accept an incoming TLS migration; expected a PEM private key; {dir}/client-cert.pem is missing: without the client certificate and key the source host presents no certificate, so the destination rejects the source (\"No certificate was found\") while libvirt's migrate_tls_x509_verify is on, which is the default; expected a PEM certificate; {dir}/client-key.pem is missing: without the client certificate and key the source host presents no certificate, so the destination rejects the source (\"No certificate was found\") while libvirt's migrate_tls_x509_verify is on, which is the default; expected a PEM private key. Set check_cert_dir to false to write it anyway"),
    ("cert key does not match", CERT, None,
     lambda s, p: cert_args(s, p, key=pkitool.key_pem(p.other_key)), 
     "The certificate set was not installed: key does not match cert: the key is EC P-256, the certificate's public key is EC P-256 with a different value; expected the private key of that certificate"),
    ("cert from another CA", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.foreign_cert)), 
     "The certificate set was not installed: cert does not chain to ca_cert: unable to get local issuer certificate (issuer CN=Other CA); expected a certificate issued by CN=Test QEMU CA"),
    ("cert expired", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.expired)), 
     re.compile(r"The certificate set was not installed: cert expired on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(1 day ago\); QEMU rejects an expired certificate; expected a certificate valid now and for at least the next 30 days")),
    ("cert not yet valid", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.future)), 
     re.compile(r"The certificate set was not installed: cert is not valid before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 2 days\); QEMU rejects a certificate that is not yet active; expected a certificate valid now and for at least the next 30 days")),
    ("cert without host name", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.wrong_name)), 
     "The certificate set was not installed: cert does not list host name host1.lab.test in subjectAltName (found DNS:other.lab.test); expected DNS:host1.lab.test or a wildcard entry that matches it, because QEMU on the source checks the name it connects to"),
    ("cert extra ip missing", CERT, None,
     lambda s, p: cert_args(s, p, extra_names=["10.213.7.99"]), 
     "The certificate set was not installed: cert does not list IP address 10.213.7.99 in subjectAltName (found DNS:host1.lab.test); expected IP:10.213.7.99, because an IP address matches only IP entries"),
    ("ca without ca flag", CERT, None,
     lambda s, p: cert_args(s, p, ca_cert=pem(p.not_ca),
                            cert=pem(p.from_not_ca)), 
     "The certificate set was not installed: ca_cert has basicConstraints CA:FALSE; expected CA:TRUE, which QEMU requires of every certificate in the CA file; cert does not chain to ca_cert: invalid CA certificate (issuer CN=Not a CA); expected a certificate issued by CN=Not a CA"),
    ("leaf with ca flag", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.leaf_ca_flag)), 
     "The certificate set was not installed: cert has basicConstraints CA:TRUE, and QEMU rejects a CA certificate as its server certificate; expected CA:FALSE or no basicConstraints extension; cert has basicConstraints CA:TRUE, and QEMU rejects a CA certificate as its client certificate; expected CA:FALSE or no basicConstraints extension"),
    ("cert without serverAuth", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.code_signing)), 
     "The certificate set was not installed: cert has extendedKeyUsage codeSigning, which does not allow TLS server authentication; expected serverAuth; cert has extendedKeyUsage codeSigning, which does not allow TLS client authentication; expected clientAuth"),
    ("key encrypted", CERT, None,
     lambda s, p: cert_args(s, p, key=pkitool.key_pem(p.key, b"secret")),
     "The certificate set was not installed: The private key in key is encrypted: QEMU cannot load an encrypted key without a libvirt secret (migrate_tls_x509_secret_uuid); expected an unencrypted PEM private key"),
    ("cert garbage pem", CERT, None,
     lambda s, p: cert_args(s, p, cert="-----BEGIN CERTIFICATE-----\n"
                            "bm90IGEgY2VydGlmaWNhdGU=\n"
                            "-----END CERTIFICATE-----\n"), 
     "The certificate set was not installed: Invalid PEM certificate in cert: error:0680009B:asn1 encoding routines::too long; error:06800066:asn1 encoding routines::bad object header; error:0688010A:asn1 encoding routines::nested asn1 error; error:0488000D:PEM routines::ASN1 lib"),
    ("ca_cert missing path", CERT, None,
     lambda s, p: cert_args(s, p, ca_cert=str(s.root / "nope.pem")),
     "Option ca_cert: Failed to read {root}/nope.pem: No such file or "
     "directory"),
    ("client cert without key", CERT, None,
     lambda s, p: cert_args(s, p, client_cert=pem(p.cert)),
     "Options client_cert and client_key go together: give both, or "
     "neither to use the host certificate as the client certificate"),
    ("cert unknown group", CERT, None,
     lambda s, p: cert_args(s, p, group="no-such-group-qmt"), 
     "Group no-such-group-qmt (option group) does not exist on this host; set the group option"),
    ("cert mistyped list", CERT, None,
     lambda s, p: cert_args(s, p, extra_names={"a": 1}), 
     "Invalid value for option extra_names of qemu_migration_tls_cert: {{\"a\":1}} is not a valid list"),
    ("cert relative cert_dir", CERT, None,
     lambda s, p: cert_args(s, p, state="csr", cert_dir="pki"),
     "Invalid value for option cert_dir: 'pki' is not an absolute path"),
    ("conf relative cert_dir", CONFIG, None,
     lambda s, p: config_args(s, cert_dir="etc/pki"),
     "Invalid value for option cert_dir: 'etc/pki' is not an absolute path"),
    ("cert holding a private key", CERT, None,
     lambda s, p: cert_args(s, p, cert=pem(p.cert) + pkitool.key_pem(p.key)),
     "cert contains a private key. Certificate files are installed readable "
     "by every user (0644), so give only certificates there and the key in "
     "the key or client_key option"),
    ("cert empty hostname", CERT, None,
     lambda s, p: cert_args(s, p, hostname=""),
     "Invalid value for option hostname: it is empty; give the name other "
     "hosts use to reach this one"),
    ("csr unreadable ca_cert", CERT, None,
     lambda s, p: cert_args(s, p, state="csr", ca_cert="garbage"),
     "Option ca_cert: Failed to read garbage: No such file or directory"),
    ("cert negative renewal window", CERT, None,
     lambda s, p: cert_args(s, p, renew_before_days=-5),
     "Invalid value for option renew_before_days: -5 is negative; give a "
     "number of days, 0 or more"),
    ("ca csr garbage", CA, None,
     lambda s, p: {"ca_dir": str(s.root / "ca"),
                   "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                          "-----END CERTIFICATE REQUEST-----\n",
                   "hostname": HOST}, 
     "csr: Invalid CSR for host1.lab.test: not a PEM certificate request (error:068000A8:asn1 encoding routines::wrong tag; error:0688010A:asn1 encoding routines::nested asn1 error; error:0488000D:PEM routines::ASN1 lib)"),
    ("ca half present", CA,
     lambda s: ((s.root / "ca").mkdir(),
                (s.root / "ca" / "ca-cert.pem").write_text("x")),
     lambda s, p: {"ca_dir": str(s.root / "ca")}, 
     "Incomplete CA in {root}/ca: {root}/ca/ca-key.pem is missing but {root}/ca/ca-cert.pem exists"),
]


def expand(text, sandbox):
    return text.format(conf=sandbox.conf, dir=sandbox.cert_dir,
                       root=sandbox.root)


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input(case, sandbox, pki, run_module):
    _, module, prepare, build_args, expected = case
    if prepare:
        prepare(sandbox)
    args = build_args(sandbox, pki)
    before = sandbox.snapshot()
    result = run_module(module, args)
    assert result["failed"] is True, result["msg"]
    assert result["changed"] is False
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(result["msg"]), result["msg"]
    else:
        assert result["msg"] == expand(expected, sandbox)
    assert sandbox.snapshot() == before
    key_body = pkitool.key_pem(pki.key).splitlines()[1]
    assert key_body not in json.dumps(result)


def test_read_only_target_folder(sandbox, pki, run_module, tmp_path):
    """A read-only mount: even root cannot write there."""
    sandbox.cert_dir.mkdir(parents=True)
    args_file = tmp_path / "args.json"
    args = cert_args(sandbox, pki)
    args["_ansible_module_name"] = CERT
    args_file.write_text(json.dumps(args))
    module = os.path.join(os.path.dirname(__file__), "..", "..", "module", CERT)
    script = (f"mount --bind {sandbox.root} {sandbox.root} && "
              f"mount -o remount,ro,bind {sandbox.root} && "
              f"{module} {args_file}")
    before = sandbox.snapshot()
    completed = subprocess.run(["unshare", "-m", "--propagation", "private",
                                "sh", "-c", script], capture_output=True,
                               text=True, timeout=60)
    result = json.loads(completed.stdout)
    assert result["failed"] is True
    assert "Read-only file system" in result["msg"]
    assert str(sandbox.root) in result["msg"]
    assert sandbox.snapshot() == before
