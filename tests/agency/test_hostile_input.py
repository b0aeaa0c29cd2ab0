"""Bad input the agency reads, through the real commands: JSON nested 100,000 deep (labels, revocation lists,
manifests, reports), unknown members in report.json, evidence of a type that is not allowed even when the
run bound it. Each gets a clear error and a non-zero exit, never a traceback; the registry is unchanged."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conformity.bundle.evidence import Attached, EvidenceFile
from conformity.catalog import Catalog
from conformity.labels import sign_revocations
from conformity.signing import KeyRing, sha256_hex
from tests.agency.helpers import (
    AGENCY,
    SUBSET,
    Runs,
    edit_json,
    extra_run,
    label_bundle,
    members,
    snapshot,
    usine,
    write_zip,
)

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


@pytest.mark.parametrize("deep", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
def test_a_deep_label_is_refused_by_label_verify(deep: bytes, home: Path, tmp_path: Path) -> None:
    pub = tmp_path / "agency.pub.pem"
    pub.write_text(AGENCY.verify_key.pem())
    (tmp_path / "deep.json").write_bytes(deep)
    r = usine("label", "verify", tmp_path / "deep.json", "--key", pub)
    assert r.exit_code == 2 and "nested deeper than 128 levels" in r.output and "Traceback" not in r.output, r.output


def _pending_registry(runs: Runs, tmp_path: Path, home: Path) -> Path:
    r = usine("agency", "decide", runs.reference, "--trust", runs.trust, "--out", tmp_path / "first")
    assert r.exit_code == 4, r.output
    return home / "agency" / "registry.sqlite3"


HOSTILE = {
    "deep-manifest": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "manifest.json": DEEP},
                                             fix_manifest=False), "manifest.json: JSON nested deeper than 128 levels"),
    "deep-report": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "report.json": DEEP_OBJECT}),
                    "report.json: JSON nested deeper than 128 levels"),
    "unknown-report-member": (lambda r, d: write_zip(d / "b.zip", edit_json(members(r.reference), "report.json",
                                                                             lambda rep: rep.update(approved_by="agency"))),
                              "report.json at approved_by: unknown key 'approved_by'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundle_through_verify_and_decide(case: str, runs: Runs, home: Path, tmp_path: Path) -> None:
    registry = _pending_registry(runs, tmp_path, home)
    make, words = HOSTILE[case]
    bad = make(runs, tmp_path)
    before = snapshot(registry)
    r = usine("agency", "verify", bad, "--trust", runs.trust)
    assert r.exit_code == 1 and r.output.startswith("REFUSED") and words in r.output, r.output
    r = usine("agency", "decide", bad, "--trust", runs.trust, "--out", tmp_path / "out")
    assert r.exit_code == 1 and words in r.output and "Traceback" not in r.output, r.output
    assert snapshot(registry) == before and not list((tmp_path / "out").glob("label-*"))


def test_evidence_of_a_refused_type_is_refused_even_when_the_run_bound_it(runs: Runs, catalog: Catalog,
                                                                         tmp_path: Path) -> None:
    """A modified harness could bind anything; the agency judges every evidence file's bytes again."""
    elf = b"\x7fELF\x02\x01\x01" + bytes(200)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17) + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    files = (EvidenceFile("SECURITY-013", "evidence/SECURITY-013/hds.pdf", sha256_hex(elf), len(elf), "application/pdf"),
             EvidenceFile("PATIENTID-015", "evidence/PATIENTID-015/manual.pdf", sha256_hex(png), len(png),
                          "application/pdf"))
    bundle = extra_run(runs, catalog, "hostile-evidence", only=SUBSET + ("SECURITY-013", "PATIENTID-015"),
                       evidence=Attached(files, {files[0].file: elf, files[1].file: png}))
    r = usine("agency", "verify", bundle, "--trust", runs.trust)
    assert r.exit_code == 1, r.output
    assert "evidence/SECURITY-013/hds.pdf: type not allowed: an ELF executable" in r.output
    assert "evidence/PATIENTID-015/manual.pdf: is image/png, the manifest says application/pdf" in r.output


def test_a_stale_or_deep_revocation_list_is_not_relied_on(runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> None:
    done = label_bundle(runs.reference, catalog, KeyRing.from_paths([runs.trust]), home / "agency" / "registry.sqlite3",
                        home / "agency" / "agency-key.pem", tmp_path / "out", now=dt.datetime.now(dt.UTC))
    label = tmp_path / "out" / f"label-{done.doc['label_id']}.json"
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(sign_revocations([], AGENCY, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))))
    r = usine("label", "verify", label, "--revocations", stale)
    assert r.exit_code == 4 and r.output.startswith("REVOCATION LIST STALE") and "VALID:" not in r.output, r.output
    revoked = tmp_path / "revoked-stale.json"
    revoked.write_text(json.dumps(sign_revocations(
        [{"label_id": done.doc["label_id"], "software_id": "usine-reference.refapp", "version": "1.0.0",
          "wave": "2026-W1", "revoked": "2026-06-01T00:00:00Z", "reason": "fraud"}], AGENCY,
        now=dt.datetime(2026, 6, 2, tzinfo=dt.UTC))))
    r = usine("label", "verify", label, "--revocations", revoked)  # stale, but a revocation is for good
    assert r.exit_code == 1 and "INVALID (revoked)" in r.output, r.output
    deep = tmp_path / "deep.json"
    for payload in (DEEP, DEEP_OBJECT):
        deep.write_bytes(payload)
        r = usine("label", "verify", label, "--revocations", deep)
        assert r.exit_code == 2 and "nested deeper than 128 levels" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("target", ["sub_nope", "sub_0123", "lbl_x", "missing-bundle.zip"])
def test_decide_on_a_target_that_is_neither_a_bundle_nor_an_id_says_so(target: str, home: Path,
                                                                       tmp_path: Path) -> None:
    """README walk-through: a mistyped submission id was taken for a bundle path, and the user was told about --trust
    (no trusted sandbox key), not about the id."""
    r = usine("agency", "decide", target, "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert f"{target}: no such bundle file, nor the id of a submission" in r.output and "--trust" not in r.output
    assert not (tmp_path / "out").exists()
