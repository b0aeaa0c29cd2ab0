"""conformity.signing: JWS (RFC 7515) with Ed25519, verified by usine and by an off-the-shelf JOSE library."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from conformity.errors import InputError, SignatureError
from conformity.labels import sign_label
from conformity.signing import KeyRing, SigningKey, signer_kid, unverified_payload, verify_envelope
from tests.payments.builders import label_fields, tampered

REPO = Path(__file__).resolve().parents[2]
AGENCY = SigningKey.from_seed(b"usine tests: signing")
RING = KeyRing([AGENCY.verify_key])


def test_a_signed_document_is_a_flattened_jws_with_a_thumbprint_kid() -> None:
    signed = AGENCY.sign_document({"format": "x/1", "n": 1, "é": "ü"})
    assert set(signed) == {"protected", "payload", "signature"}
    header = json.loads(urlsafe_b64decode(signed["protected"].encode()))
    assert header == {"alg": "EdDSA", "kid": AGENCY.kid, "typ": "JOSE+JSON"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", AGENCY.kid)  # RFC 7638: base64url SHA-256
    assert urlsafe_b64decode(signed["payload"].encode()) == '{"format":"x/1","n":1,"é":"ü"}'.encode()
    verified = verify_envelope(signed, RING)
    assert verified.payload == {"format": "x/1", "n": 1, "é": "ü"} and verified.kid == AGENCY.kid
    assert signer_kid(signed) == AGENCY.kid and unverified_payload(signed)["n"] == 1


@pytest.mark.parametrize("case", ["payload-edited", "header-swapped-kid", "signature-of-another-document",
                                  "alg-none", "alg-hs256", "old-envelope", "extra-member", "general-serialization",
                                  "not-an-object", "payload-not-json", "payload-deep-json"])
def test_every_forgery_is_refused_with_a_clear_reason(case: str) -> None:
    signed = AGENCY.sign_document({"format": "x/1", "n": 1})
    other = SigningKey.from_seed(b"another key")

    def header(h: dict[str, object]) -> str:
        return urlsafe_b64encode(json.dumps(h).encode()).decode()

    bad: object
    words = {"payload-edited": "does not match", "header-swapped-kid": "untrusted key",
             "signature-of-another-document": "does not match", "alg-none": "unsupported signature algorithm",
             "alg-hs256": "unsupported signature algorithm", "old-envelope": "old usine envelope",
             "extra-member": "unexpected header", "general-serialization": "flattened serialization",
             "not-an-object": "JWS JSON object", "payload-not-json": "not valid JSON",
             "payload-deep-json": "nested deeper"}[case]
    if case == "payload-edited":
        bad = tampered(signed, n=2)
    elif case == "header-swapped-kid":
        bad = {**signed, "protected": header({"alg": "EdDSA", "kid": other.kid})}
    elif case == "signature-of-another-document":
        bad = {**signed, "signature": AGENCY.sign_document({"format": "x/1", "n": 2})["signature"]}
    elif case == "alg-none":
        bad = {**signed, "protected": header({"alg": "none", "kid": AGENCY.kid}), "signature": ""}
    elif case == "alg-hs256":
        bad = {**signed, "protected": header({"alg": "HS256", "kid": AGENCY.kid})}
    elif case == "old-envelope":
        bad = {"format": "x/1", "n": 1, "signature": {"alg": "Ed25519", "kid": "0" * 64, "value": "AA"}}
    elif case == "extra-member":
        bad = {**signed, "header": {"kid": other.kid}}
    elif case == "general-serialization":
        bad = {"payload": signed["payload"], "signatures": [{"protected": signed["protected"],
                                                             "signature": signed["signature"]}]}
    elif case == "not-an-object":
        bad = [signed]
    else:
        raw = b"[" * 100_000 + b"]" * 100_000 if case == "payload-deep-json" else b"{not json"
        forged = {"protected": signed["protected"], "payload": urlsafe_b64encode(raw).decode()}
        bad = raw_sign(forged)
    with pytest.raises(SignatureError if case not in ("payload-not-json", "payload-deep-json") else InputError) as exc:
        verify_envelope(bad, RING, source="x.json")
    assert words in str(exc.value) and "x.json" in str(exc.value), str(exc.value)


def raw_sign(members: dict[str, str]) -> dict[str, str]:
    """Sign arbitrary payload bytes with the agency key (a validly signed, badly formed payload)."""
    signing_input = f"{members['protected']}.{members['payload']}".encode()
    return {**members, "signature": urlsafe_b64encode(AGENCY.private_key.sign(signing_input)).decode()}


def test_a_private_key_is_never_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        AGENCY.save(tmp_path / "keys" / "agency.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keys" / "agency.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert SigningKey.load(tmp_path / "keys" / "agency.pem").kid == AGENCY.kid
    assert not list((tmp_path / "keys").glob(".*tmp"))


def test_the_readme_third_party_verification_runs_as_written(tmp_path: Path) -> None:
    """The README's verification lines, run verbatim with joserfc on a real label and a forged one."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("<!-- third-party-verification -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(snippet.strip().splitlines()) <= 10
    label = sign_label(label_fields(), AGENCY)
    (tmp_path / "agency-key.pub.pem").write_text(AGENCY.verify_key.pem())
    (tmp_path / "label.json").write_text(json.dumps(label.signed))
    run = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == label.doc["label_id"] and "acme-ehr" in run.stdout
    (tmp_path / "label.json").write_text(json.dumps(tampered(label.signed, versions=["9.9"])))
    forged = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True)
    assert forged.returncode != 0 and "BadSignatureError" in forged.stderr


def test_a_signature_ending_while_another_is_under_way_leaves_it_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """usine signs with ``EdDSA`` on purpose: joserfc's warning on the name (RFC 9864) is muted in usine's own registry,
    never by changing the process's warning filters around each call, which is not thread-safe. With filters changed
    per call, two signatures at once (harness runs: scenario threads and the sandbox sign and verify together) went
    this way: A mutes, B mutes, A restores the filters it found, B's signature warns. Here exactly that interleaving,
    held in place: A and B both under way (stopped as their payload is canonicalised), A ends first, then B."""
    import threading
    import warnings

    from joserfc import jws
    from joserfc.errors import SecurityWarning

    from conformity import signing

    real = signing.canonical_json
    inside = {"A": threading.Event(), "B": threading.Event()}
    go = {"A": threading.Event(), "B": threading.Event()}

    def held(obj: Any) -> bytes:
        who = obj.get("who") if isinstance(obj, dict) else None
        if who in inside:
            inside[who].set()
            assert go[who].wait(10)
        return real(obj)

    monkeypatch.setattr(signing, "canonical_json", held)
    signed: dict[str, dict[str, str]] = {}
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        threads = {who: threading.Thread(target=lambda w=who: signed.update({w: AGENCY.sign_document({"who": w})}))
                   for who in ("A", "B")}
        threads["A"].start()
        assert inside["A"].wait(10)
        threads["B"].start()
        assert inside["B"].wait(10)
        go["A"].set()
        threads["A"].join(10)
        go["B"].set()
        threads["B"].join(10)
    assert {who: verify_envelope(signed[who], RING).payload for who in signed} == {"A": {"who": "A"}, "B": {"who": "B"}}
    assert [str(w.message) for w in seen if issubclass(w.category, SecurityWarning)] == []
    assert warnings.filters == filters  # nothing added, nothing left behind
    # joserfc's own registry is untouched: a third party's joserfc still says what it says
    assert jws.JWSRegistry.algorithms["EdDSA"].security_warning


def test_quiet_registry_mutes_warnings_only_for_the_algorithms_it_allows() -> None:
    from joserfc import jwt
    from joserfc.errors import UnsupportedAlgorithmError

    from conformity.signing import quiet_registry

    registry = quiet_registry("none")
    assert jwt.encode({"alg": "none"}, {"a": 1}, None, algorithms=["none"], registry=registry).endswith(".")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.encode({"alg": "HS256"}, {"a": 1}, "k" * 32, algorithms=["HS256"], registry=registry)
    with pytest.warns(Warning, match="none"):  # joserfc's own registry still warns
        jwt.encode({"alg": "none"}, {"a": 1}, None, algorithms=["none"])  # type: ignore[arg-type]


def test_a_private_key_given_where_a_public_key_is_expected_is_named_as_such(tmp_path: Path) -> None:
    """label verify --agency-key and pay run --agency-key, given the agency's private key (its folder, or the file),
    answered with the crypto library's words ("Valid PEM but no BEGIN PUBLIC KEY/END PUBLIC KEY delimiters")."""
    from conformity.signing import VerifyKey

    key = SigningKey.generate()
    key.save(tmp_path / "agency.pem")
    with pytest.raises(SignatureError, match=r"is a private key, not the public key.*\.pub\.pem") as refused:
        VerifyKey.from_file(tmp_path / "agency.pem")
    assert str(tmp_path / "agency.pem") in str(refused.value)
    public = sorted(p for p in tmp_path.iterdir() if p.name != "agency.pem")
    assert public and VerifyKey.from_file(public[0])  # the public half beside it is taken


@pytest.mark.parametrize(("member", "value"), [
    ("jwk", {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), ("jku", "https://keys.example/jwks.json"),
    ("x5u", "https://keys.example/cert.pem"), ("x5c", ["MIIB"]), ("crit+b64", False), ("cty", "JWT"), ("typ", "JWT")])
def test_a_header_member_usine_never_signs_is_refused_even_under_a_trusted_signature(member: str, value: object) -> None:
    """usine signs ``{"alg", "kid", "typ": "JOSE+JSON"}`` and nothing else: a header that embeds or points to a key
    (jwk, jku, x5u, x5c), declares the payload unencoded (RFC 7797 ``b64: false`` under ``crit``: the payload member is
    then not the base64url that ``unverified_payload`` and every other JOSE reader decodes) or types the document as
    something else is not one of its documents, even signed by a trusted key: refused, naming the member."""
    header = {"alg": "EdDSA", "kid": AGENCY.kid, "typ": "JOSE+JSON"}
    payload = urlsafe_b64encode(b'{"format":"x/1","n":1}').decode()
    if member == "crit+b64":
        header |= {"crit": ["b64"], "b64": False}
        payload = '{"format":"x/1","n":1}'
    else:
        header[member] = value
    protected = urlsafe_b64encode(json.dumps(header).encode()).decode()
    bad = raw_sign({"protected": protected, "payload": payload})
    with pytest.raises(SignatureError) as exc:
        verify_envelope(bad, RING, source="x.json")
    name = "b64" if member == "crit+b64" else member  # the first, in order
    assert f"protected.{name}" in str(exc.value) and "x.json" in str(exc.value), str(exc.value)
    assert verify_envelope(AGENCY.sign_document({"format": "x/1", "n": 1}), RING).payload["n"] == 1


def test_a_key_path_that_is_a_broken_or_looping_link_is_never_replaced_by_a_new_key(tmp_path: Path) -> None:
    """Before, ``SigningKey.load_or_create`` on a symbolic link leading nowhere (the agency's key on a volume not
    mounted, or a loop a → b → a) saw no file, generated a new key and saved it over the link: `usine agency registry
    export --key LINK` exited 0 with a revocation list signed by a key nobody trusts, the link gone. Found by
    tests/unit/test_cli_fuzz.py."""
    dangling = tmp_path / "agency.pem"
    dangling.symlink_to(tmp_path / "unmounted" / "agency.pem")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for link in (dangling, tmp_path / "a"):
        with pytest.raises(InputError, match="a symbolic link to no file") as caught:
            SigningKey.load_or_create(link)
        assert str(link) in str(caught.value)
        assert link.is_symlink() and not link.with_name(link.stem + ".pub.pem").exists()
    fresh = SigningKey.load_or_create(tmp_path / "new.pem")  # a path with nothing there: created on first use
    assert SigningKey.load(tmp_path / "new.pem").kid == fresh.kid
