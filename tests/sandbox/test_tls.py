"""The test PKI: certificates right for the loopback names, trusted through the test CA only, over real TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from conformity.cli import cli
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.tls import TestPKI, is_usable, make_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def trusting(pki: TestPKI) -> ssl.SSLContext:
    """What the software under test is told to trust: the test CA only."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


@pytest.fixture(scope="module")
def tls_sandbox(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    config = SandboxConfig(data_dir=tmp_path_factory.mktemp("tls-sandbox"))
    with start_in_thread(config, tls_cert=pki.server_cert, tls_key=pki.server_key) as running:
        yield running


@pytest.fixture(scope="module")
def untrusted_sandbox(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    config = SandboxConfig(data_dir=tmp_path_factory.mktemp("untrusted-sandbox"))
    with start_in_thread(config, tls_cert=pki.untrusted_cert, tls_key=pki.untrusted_key) as running:
        yield running


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_certificate_chains_to_the_ca_for_every_loopback_name(pki: TestPKI) -> None:
    store = Store([load(pki.ca_cert)])
    for name in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.IPAddress(ipaddress.ip_address("::1"))):
        verifier = PolicyBuilder().store(store).build_server_verifier(name)
        chain = verifier.verify(load(pki.server_cert), [])
        assert chain[-1] == load(pki.ca_cert)
    wrong_name = PolicyBuilder().store(store).build_server_verifier(x509.DNSName("sandbox.example"))
    with pytest.raises(VerificationError):
        wrong_name.verify(load(pki.server_cert), [])


def test_untrusted_certificate_has_the_same_names_but_no_chain(pki: TestPKI) -> None:
    untrusted, server = load(pki.untrusted_cert), load(pki.server_cert)
    sans = x509.SubjectAlternativeName
    assert (untrusted.extensions.get_extension_for_class(sans).value
            == server.extensions.get_extension_for_class(sans).value)
    assert untrusted.issuer == untrusted.subject != load(pki.ca_cert).subject
    verifier = PolicyBuilder().store(Store([load(pki.ca_cert)])).build_server_verifier(x509.DNSName("localhost"))
    with pytest.raises(VerificationError):
        verifier.verify(untrusted, [])


def test_ca_and_leaf_profiles(pki: TestPKI) -> None:
    ca, server = load(pki.ca_cert), load(pki.server_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert server.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    for key in (pki.ca_key, pki.server_key, pki.untrusted_key):
        assert key.stat().st_mode & 0o777 == 0o600


def test_make_test_pki_is_idempotent_and_repairs(tmp_path: Path) -> None:
    first = make_test_pki(tmp_path)
    before = {role: path.read_bytes() for role, path in first.files().items()}
    again = make_test_pki(tmp_path)
    assert {role: path.read_bytes() for role, path in again.files().items()} == before
    first.server_key.unlink()  # broken: regenerated as a whole, consistent again
    repaired = make_test_pki(tmp_path)
    assert is_usable(repaired) and repaired.ca_cert.read_bytes() != before["ca_cert"]
    repaired_server = repaired.server_cert.read_bytes()
    forced = make_test_pki(tmp_path, force=True)
    assert is_usable(forced) and forced.server_cert.read_bytes() != repaired_server


def test_the_pki_is_written_durably_its_keys_private_and_a_rerun_leaves_no_temporary(
        tmp_path: Path, fsynced: list[tuple[str, int]]) -> None:
    """The PKI's files were renamed into place never fsync'd: after a power cut a sandbox (or the agency's witnessed
    runs) found a certificate or key empty, and served or trusted nothing. Each is now written as every output is
    (``conformity.files``): fsync'd, its folder too; keys 0600 from the start, certificates as the umask allows."""
    pki = make_test_pki(tmp_path)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert {pki.ca_cert, pki.ca_key, pki.server_cert, pki.server_key, *pki.bad("expired")} <= set(written)
    for path in written:
        assert ("file", path.stat().st_ino) in fsynced, path
        shared = 0o666 & ~_umask()
        assert path.stat().st_mode & 0o777 == (0o600 if path.suffix == ".key" else shared), path
    assert {("dir", tmp_path.stat().st_ino), ("dir", (tmp_path / "bad").stat().st_ino)} <= set(fsynced)
    make_test_pki(tmp_path, force=True)
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no temporary file left beside what it replaced
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == written


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_cli_writes_the_pki(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "pki", "--out", str(tmp_path / "pki")])
    assert result.exit_code == 0, result.output
    assert is_usable(TestPKI(tmp_path / "pki"))
    assert str(tmp_path / "pki" / "ca.pem") in result.output


def test_client_trusting_the_ca_talks_to_the_sandbox(pki: TestPKI, tls_sandbox: RunningSandbox) -> None:
    assert tls_sandbox.base_url.startswith("https://127.0.0.1:")
    port = tls_sandbox.base_url.rsplit(":", 1)[1]
    for base in (tls_sandbox.base_url, f"https://localhost:{port}"):
        with httpx.Client(base_url=base, verify=trusting(pki)) as client:
            r = client.get("/health")
            assert r.status_code == 200 and r.json()["status"] == "ok"


def test_the_same_client_refuses_the_untrusted_certificate(pki: TestPKI, untrusted_sandbox: RunningSandbox) -> None:
    with httpx.Client(base_url=untrusted_sandbox.base_url, verify=trusting(pki)) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            client.get("/health")
    cause = caught.value.__context__ or caught.value.__cause__
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__context__ or cause.__cause__
    assert isinstance(cause, ssl.SSLCertVerificationError), repr(caught.value)
    assert "self-signed certificate" in str(cause) or "self signed certificate" in str(cause)


def test_a_client_with_default_trust_refuses_the_test_ca(tls_sandbox: RunningSandbox) -> None:
    with httpx.Client(base_url=tls_sandbox.base_url) as client:  # system trust store: the test CA is not in it
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("/health")


# ---------------------------------------------------------------------------------------------
# the negative catalogue: one listener per bad server software must refuse


@pytest.fixture(scope="module")
def bad_listeners(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from sandbox.app import create_app
    from sandbox.server import start_listeners

    app = create_app(SandboxConfig(data_dir=tmp_path_factory.mktemp("bad-listeners")))
    found = start_listeners(app, "127.0.0.1", pki=pki)
    try:
        yield found.urls
    finally:
        found.stop()
        app.state.store.close()


def test_every_class_of_the_catalogue_is_served(bad_listeners: dict[str, str]) -> None:
    from sandbox.tls import LISTENER_CLASSES

    missing = {c.name for c in LISTENER_CLASSES} - set(bad_listeners)
    assert missing <= {"tls1_0", "tls1_1", "weak_signature"}, missing  # only what this platform may lack
    assert not missing or not os.environ.get("CI"), f"CI's platform serves every class: {missing}"


def test_a_strict_client_refuses_every_bad_listener_and_reaches_the_trusted_one(
        pki: TestPKI, bad_listeners: dict[str, str]) -> None:
    from sandbox.tls import CLASSES, handshake, serves_as_said

    assert handshake(bad_listeners["trusted"], trusting(pki), lambda tls: True)
    for name, url in bad_listeners.items():
        if name == "trusted":
            continue
        assert serves_as_said(url, CLASSES[name]), name  # the listener is alive and bad the way it says
        assert not handshake(url, ssl.create_default_context(cafile=str(pki.ca_cert)), lambda tls: True), name


def test_bad_certificates_are_wrong_exactly_the_way_their_class_says(pki: TestPKI) -> None:
    now = dt.datetime.now(dt.UTC)
    first = {name: x509.load_pem_x509_certificates(pki.bad(name)[0].read_bytes())
             for name in ("expired", "not-yet-valid", "wrong-host", "incomplete-chain", "weak-key", "untrusted-root")}
    assert first["expired"][0].not_valid_after_utc < now < first["not-yet-valid"][0].not_valid_before_utc
    sans = first["wrong-host"][0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["wrong.host.usine.invalid"]
    assert len(first["incomplete-chain"]) == 1 and first["incomplete-chain"][0].issuer != load(pki.ca_cert).subject
    assert first["weak-key"][0].public_key().key_size == 1024
    assert len(first["untrusted-root"]) == 2 and first["untrusted-root"][1].issuer == first["untrusted-root"][1].subject
    if pki.bad("weak-signature")[0].exists():
        weak = x509.load_pem_x509_certificate(pki.bad("weak-signature")[0].read_bytes())
        assert weak.signature_hash_algorithm is not None and weak.signature_hash_algorithm.name == "sha1"
