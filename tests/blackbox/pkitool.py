"""Certificates for black-box tests, made with Debian's python3-cryptography.

Independent of the product's own OpenSSL code, so the tests do not check
the product against itself.
"""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def new_key(kind="ec"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key, password=None):
    encryption = (serialization.BestAvailableEncryption(password)
                  if password else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             encryption).decode()


def cert_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name="Test QEMU CA", ca_flag=True, key=None):
    key = key or new_key()
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name))
               .issuer_name(_name(common_name))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(NOW + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=ca_flag,
                                                    path_length=None),
                              critical=True))
    if ca_flag:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False,
                          decipher_only=False), critical=True)
    certificate = builder.sign(key, hashes.SHA256())
    return key, certificate


def make_leaf(ca_key, ca_cert, names, key=None, days_before=1,
              days_after=365, usages=("server", "client"), ca_flag=False):
    key = key or new_key()
    alt_names = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    builder = (x509.CertificateBuilder()
               .subject_name(_name(names[0] if names else "no-name"))
               .issuer_name(ca_cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=days_before))
               .not_valid_after(NOW + datetime.timedelta(days=days_after))
               .add_extension(x509.BasicConstraints(ca=ca_flag,
                                                    path_length=None),
                              critical=True))
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names),
                                        critical=False)
    oids = {"server": ExtendedKeyUsageOID.SERVER_AUTH,
            "client": ExtendedKeyUsageOID.CLIENT_AUTH,
            "code": ExtendedKeyUsageOID.CODE_SIGNING}
    if usages is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([oids[u] for u in usages]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


class HostSet:
    """A CA and a host certificate for one host name."""

    def __init__(self, hostname="host1.lab.test", extra=("10.213.7.11",),
                 kind="ec"):
        self.ca_key, self.ca_cert = make_ca()
        self.key, self.cert = make_leaf(self.ca_key, self.ca_cert,
                                        [hostname, *extra], key=new_key(kind))
        self.hostname = hostname

    @property
    def ca_pem(self):
        return cert_pem(self.ca_cert)

    @property
    def cert_pem(self):
        return cert_pem(self.cert)

    @property
    def key_pem(self):
        return key_pem(self.key)
