"""Test PKI for the sandbox's TLS: a local test CA, a server certificate it signs, and one bad certificate or
connection per class of the negative catalogue (badssl.com's classes that a requirement forbids).

``make_test_pki(folder)`` writes PEM files (keys 0600) and reuses them on the next call while they
are consistent and valid for at least a day more::

    ca.pem, ca.key                 the test CA: the trust anchor handed to the software under test
    server.pem, server.key         signed by the CA for 127.0.0.1, ::1 and localhost
    untrusted.pem, untrusted.key   self-signed for the same names: software must refuse it
    bad/<class>.pem, .key          one certificate (chain as served) per certificate class below

Each :data:`LISTENER_CLASSES` entry is one listener ``usine sandbox serve --test-pki`` (and the
harness's in-process sandbox) serves the same app on; software must refuse every one of them. A
class this platform cannot serve (an OpenSSL without TLS 1.0, no ``openssl`` command for a SHA-1
signature) is left out, and every listener is probed before it is published.

Test material only: never a production trust anchor.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conformity.files import write_atomic, write_private

HOSTS = ("localhost",)
IPS = ("127.0.0.1", "::1")
CA_DAYS = 3 * 365
LEAF_DAYS = 365
MIN_REMAINING = dt.timedelta(days=1)
ORG = "usine sandbox (TEST ONLY)"
WRONG_HOST = "wrong.host.usine.invalid"


@dataclass(frozen=True, slots=True)
class ListenerClass:
    """One bad server the software must refuse: what is wrong with it, and how the listener is set up."""

    name: str
    what: str
    #: certificate files under ``bad/`` (None: the trusted server certificate; "untrusted": the self-signed one)
    cert: str | None = None
    #: protocol versions offered (min, max) and the only cipher suites (TLS 1.2) offered
    versions: tuple[ssl.TLSVersion, ssl.TLSVersion] = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    ciphers: str = ""


LISTENER_CLASSES: tuple[ListenerClass, ...] = (
    ListenerClass("self_signed", "a self-signed certificate for the right host names", "untrusted"),
    ListenerClass("untrusted_root", "a certificate issued by a CA that is not a trust anchor of the session",
                  "untrusted-root"),
    ListenerClass("expired", "a certificate of the test CA that expired yesterday", "expired"),
    ListenerClass("not_yet_valid", "a certificate of the test CA valid only from next year", "not-yet-valid"),
    ListenerClass("wrong_host", f"a certificate of the test CA for another host name ({WRONG_HOST})", "wrong-host"),
    ListenerClass("incomplete_chain", "a certificate of an intermediate CA of the test CA, served without the "
                  "intermediate", "incomplete-chain"),
    ListenerClass("weak_key", "a certificate of the test CA for a 1024-bit RSA key", "weak-key"),
    ListenerClass("weak_signature", "a certificate of the test CA signed with SHA-1", "weak-signature"),
    ListenerClass("tls1_0", "only TLS 1.0", versions=(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1)),
    ListenerClass("tls1_1", "only TLS 1.1", versions=(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)),
    ListenerClass("cipher_null", "only cipher suites without encryption (NULL)", "rsa",
                  (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2), "NULL-SHA256:NULL-SHA"),
    ListenerClass("cipher_static_rsa", "only cipher suites with RSA key exchange (no forward secrecy)", "rsa",
                  (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2), "AES128-GCM-SHA256:AES256-GCM-SHA384"),
    ListenerClass("cipher_cbc_sha1", "only CBC cipher suites with SHA-1 MACs", "rsa",
                  (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2), "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"),
)
CLASSES = {c.name: c for c in LISTENER_CLASSES}
#: certificate files of the bad classes (``rsa`` is a right certificate for an RSA key, for RSA-only suites)
BAD_CERTS = ("untrusted-root", "expired", "not-yet-valid", "wrong-host", "incomplete-chain", "weak-key",
             "weak-signature", "rsa")


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

    def bad(self, name: str) -> tuple[Path, Path]:
        """The certificate chain (as served) and key of a bad certificate class file."""
        return self.folder / "bad" / f"{name}.pem", self.folder / "bad" / f"{name}.key"

    def files(self) -> dict[str, Path]:
        return {"ca_cert": self.ca_cert, "ca_key": self.ca_key, "server_cert": self.server_cert,
                "server_key": self.server_key, "untrusted_cert": self.untrusted_cert,
                "untrusted_key": self.untrusted_key}

    def served(self, cls: ListenerClass) -> tuple[Path, Path] | None:
        """The certificate chain and key a listener class serves (None: this PKI could not make it)."""
        if cls.cert is None:
            return self.server_cert, self.server_key
        if cls.cert == "untrusted":
            return self.untrusted_cert, self.untrusted_key
        cert, key = self.bad(cls.cert)
        return (cert, key) if cert.is_file() and key.is_file() else None


def make_test_pki(folder: Path, *, force: bool = False) -> TestPKI:
    """Write (or reuse, unless ``force``) the test PKI in ``folder``."""
    pki = TestPKI(Path(folder))
    if not force and is_usable(pki):
        return pki
    (pki.folder / "bad").mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, server_key, untrusted_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _ca_certificate(ca_key, _name("usine sandbox test CA"), ca_key, None, now)
    server = _leaf(server_key, "usine sandbox test server", ca.subject, ca_key, now)
    untrusted = _leaf(untrusted_key, "usine sandbox UNTRUSTED server", _name("usine sandbox UNTRUSTED server"),
                      untrusted_key, now)
    for path, key in ((pki.ca_key, ca_key), (pki.server_key, server_key), (pki.untrusted_key, untrusted_key)):
        _write(path, _key_pem(key), private=True)
    for path, cert in ((pki.ca_cert, ca), (pki.server_cert, server), (pki.untrusted_cert, untrusted)):
        _write(path, _pem(cert))
    _make_bad(pki, ca, ca_key, now)
    return pki


def _make_bad(pki: TestPKI, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> None:
    """One certificate per bad certificate class (and an RSA one for the RSA-only cipher suites)."""
    key = ec.generate_private_key(ec.SECP256R1())
    other_key, inter_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    other = _ca_certificate(other_key, _name("usine sandbox OTHER CA (not a trust anchor)"), other_key, None, now)
    inter = _ca_certificate(inter_key, _name("usine sandbox test intermediate CA"), ca_key, ca.subject, now)
    weak, rsa_key = rsa.generate_private_key(65537, 1024), rsa.generate_private_key(65537, 2048)
    made: dict[str, tuple[list[x509.Certificate], CertificateIssuerPrivateKeyTypes]] = {
        "untrusted-root": ([_leaf(key, "untrusted root", other.subject, other_key, now), other], key),
        "expired": ([_leaf(key, "expired", ca.subject, ca_key, now, now - dt.timedelta(days=60),
                           now - dt.timedelta(days=1))], key),
        "not-yet-valid": ([_leaf(key, "not yet valid", ca.subject, ca_key, now, now + dt.timedelta(days=365),
                                 now + dt.timedelta(days=2 * 365))], key),
        "wrong-host": ([_leaf(key, "wrong host", ca.subject, ca_key, now, hosts=(WRONG_HOST,), ips=())], key),
        "incomplete-chain": ([_leaf(key, "incomplete chain", inter.subject, inter_key, now)], key),
        "weak-key": ([_leaf(weak, "weak key", ca.subject, ca_key, now)], weak),
        "rsa": ([_leaf(rsa_key, "rsa", ca.subject, ca_key, now)], rsa_key),
    }
    for name, (chain, private) in made.items():
        cert_path, key_path = pki.bad(name)
        _write(key_path, _key_pem(private), private=True)
        _write(cert_path, b"".join(_pem(c) for c in chain))
    sha1_leaf(pki, key)


def sha1_leaf(pki: TestPKI, key: ec.EllipticCurvePrivateKey) -> bool:
    """A certificate of the test CA signed with SHA-1, made with the ``openssl`` command (the cryptography
    library no longer signs with SHA-1); False when there is no such command."""
    openssl = shutil.which("openssl")
    cert_path, key_path = pki.bad("weak-signature")
    if openssl is None:
        cert_path.unlink(missing_ok=True)
        return False
    _write(key_path, _key_pem(key), private=True)
    sans = ",".join([f"DNS:{h}" for h in HOSTS] + [f"IP:{ip}" for ip in IPS])
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "leaf.csr", Path(tmp) / "ext.cnf"
        ext.write_text(f"subjectAltName={sans}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n")
        try:
            subprocess.run([openssl, "req", "-new", "-key", str(key_path), "-subj", f"/O={ORG}/CN=weak signature",
                            "-out", str(csr)], check=True, capture_output=True, timeout=30)
            subprocess.run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey",
                            str(pki.ca_key), "-set_serial", str(x509.random_serial_number()), "-days", str(LEAF_DAYS),
                            "-sha1", "-extfile", str(ext), "-out", str(Path(tmp) / "leaf.pem")],
                           check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            cert_path.unlink(missing_ok=True)
            return False
        _write(cert_path, (Path(tmp) / "leaf.pem").read_bytes())
    return True


def is_usable(pki: TestPKI) -> bool:
    """Every file is there, each certificate matches its key, the server one is issued by the CA, none expires soon
    (the bad certificates included: each must still be wrong the way its class says)."""
    try:
        certs = {name: x509.load_pem_x509_certificate(pki.files()[name].read_bytes())
                 for name in ("ca_cert", "server_cert", "untrusted_cert")}
        keys = {name: serialization.load_pem_private_key(pki.files()[name].read_bytes(), password=None)
                for name in ("ca_key", "server_key", "untrusted_key")}
        certs["server_cert"].verify_directly_issued_by(certs["ca_cert"])
        bad = {name: x509.load_pem_x509_certificates(pki.bad(name)[0].read_bytes())[0]
               for name in BAD_CERTS if name != "weak-signature"}
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    now = dt.datetime.now(dt.UTC)
    deadline = now + MIN_REMAINING
    for prefix in ("ca", "server", "untrusted"):
        cert, key = certs[f"{prefix}_cert"], keys[f"{prefix}_key"]
        if cert.not_valid_after_utc < deadline or cert.public_key() != key.public_key():
            return False
    if bad["not-yet-valid"].not_valid_before_utc < deadline:
        return False
    return all(c.not_valid_after_utc >= deadline for n, c in bad.items() if n not in ("expired", "not-yet-valid"))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ca_certificate(key: ec.EllipticCurvePrivateKey, name: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
                    issuer: x509.Name | None, now: dt.datetime) -> x509.Certificate:
    """A CA certificate: self-signed (``issuer`` None) or an intermediate signed by ``issuer_key``."""
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256()))


def _leaf(key: CertificateIssuerPrivateKeyTypes, common_name: str, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, now: dt.datetime, not_before: dt.datetime | None = None,
          not_after: dt.datetime | None = None, *, hosts: tuple[str, ...] = HOSTS,
          ips: tuple[str, ...] = IPS) -> x509.Certificate:
    """A TLS server certificate for ``hosts`` and ``ips``, signed by ``issuer_key`` (itself: self-signed)."""
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    return (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(minutes=5))
            .not_valid_after(not_after or now + dt.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256()))


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` atomically and durably (``conformity.files``): a key private (0600 from the moment it
    exists), a certificate (PEM, ASCII) readable as the umask allows."""
    if private:
        write_private(path, data)
    else:
        write_atomic(path, data.decode("ascii"), shared=True)


# ---------------------------------------------------------------------------------------------
# serving and probing a listener class


def _lenient(context: ssl.SSLContext, ciphers: str) -> None:
    """Let this platform's OpenSSL offer what a bad server offers (security level 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.set_ciphers(f"{ciphers or 'DEFAULT'}:@SECLEVEL=0")


def server_context(pki: TestPKI, cls: ListenerClass) -> ssl.SSLContext | None:
    """The server context of a listener class (None when this platform's OpenSSL or this PKI cannot make it)."""
    files = pki.served(cls)
    if files is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version, context.maximum_version = cls.versions
            _lenient(context, cls.ciphers)
        context.load_cert_chain(str(files[0]), str(files[1]))
    except (ssl.SSLError, ValueError, AttributeError, OSError):
        return None
    return context


def legacy_tls_context(cert: Path, key: Path) -> ssl.SSLContext | None:
    """A server context offering only TLS 1.1 (None when this platform's OpenSSL no longer can)."""
    pki = TestPKI(cert.parent)
    return server_context(pki, CLASSES["tls1_1"]) if cert == pki.server_cert else None


def probe_client(cls: ListenerClass) -> ssl.SSLContext:
    """A client that accepts anything, to prove a listener of class ``cls`` completes a handshake as it says."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        client.minimum_version = ssl.TLSVersion.TLSv1
        _lenient(client, "ALL:eNULL" if cls.ciphers else "")
    return client


def handshake(url: str, client: ssl.SSLContext, check: Callable[[ssl.SSLSocket], bool]) -> bool:
    """Whether a TLS handshake with the listener at ``url`` completes and ``check`` approves it."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            return check(tls)
    except (OSError, ssl.SSLError, ValueError):
        return False


def serves_as_said(url: str, cls: ListenerClass) -> bool:
    """Whether the listener at ``url`` really serves class ``cls`` (no check may pass on a dead listener)."""
    expected = {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}.get(cls.versions[1])
    suites = set(cls.ciphers.split(":")) if cls.ciphers else set()

    def check(tls: ssl.SSLSocket) -> bool:
        cipher = tls.cipher()
        return (expected is None or tls.version() == expected) and (not suites or (cipher or ("",))[0] in suites)

    return handshake(url, probe_client(cls), check)


def negotiates_tls11(url: str, ca_cert: Path) -> bool:
    """Whether the listener at ``url`` really completes a TLS 1.1 handshake."""
    return serves_as_said(url, CLASSES["tls1_1"])
