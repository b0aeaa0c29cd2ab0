"""Deciding: the reference vendor waits for reviews, then is labelled once its evidence is accepted (the label
verifies offline and names the run and the reviews), a defective one is refused for its failed MUST
requirement; the same bundle decided twice gives one decision; labels that were tampered with say why
they are invalid."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformity.agency.decision import CALLER_SEED_REFUSED
from conformity.agency.registry import Registry
from conformity.agency.submit import decide_bundle
from conformity.catalog import Catalog
from conformity.catalog.schema import schema_problems
from conformity.errors import InputError
from conformity.labels import sign_label, sign_revocations
from conformity.paths import schema_path
from conformity.runs import read_seed
from conformity.signing import KeyRing, SigningKey, canonical_json, unverified_payload, verify_document
from tests.agency.helpers import (
    AGENCY,
    CATEGORY,
    DECIDED,
    DEFECT_FAILS,
    VENDORS,
    WAVE,
    Runs,
    accept_all,
    extra_run,
    label_bundle,
    members,
    usine,
    write_zip,
)
from tests.payments.builders import tampered


def _decide(runs: Runs, bundle: Path | str, out: Path) -> tuple[int, str]:
    r = usine("agency", "decide", bundle, "--trust", runs.trust, "--out", out)
    return r.exit_code, r.output


def _review_all(submission: str, *requirements: str, reviewer: str = "C. Durand") -> None:
    r = usine("agency", "review", submission, *requirements, "--accept", "--reason", "read: it shows what is asked",
              "--reviewer", reviewer)
    assert r.exit_code == 0, r.output


def test_reference_is_labelled_once_its_evidence_is_accepted(runs: Runs, home: Path, tmp_path: Path) -> None:
    code, output = _decide(runs, runs.reference, tmp_path / "out")
    assert code == 4, output  # pending: no label before the document/manual MUST requirements are reviewed
    assert output.startswith("PENDING: RefApp 1.0.0") and not list((tmp_path / "out").glob("label-*"))
    [pending] = (tmp_path / "out").glob("pending-sub_*.json")
    doc = json.loads(pending.read_text())
    jsonschema.validate(doc, json.loads(schema_path("decision").read_text()))
    awaiting = [a["id"] for a in doc["awaiting_review"]]
    assert {"SECURITY-013", "PATIENTID-013"} <= set(awaiting) and doc["recorded"] and doc["run"]["id"]
    assert all(a["level"] == "MUST" for a in doc["awaiting_review"]) and "SECURITY-011" not in awaiting
    sub = doc["submission"]
    _review_all(sub, *awaiting, "DOCSHARE-026")
    assert _decide(runs, sub, tmp_path / "out")[0] == 4  # four-eyes: each MUST awaits a second reviewer
    _review_all(sub, *awaiting, reviewer="F. Moreau")
    code, output = _decide(runs, sub, tmp_path / "out")  # by submission id: the bundle is not needed again
    assert code == 0, output
    assert output.startswith("LABELLED: RefApp 1.0.0") and "SECURITY-011" in output  # SHOULD not reviewed: no block
    [label_file] = (tmp_path / "out").glob("label-lbl_*.json")
    label = verify_document(json.loads(label_file.read_text()), KeyRing([AGENCY.verify_key]))
    assert not schema_problems("label", label, "label") and label["format"] == "usine.label/2"
    assert label["versions"] == ["1.0.0"] and label["wave"] == WAVE and label["category"] == CATEGORY
    assert label["expires"] == "2028-12-31" and label["referentials"]["DOCSHARE"] == "1.0"
    assert label["bundle_sha256"] == hashlib.sha256(runs.reference.read_bytes()).hexdigest()
    assert label["run"]["id"] == doc["run"]["id"] and label["run"]["submission"] == sub
    assert DEFECT_FAILS in label["requirements_passed"] and "SECURITY-013" not in label["requirements_passed"]
    reviewed = {r["id"]: r for r in label["requirements_reviewed"]}
    assert set(reviewed) == set(awaiting) | {"DOCSHARE-026"}
    hds = reviewed["SECURITY-013"]
    assert hds["verdict"] == "accepted" and hds["reviewer"] == "F. Moreau" and hds["reviewed"].endswith("Z")
    assert hds["first_review"]["reviewer"] == "C. Durand" and "first_review" not in reviewed["DOCSHARE-026"]  # a SHOULD
    assert hds["evidence"] == [{"file": "evidence/SECURITY-013/hds-certificate.pdf", "sha256": hashlib.sha256(
        (VENDORS / "reference" / "evidence" / "hds-certificate.pdf").read_bytes()).hexdigest()}]
    assert label["issuer"]["key_id"] == AGENCY.kid
    pub = home / "agency" / "agency-key.pub.pem"
    unknown = usine("label", "verify", label_file, "--key", pub)
    assert unknown.exit_code == 3 and unknown.output.startswith("REVOCATION STATUS UNKNOWN: label " + label["label_id"])
    fresh = tmp_path / "revocations.json"
    fresh.write_text(json.dumps(sign_revocations([], AGENCY)))
    verified = usine("label", "verify", label_file, "--key", pub, "--revocations", fresh)
    assert verified.exit_code == 0 and verified.output.startswith("VALID: label " + label["label_id"])
    assert usine("label", "verify", label_file, "--revocations", fresh).exit_code == 0  # the local agency's key

    with Registry(home / "agency" / "registry.sqlite3") as reg:
        s = reg.get(label["label_id"])
        assert s.state == "labelled" and s.version == "1.0.0" and s.run_id == label["run"]["id"]
        states = [h[2] for h in reg.history(s.id, label["label_id"])]
        assert states == ["submitted", "verified", "pending"] + ["reviewed"] * (len(reviewed) + len(awaiting)) \
            + ["labelled", "issued"]  # each MUST reviewed twice (four-eyes), the SHOULD once
        assert {r.requirement for r in reg.reviews(s.id)} == set(reviewed)


def test_the_same_bundle_decided_twice_gives_one_decision(runs: Runs, home: Path, tmp_path: Path) -> None:
    first = _decide(runs, runs.reference, tmp_path / "a")
    again = _decide(runs, runs.reference, tmp_path / "b")
    assert first[0] == again[0] == 4
    with Registry(home / "agency" / "registry.sqlite3") as reg:
        [s] = reg.submissions()
        assert len(reg.history(s.id)) == 3 and not reg.labels()
    accept_all(home / "agency" / "registry.sqlite3", s.id)
    assert _decide(runs, runs.reference, tmp_path / "a")[0] == 0  # any bundle of the run decides it again
    again = _decide(runs, runs.reference, tmp_path / "b")
    assert again[0] == 0 and "already decided" in again[1]
    [a] = (tmp_path / "a").glob("label-*.json")
    [b] = (tmp_path / "b").glob("label-*.json")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    with Registry(home / "agency" / "registry.sqlite3") as reg:
        assert len(reg.labels()) == 1 and len(reg.submissions()) == 1


def test_defective_vendor_is_refused_with_its_failed_requirement(runs: Runs, home: Path, tmp_path: Path) -> None:
    code, output = _decide(runs, runs.defective, tmp_path / "out")
    assert code == 1, output
    [refusal] = (tmp_path / "out").glob("refusal-sub_*.json")
    doc = json.loads(refusal.read_text())
    jsonschema.validate(doc, json.loads(schema_path("decision").read_text()))
    assert doc["outcome"] == "refused" and doc["verified"] and doc["recorded"] and not doc["reasons"]
    assert [f["id"] for f in doc["failed_requirements"]] == [DEFECT_FAILS]
    assert any("nonce" in f["message"] for f in doc["failed_requirements"][0]["findings"])
    text = refusal.with_suffix(".txt").read_text()
    assert text.startswith("REFUSED: RefApp (skips the nonce check)") and f"- {DEFECT_FAILS} [MUST]" in text
    assert "nonce" in output and not list((tmp_path / "out").glob("label-*"))
    with Registry(home / "agency" / "registry.sqlite3") as reg:
        [sub] = reg.submissions()
        assert sub.state == "refused" and sub.label_id is None
        assert ("fail" in {v for *_, v in reg.results(WAVE)})


def _label(tmp_path: Path, runs: Runs, catalog: Catalog, trust: KeyRing,
           home: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The reference's label file (its evidence accepted), what it says, and the JWS itself."""
    label_bundle(runs.reference, catalog, trust, home / "agency" / "registry.sqlite3",
                 home / "agency" / "agency-key.pem", tmp_path / "out", now=dt.datetime.now(dt.UTC))
    [path] = (tmp_path / "out").glob("label-*.json")
    signed = json.loads(path.read_text())
    return path, unverified_payload(signed), signed


def test_label_verify_says_why_a_label_is_invalid(runs: Runs, catalog: Catalog, trust: KeyRing, home: Path,
                                                  tmp_path: Path) -> None:
    path, label, signed = _label(tmp_path, runs, catalog, trust, home)
    pub = home / "agency" / "agency-key.pub.pem"

    def check(doc: object, *extra: str | Path) -> tuple[int, str]:
        p = tmp_path / "check.json"
        p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
        r = usine("label", "verify", p, "--key", pub, *extra)
        return r.exit_code, r.output

    code, out = check(tampered(signed, versions=["1.0.0", "2.0.0"]))
    assert code == 1 and "INVALID (edited after signing)" in out
    code, out = check(AGENCY.sign_document({**label, "expires": "forever"}))
    assert code == 1 and "INVALID (malformed" in out and "expires" in out
    forged = sign_label({k: v for k, v in label.items() if k not in ("issuer", "format")},
                        SigningKey.from_seed(b"a forger")).signed
    code, out = check(forged)
    assert code == 1 and "INVALID (signed by an untrusted key)" in out
    other = tmp_path / "other.pub.pem"
    other.write_text(SigningKey.from_seed(b"another agency").verify_key.pem())
    r = usine("label", "verify", path, "--key", other)
    assert r.exit_code == 1 and "untrusted key" in r.output
    code, out = check(signed, "--at", "2029-01-01T00:00:00Z")
    assert code == 1 and "INVALID (expired)" in out
    code, out = check(signed, "--at", "2020-01-01T00:00:00Z")
    assert code == 1 and "not yet valid" in out
    revocations = tmp_path / "revocations.json"
    revocations.write_text(json.dumps(sign_revocations(
        [{"label_id": label["label_id"], "software_id": label["software"]["id"], "version": "1.0.0", "wave": WAVE,
          "revoked": label["issued"], "reason": "fraud"}], AGENCY)))
    code, out = check(signed, "--revocations", revocations)
    assert code == 1 and "INVALID (revoked)" in out
    code, out = check(AGENCY.sign_document({**label, "format": "usine.label/1"}))
    assert code == 1 and "INVALID (retired label format)" in out and "usine.label/1" in out
    assert check("{not json")[0] == 2
    assert check({"format": "usine.bundle/1"})[0] == 2
    assert check(label)[0] == 2  # what the label says, without its signature, is not a label
    assert usine("label", "verify", tmp_path / "absent.json", "--key", pub).exit_code == 2
    fresh = tmp_path / "fresh.json"
    fresh.write_text(json.dumps(sign_revocations([], AGENCY)))
    assert check(signed, "--revocations", fresh)[0] == 0


def test_no_label_once_the_wave_labels_have_expired(runs: Runs, catalog: Catalog, trust: KeyRing,
                                                     tmp_path: Path) -> None:
    registry, key = tmp_path / "r.sqlite3", tmp_path / "agency.pem"
    outcome = decide_bundle(runs.reference, catalog, trust, registry, key, tmp_path / "out",
                            now=dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    assert not outcome.labelled and outcome.recorded and not key.exists()
    assert outcome.doc["outcome"] == "refused" and outcome.exit_code == 1
    assert "expired on 2028-12-31" in outcome.doc["reasons"][0]["message"]


def test_an_unreadable_or_unverified_bundle_creates_no_registry(runs: Runs, catalog: Catalog, trust: KeyRing,
                                                                tmp_path: Path) -> None:
    registry = tmp_path / "r.sqlite3"
    outcome = decide_bundle(runs.other_seed, catalog, trust, registry, tmp_path / "k.pem", tmp_path / "out")
    assert not outcome.recorded and not registry.exists()
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(InputError):
        decide_bundle(tmp_path / "x.zip", catalog, trust, registry, tmp_path / "k.pem", tmp_path / "out")
    assert not registry.exists()


def test_a_run_of_a_software_id_outside_its_vendors_namespace_is_not_decided(runs: Runs, catalog: Catalog,
                                                                             trust: KeyRing, tmp_path: Path) -> None:
    """A vendor whose run names another vendor's software id (here through a harness token the sandbox should not
    have issued: its traces are genuinely signed) gets no label for it: that label's revocation would block the
    other vendor's version and stop its payments (revocations find a version by software id)."""
    from conformity.signing import canonical_json
    from tests.agency.helpers import members, write_zip

    ours = json.loads(members(runs.reference)["manifest.json"])["software"]["id"]
    theirs = "acme.ehr"
    key = SigningKey.load(runs.sandbox_key)
    files: dict[str, bytes] = {}
    for name, data in members(runs.reference).items():
        if name.startswith("traces/"):
            doc = json.loads(json.dumps(unverified_payload(json.loads(data))).replace(f'"{ours}"', f'"{theirs}"'))
            files[name] = canonical_json(key.sign_document(doc))
        else:
            files[name] = data.replace(f'"{ours}"'.encode(), f'"{theirs}"'.encode())
    bundle = write_zip(tmp_path / "b.zip", files)
    from conformity.agency.verify import verify_bundle

    v = verify_bundle(bundle, catalog, trust)
    assert v.ok and v.identity is not None and v.identity.software_id == theirs, [str(p) for p in v.reasons]
    registry = tmp_path / "r.sqlite3"
    with pytest.raises(InputError, match="not in vendor 'usine-reference'.s namespace"):
        decide_bundle(bundle, catalog, trust, registry, tmp_path / "k.pem", tmp_path / "out")
    assert not registry.exists() and not (tmp_path / "out").exists()


def test_a_run_made_before_its_wave_opened_gets_no_label(runs: Runs, catalog: Catalog, trust: KeyRing,
                                                         tmp_path: Path) -> None:
    """A run whose sessions the sandbox created before the wave opened (2026-01-15 for 2026-W1) was made against a
    wave not yet in force: the time is the sandbox's, signed in every trace, so the vendor cannot move it."""
    sandbox = SigningKey.load(runs.sandbox_key)  # what the sandbox signed on 2026-01-10 (its clock, its key)
    files = members(runs.reference)
    for name in [n for n in files if n.startswith("traces/")]:
        doc = unverified_payload(json.loads(files[name]))
        doc["session"]["created"] = "2026-01-10T09:00:00+00:00"
        files[name] = canonical_json(sandbox.sign_document(doc))
    early = write_zip(tmp_path / "early.zip", files)
    registry, key = tmp_path / "r.sqlite3", tmp_path / "agency.pem"
    outcome = decide_bundle(early, catalog, trust, registry, key, tmp_path / "out", now=DECIDED)
    assert outcome.doc["outcome"] == "refused" and not outcome.labelled
    # "run again" alone sent a vendor to run again at once, to be refused the same way until the wave opens
    assert any("before the wave opened (2026-01-15): run again on or after that day" in r["message"]
               for r in outcome.doc["reasons"]), outcome.doc["reasons"]


def test_a_run_whose_seed_the_vendor_chose_verifies_but_is_refused_with_its_attempt_shown(
        runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> None:
    """A vendor reproducing a run (usine run --seed) gets the same verdicts, and no label: the sandbox signed in
    every trace that the caller chose the seed, and how many runs came before."""
    seed = read_seed(json.loads(members(runs.reference)["manifest.json"])["seed"])
    chosen = extra_run(runs, catalog, "seed-chosen", seed=seed)
    manifest = json.loads(members(chosen)["manifest.json"])
    assert (read_seed(manifest["seed"]), manifest["seed_source"]) == (seed, "caller") and manifest["attempt"] > 1
    registry, key = tmp_path / "r.sqlite3", tmp_path / "agency.pem"
    outcome = decide_bundle(chosen, catalog, trust, registry, key, tmp_path / "out", now=DECIDED)
    assert outcome.doc["outcome"] == "refused" and outcome.recorded and not outcome.labelled
    assert [r["message"] for r in outcome.doc["reasons"]] == [CALLER_SEED_REFUSED], outcome.doc["reasons"]
    assert outcome.doc["run"]["seed_source"] == "caller" and outcome.doc["run"]["attempt"] == manifest["attempt"]
    assert schema_problems("decision", outcome.doc, "decision") == []
    assert f"attempt {manifest['attempt']}, seed chosen by the vendor" in outcome.decision.text()
    # the sandbox's own seed, the same software: labelled (the reference), its attempt in the label's decision
    first = decide_bundle(runs.reference, catalog, trust, registry, key, tmp_path / "out2", now=DECIDED)
    assert first.doc["run"] == first.doc["run"] | {"seed_source": "sandbox", "attempt": 1}
