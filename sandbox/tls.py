"""Test PKI for the sandbox's TLS: a local test CA, a server certificate it signs, and an untrusted one.

``make_test_pki(folder)`` writes PEM files (keys 0600) and reuses them on the next call while they
are consistent and valid for at least a day more::

    ca.pem, ca.key                 the test CA: the trust anchor handed to the software under test
    server.pem, server.key         signed by the CA for 127.0.0.1, ::1 and localhost
    untrusted.pem, untrusted.key   self-signed for the same names: software must refuse it

Test material only: never a production trust anchor.
"""

from __future__ import annotations

import ssl
import warnings

import datetime as dt
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS = ("localhost",)
IPS = ("127.0.0.1", "::1")
CA_DAYS = 3 * 365
LEAF_DAYS = 365
MIN_REMAINING = dt.timedelta(days=1)
ORG = "usine sandbox (TEST ONLY)"


@dataclass(frozen=True, slots=True)
class TestPKI:
    """Where the PEM files of a test PKI are."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def untrusted_cert(self) -> Path:
        return self.folder / "untrusted.pem"

    @property
    def untrusted_key(self) -> Path:
        return self.folder / "untrusted.key"

    def files(self) -> dict[str, Path]:
        return {"ca_cert": self.ca_cert, "ca_key": self.ca_key, "server_cert": self.server_cert,
                "server_key": self.server_key, "untrusted_cert": self.untrusted_cert,
                "untrusted_key": self.untrusted_key}


def make_test_pki(folder: Path, *, force: bool = False) -> TestPKI:
    """Write (or reuse, unless ``force``) the test PKI in ``folder``."""
    pki = TestPKI(Path(folder))
    if not force and is_usable(pki):
        return pki
    pki.folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, server_key, untrusted_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _ca_certificate(ca_key, now)
    server = _leaf_certificate(server_key, "usine sandbox test server", ca.subject, ca_key, now)
    untrusted_name = _name("usine sandbox UNTRUSTED server")
    untrusted = _leaf_certificate(untrusted_key, "usine sandbox UNTRUSTED server", untrusted_name, untrusted_key, now)
    for path, key in ((pki.ca_key, ca_key), (pki.server_key, server_key), (pki.untrusted_key, untrusted_key)):
        _write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), private=True)
    for path, cert in ((pki.ca_cert, ca), (pki.server_cert, server), (pki.untrusted_cert, untrusted)):
        _write(path, cert.public_bytes(serialization.Encoding.PEM))
    return pki


def is_usable(pki: TestPKI) -> bool:
    """Every file is there, each certificate matches its key, the server one is issued by the CA, none expires soon."""
    try:
        certs = {name: x509.load_pem_x509_certificate(pki.files()[name].read_bytes())
                 for name in ("ca_cert", "server_cert", "untrusted_cert")}
        keys = {name: serialization.load_pem_private_key(pki.files()[name].read_bytes(), password=None)
                for name in ("ca_key", "server_key", "untrusted_key")}
        certs["server_cert"].verify_directly_issued_by(certs["ca_cert"])
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    deadline = dt.datetime.now(dt.UTC) + MIN_REMAINING
    for prefix in ("ca", "server", "untrusted"):
        cert, key = certs[f"{prefix}_cert"], keys[f"{prefix}_key"]
        if cert.not_valid_after_utc < deadline or cert.public_key() != key.public_key():
            return False
    return True


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = _name("usine sandbox test CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))


def _leaf_certificate(key: ec.EllipticCurvePrivateKey, common_name: str, issuer: x509.Name,
                      issuer_key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    """A TLS server certificate for the loopback names, signed by ``issuer_key`` (itself: self-signed)."""
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTS]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in IPS]
    return (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256()))


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` atomically (temp file created 0600; public files then made 0644)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if not private:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def legacy_tls_context(cert: Path, key: Path) -> ssl.SSLContext | None:
    """A server context offering only TLS 1.1 (None when this platform's OpenSSL no longer can)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError, AttributeError):
        return None
    return context


def negotiates_tls11(url: str, ca_cert: Path) -> bool:
    """Whether the listener at ``url`` really completes a TLS 1.1 handshake (no check may pass on a dead one)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = ssl.create_default_context(cafile=str(ca_cert))
            client.minimum_version = ssl.TLSVersion.TLSv1
            client.set_ciphers("DEFAULT:@SECLEVEL=0")
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            return tls.version() == "TLSv1.1"
    except (OSError, ssl.SSLError, ValueError):
        return False
