"""Bundle verification: the genuine bundles verify; each tampering is refused for its own reason, and deciding
on it leaves the registry unchanged."""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformity.agency.submit import decide_bundle
from conformity.agency.verify import verify_bundle
from conformity.catalog import Catalog
from conformity.reporting.html import report_html
from conformity.reporting.junit import junit_xml
from conformity.runs import seed_commitment
from conformity.signing import KeyRing, SigningKey, canonical_json, sha256_hex, unverified_payload
from tests.agency.helpers import (
    AGENCY,
    DECIDED,
    DEFECT_FAILS,
    Runs,
    edit_json,
    edit_signed,
    label_bundle,
    members,
    raw_zip,
    snapshot,
    trace_payloads,
    usine,
    write_zip,
)

NOMINAL = "traces/pracauth.login_nominal.json"
DOCUMENTS = "traces/docshare.documents.json"
FAULTS = "traces/pracauth.login_faults.json"


def test_genuine_bundles_verify_and_rederive(runs: Runs, catalog: Catalog, trust: KeyRing) -> None:
    for bundle in (runs.reference, runs.defective):
        v = verify_bundle(bundle, catalog, trust)
        assert v.ok, [str(p) for p in v.reasons]
        assert len(v.rows) == len(v.plan.requirements) > 60  # type: ignore[union-attr]  # the verification under test has a plan (asserted by the test)
    defective = verify_bundle(runs.defective, catalog, trust)
    assert {r.id: r.verdict for r in defective.rows}[DEFECT_FAILS] == "fail"


def _flip_to_pass(files: dict[str, bytes]) -> dict[str, bytes]:
    """The defective bundle's failing verdict turned into a pass everywhere a reader would look."""
    def edit(report: dict[str, Any]) -> None:
        row = next(r for r in report["requirements"] if r["id"] == DEFECT_FAILS)
        row["verdict"], row["findings"] = "pass", [{"message": "nonce checked"}]
        for c in report["checks"]:
            if c["id"] in row["checks"]:
                c["status"], c["findings"] = "pass", [{"message": "nonce checked"}]
        report["summary"].update(passed=True, failed_must=[], must_passed=report["summary"]["must_automated"])
    files = edit_json(files, "report.json", edit)
    report = json.loads(files["report.json"])
    traces = trace_payloads(files)
    return {**files, "junit.xml": junit_xml(report), "report.html": report_html(report, traces).encode()}


def _resign(files: dict[str, bytes], name: str, key: SigningKey, edit: Callable[[Any], None] | None = None) -> dict[str, bytes]:
    doc = unverified_payload(json.loads(files[name]))
    if edit:
        edit(doc)
    return {**files, name: canonical_json(key.sign_document(doc))}


def _bind(bound: dict[str, str] | None) -> Callable[[Any], None]:
    """A trace edit: the session's binding (what only the sandbox could sign, here with its own key)."""

    def edit(doc: dict[str, Any]) -> None:
        doc["session"]["bound_to"] = bound

    return edit


def _drop_faults(doc: dict[str, Any]) -> None:
    """A session whose harness (patched: it runs on the vendor's machine) set none of the scenario's faults, signed by
    the sandbox as it served it: its notes say what the harness claims, the sandbox's own say nothing was set."""
    doc["exchanges"] = [e for e in doc["exchanges"] if e.get("note") != "sandbox.faults"]


def _cut(keep: int, end: bool = False) -> Callable[[Any], None]:
    """A trace edit: the session's first ``keep`` exchanges, what the sandbox signs for a harness (patched: it runs on
    the vendor's machine) that fetches the trace before the scenario's later steps; with ``end``, its end note too."""

    def edit(doc: dict[str, Any]) -> None:
        ex = doc["exchanges"]
        last = next(e for e in reversed(ex) if e.get("note") == "scenario.end")
        doc["exchanges"] = ex[:keep] + ([{**last, "seq": ex[keep - 1]["seq"] + 1}] if end else [])

    return edit


def _start(vendor: dict[str, str] | None = None, **changes: Any) -> Callable[[Any], None]:
    """A trace edit: its scenario.start note as another run of the same software wrote it (the sandbox signs it)."""

    def edit(doc: dict[str, Any]) -> None:
        note = next(e for e in doc["exchanges"] if e.get("note") == "scenario.start")["data"]
        note.update(changes)
        note["vendor"].update(vendor or {})

    return edit


def _harness(files: dict[str, bytes], version: str) -> dict[str, bytes]:
    """The bundle claiming another harness version (the label states it) everywhere but in the signed traces."""
    def edit(doc: dict[str, Any]) -> None:
        doc["harness"]["version"] = version
    files = edit_json(edit_json(files, "manifest.json", edit), "report.json", edit)
    report = json.loads(files["report.json"])
    return {**files, "junit.xml": junit_xml(report), "report.html": report_html(report, trace_payloads(files)).encode()}


def _drop_trace(files: dict[str, bytes], name: str) -> dict[str, bytes]:
    """The bundle without one scenario's trace, its report saying the scenario left none."""
    def edit(report: dict[str, Any]) -> None:
        for s in report["scenarios"]:
            if s["trace"] == name:
                s["trace"] = None
    return edit_json({n: b for n, b in files.items() if n != name}, "report.json", edit)


def _edit_trace(doc: dict[str, Any]) -> None:
    ex = next(e for e in doc["exchanges"] if e.get("kind") == "http")
    ex["response"]["status"] = 299


def _symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("traces/link.json")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _run(**changes: Any) -> Callable[[Any], None]:
    """A trace edit: the session's run as the sandbox recorded it (None: a session outside any run)."""

    def edit(doc: dict[str, Any]) -> None:
        doc["session"]["run"] = None if changes.get("run") is None and "run" in changes else \
            {**doc["session"]["run"], **changes}

    return edit


def _manifest(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key == "referential":
                m["referentials"].update(value)
            else:
                m[key] = value
    return edit


DEEP = b"[" * 100_000 + b"]" * 100_000
HDS = "evidence/SECURITY-013/hds-certificate.pdf"
OTHER_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _evidence(files: dict[str, bytes], req: str, name: str, data: bytes | None,
              media_type: str = "application/pdf") -> dict[str, bytes]:
    """The bundle with one evidence file set (or removed, ``data`` None) everywhere a careful forger would:
    the member, the manifest's and the report's listings (the signed traces cannot be changed)."""
    files = dict(files)
    member = f"evidence/{req}/{name}"
    if data is None:
        files.pop(member, None)
    else:
        files[member] = data

    def edit(doc: dict[str, Any]) -> None:
        listing = [f for f in doc["evidence"].get(req, []) if f["file"] != member]
        if data is not None:
            listing.append({"file": member, "sha256": sha256_hex(data), "bytes": len(data), "media_type": media_type})
        if listing:
            doc["evidence"][req] = listing
        else:
            doc["evidence"].pop(req, None)
    return edit_json(edit_json(files, "manifest.json", edit), "report.json", edit)


#: name → (make the bad bundle from (runs, tmp dir), words one of the reasons must contain)
BAD: dict[str, tuple[Callable[[Runs, Path], Path], tuple[str, ...]]] = {
    "edited-verdict": (lambda r, d: write_zip(d / "b.zip", _flip_to_pass(members(r.defective))),
                       ("re-derived from the trace", "'fail'")),
    "edited-trace": (lambda r, d: write_zip(d / "b.zip", edit_signed(members(r.reference), NOMINAL, _edit_trace)),
                     ("signature does not match the content",)),
    "edited-trace-manifest-kept": (lambda r, d: write_zip(d / "b.zip", edit_signed(members(r.reference), NOMINAL, _edit_trace),
                                                          fix_manifest=False), ("SHA-256 differs",)),
    "swapped-trace-other-vendor": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference),
                                                                         NOMINAL: members(r.defective)[NOMINAL]}),
                                   ("the session is bound to",)),
    "swapped-trace-other-seed": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference),
                                                                       NOMINAL: members(r.other_seed)[NOMINAL]}),
                                 ("trace of another run", "seed")),
    "swapped-trace-same-seed-other-run": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference),
                                                                                NOMINAL: members(r.rerun)[NOMINAL]}),
                                          ("trace of another run", "run_id")),
    "edited-html-report": (lambda r, d: write_zip(d / "b.zip", {**members(r.defective), "report.html": members(
        r.defective)["report.html"].replace(b"MUST requirements failed", b"every automated MUST passed")}),
                           ("differs from what report.json and the traces render to",)),
    "missing-file": (lambda r, d: write_zip(d / "b.zip", {n: b for n, b in members(r.reference).items() if n != NOMINAL},
                                            fix_manifest=False), ("listed file is missing",)),
    "extra-file": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "notes.txt": b"hello"},
                                          fix_manifest=False), ("extra file",)),
    "zip-slip": (lambda r, d: raw_zip(d / "b.zip", [*members(r.reference).items(), ("../../evil.json", b"{}")]),
                 ("path escapes the bundle",)),
    "absolute-path": (lambda r, d: raw_zip(d / "b.zip", [*members(r.reference).items(), ("/etc/evil.json", b"{}")]),
                      ("absolute path",)),
    "symlink": (lambda r, d: raw_zip(d / "b.zip", [*members(r.reference).items(), (_symlink(), b"/etc/passwd")]),
                ("symbolic link",)),
    "oversized-member": (lambda r, d: raw_zip(d / "b.zip", [*members(r.reference).items(),
                                                            ("traces/huge.json", bytes(65 * 1024 * 1024))]),
                         ("exceeds the 67108864-byte limit; not read",)),
    "unknown-wave": (lambda r, d: write_zip(d / "b.zip", edit_json(members(r.reference), "manifest.json",
                                                                    _manifest(wave="2099-W9"))), ("unknown wave",)),
    "category-the-wave-lacks": (lambda r, d: write_zip(d / "b.zip", edit_json(members(r.reference), "manifest.json",
                                                                               _manifest(category="RADIOLOGY"))),
                                ("has no category 'RADIOLOGY'",)),
    "other-referential-version": (lambda r, d: write_zip(d / "b.zip", edit_json(members(r.reference), "manifest.json",
                                                                                 _manifest(referential={"DOCSHARE": "2.0"}))),
                                  ("pins DOCSHARE 1.0",)),
    "untrusted-key": (lambda r, d: write_zip(d / "b.zip", _resign(members(r.reference), NOMINAL,
                                                                  SigningKey.from_seed(b"not the sandbox"))),
                      ("untrusted key",)),
    "partial-run": (lambda r, d: r.other_seed, ("does not cover",)),
    "session-in-no-run": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _run(run=None))),
        (NOMINAL, "session.run", "belongs to no run issued by the sandbox")),
    "trace-attempt-edited": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _run(attempt=7))),
        (NOMINAL, "session.run", "attempt 7 (expected 1)")),
    "trace-of-another-scenario-of-the-run": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _run(scenario="PRACAUTH-004"))),
        (NOMINAL, "session.run", "scenario 'PRACAUTH-004'")),
    "manifest-attempt-lowered": (lambda r, d: write_zip(d / "b.zip", edit_json(
        edit_json(members(r.rerun), "manifest.json", _manifest(attempt=1)), "report.json",
        lambda rep: rep.update(attempt=1))), ("session.run", "attempt 3 (expected 1)")),
    # QA (seedreveal): the run seed is the sandbox's secret until the finish; every trace signs its commitment
    "manifest-seed-not-the-committed-one": (lambda r, d: write_zip(d / "b.zip", edit_json(
        edit_json(members(r.reference), "manifest.json", _manifest(seed=12345)), "report.json",
        lambda rep: rep.update(seed=12345))), ("session.run", "seed 12345 is not the one the sandbox committed to")),
    "trace-committed-to-another-seed": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _run(seed_commitment=seed_commitment(7)))),
        (NOMINAL, "session.run", "not the one the sandbox committed to")),
    "trace-of-a-sandbox-that-committed-to-nothing": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _run(seed_commitment=None))),
        (NOMINAL, "session.run", "not the one the sandbox committed to")),
    "manifest-seed-source-hidden": (lambda r, d: write_zip(d / "b.zip", edit_json(
        edit_json(members(r.rerun), "manifest.json", _manifest(seed_source="sandbox")), "report.json",
        lambda rep: rep.update(seed_source="sandbox"))), ("session.run", "seed_source 'caller' (expected 'sandbox')")),
    "report-attempt-not-the-manifests": (lambda r, d: write_zip(d / "b.zip", edit_json(
        members(r.reference), "report.json", lambda rep: rep.update(attempt=9))),
        ("report.json", "attempt", "differs from the manifest's")),
    "session-not-bound (admin token)": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _bind(None))),
        ("created with the sandbox's admin token",)),
    "report-unknown-top-level-member": (lambda r, d: write_zip(d / "b.zip", edit_json(
        members(r.reference), "report.json", lambda rep: rep.update(labelled=True, label_id="lbl_selfissued00"))),
        ("report.json", "unknown key")),
    "manifest-created-not-rfc3339": (lambda r, d: write_zip(d / "b.zip", edit_json(
        members(r.reference), "manifest.json", lambda m: m.update(created="2026-05-01 10:00:00"))),
        ("manifest.json", "created", "date-time")),
    "report-started-not-rfc3339": (lambda r, d: write_zip(d / "b.zip", edit_json(
        members(r.reference), "report.json", lambda rep: rep.update(started="yesterday"))),
        ("report.json", "started", "date-time")),
    "deep-json-manifest": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "manifest.json": DEEP},
                                                  fix_manifest=False), ("manifest.json", "nested deeper than 128")),
    "deep-json-report": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "report.json": DEEP}),
                         ("report.json", "nested deeper than 128")),
    "duplicate-name-manifest": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "manifest.json": members(
        r.reference)["manifest.json"].replace(b"{", b'{"wave": "2099-W9", ', 1)}, fix_manifest=False),
                                ("manifest.json", "the name 'wave' appears twice")),
    "duplicate-name-report": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), "report.json": members(
        r.reference)["report.json"].replace(b"{", b'{"run_id": "forged-run-id", ', 1)}),
                              ("report.json", "the name 'run_id' appears twice")),
    "deep-json-trace": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), NOMINAL: DEEP}),
                        (NOMINAL, "nested deeper than 128")),
    "evidence-swapped": (lambda r, d: write_zip(d / "b.zip", _evidence(members(r.reference), "SECURITY-013",
                                                                       "hds-certificate.pdf", OTHER_PDF)),
                         ("bound in its signed note differs from the manifest's for SECURITY-013",)),
    "evidence-swapped-manifest-kept": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference), HDS: OTHER_PDF},
                                                              fix_manifest=False), (HDS, "SHA-256 differs")),
    "evidence-added-after-the-run": (lambda r, d: write_zip(d / "b.zip", _evidence(
        members(r.reference), "SECURITY-011", "security-txt.txt", b"https://refapp.example/.well-known/security.txt\n",
        "text/plain")), ("differs from the manifest's for SECURITY-011",)),
    "evidence-removed-after-the-run": (lambda r, d: write_zip(d / "b.zip", _evidence(
        members(r.reference), "SECURITY-013", "hds-certificate.pdf", None)), ("differs from the manifest's for SECURITY-013",)),
    "evidence-member-not-listed": (lambda r, d: write_zip(d / "b.zip", {**members(r.reference),
                                                                         "evidence/SECURITY-011/x.txt": b"hello\n"}),
                                   ("does not list for any requirement",)),
    "evidence-for-an-automated-requirement": (lambda r, d: write_zip(d / "b.zip", _evidence(
        members(r.reference), "PRACAUTH-004", "proof.pdf", OTHER_PDF)), ("proven by automated checks",)),
    "faults-left-out-by-a-patched-harness": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), "traces/pracauth.login_faults.json", SigningKey.load(r.sandbox_key), _drop_faults)),
        ("sandbox.faults", "not scenario pracauth.login_faults's")),
    "trace-fetched-before-the-scenario-ended": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), DOCUMENTS, SigningKey.load(r.sandbox_key), _cut(1))),
        (DOCUMENTS, "scenario.end", "before the scenario ended")),
    "trace-cut-with-its-end-note-kept": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), DOCUMENTS, SigningKey.load(r.sandbox_key), _cut(1, end=True))),
        (DOCUMENTS, "driver.perform", "steps of scenario docshare.documents")),
    "failing-trace-dropped": (lambda r, d: write_zip(d / "b.zip", _drop_trace(_flip_to_pass(members(r.defective)),
                                                                           FAULTS)),
                              ("re-derived from the trace: 'error'", "no trace for scenario")),
    "trace-of-another-version": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _start(vendor={"version": "0.9.0"}))),
        ("trace of another run", "vendor.version '0.9.0'")),
    "trace-of-another-category": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key), _start(category="CLINIC"))),
        ("trace of another run", "category 'CLINIC'")),
    "harness-version-claimed": (lambda r, d: write_zip(d / "b.zip", _harness(members(r.reference), "9.9.9")),
                                ("trace of another run", "harness '0.1.0' (expected '9.9.9')")),
    "session-bound-to-another-vendor": (lambda r, d: write_zip(d / "b.zip", _resign(
        members(r.reference), NOMINAL, SigningKey.load(r.sandbox_key),
        _bind({"vendor_id": "acme", "software_id": "acme.ehr"}))), ("the session is bound to",)),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bundle_is_refused_and_the_registry_unchanged(case: str, runs: Runs, catalog: Catalog, trust: KeyRing,
                                                          tmp_path: Path) -> None:
    make, words = BAD[case]
    bad = make(runs, tmp_path)
    v = verify_bundle(bad, catalog, trust)
    reasons = [str(p) for p in v.reasons]
    assert not v.ok
    assert any(all(w in r for w in words) for r in reasons), reasons
    registry, key = tmp_path / "registry.sqlite3", tmp_path / "agency.pem"
    AGENCY.save(key)
    assert label_bundle(runs.reference, catalog, trust, registry, key, tmp_path / "out").labelled
    before = snapshot(registry)
    outcome = decide_bundle(bad, catalog, trust, registry, key, tmp_path / "out-bad", now=DECIDED)
    assert not outcome.labelled and not outcome.recorded
    assert snapshot(registry) == before
    assert sorted(p.name for p in (tmp_path / "out-bad").iterdir()) == [
        f"refusal-{outcome.doc['submission']}.json", f"refusal-{outcome.doc['submission']}.txt"]
    assert words[0] in (tmp_path / "out-bad" / f"refusal-{outcome.doc['submission']}.txt").read_text()


def test_edited_verdict_is_caught_only_by_rederivation(runs: Runs, catalog: Catalog, trust: KeyRing,
                                                       tmp_path: Path) -> None:
    bad = BAD["edited-verdict"][0](runs, tmp_path)
    reasons = verify_bundle(bad, catalog, trust).reasons
    assert reasons and all(p.file == "report.json" for p in reasons), [str(p) for p in reasons]
    assert any(p.where.startswith("requirements[") and DEFECT_FAILS in p.message for p in reasons)


def test_every_reason_is_listed_not_only_the_first(runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> None:
    files = edit_signed(members(runs.reference), NOMINAL, _edit_trace)
    files = {**files, "notes.txt": b"x", "../up.json": b"{}"}
    del files["traces/directory.searches.json"]
    bad = raw_zip(tmp_path / "b.zip", list(files.items()))
    text = "\n".join(str(p) for p in verify_bundle(bad, catalog, trust).reasons)
    for words in ("SHA-256 differs", "signature does not match", "extra file", "path escapes", "listed file is missing"):
        assert words in text, text


def test_verify_cli_exit_codes(runs: Runs, home: Path, tmp_path: Path) -> None:
    ok = usine("agency", "verify", runs.reference, "--trust", runs.trust)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("VERIFIED:") and "64/64 automated MUST passed" in ok.output
    refused = usine("agency", "verify", BAD["missing-file"][0](runs, tmp_path), "--trust", runs.trust)
    assert refused.exit_code == 1 and "REFUSED" in refused.output and "listed file is missing" in refused.output
    (tmp_path / "not.zip").write_bytes(b"PK\x03\x04 not really")
    unreadable = usine("agency", "verify", tmp_path / "not.zip", "--trust", runs.trust)
    assert unreadable.exit_code == 2 and "not a zip archive" in unreadable.output
    assert usine("agency", "verify", tmp_path / "absent.zip", "--trust", runs.trust).exit_code == 2


def test_trusted_keys_from_the_environment_and_the_default_folder(runs: Runs, home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert usine("agency", "verify", runs.reference).exit_code == 2  # no trusted key anywhere
    monkeypatch.setenv("USINE_TRUSTED_SANDBOX_KEYS", str(runs.trust))
    assert usine("agency", "verify", runs.reference).exit_code == 0
    monkeypatch.delenv("USINE_TRUSTED_SANDBOX_KEYS")
    folder = home / "agency" / "trusted-sandbox-keys"
    folder.mkdir(parents=True)
    (folder / "sandbox.pem").write_bytes(runs.trust.read_bytes())
    assert usine("agency", "verify", runs.reference).exit_code == 0
    (folder / "sandbox.pem").write_bytes(SigningKey.from_seed(b"another sandbox").verify_key.pem().encode())
    untrusted = usine("agency", "verify", runs.reference)
    assert untrusted.exit_code == 1 and "untrusted key" in untrusted.output


def test_a_scenario_stopped_by_its_driver_set_only_its_first_faults_and_that_is_no_forgery(runs: Runs) -> None:
    """The sandbox's fault notes against the scenario's plan: all of them; or the first ones when the driver failed
    for good in a step before the next fault (the run stops there); never fewer with later steps run."""
    from conformity.agency.verify import _faults_problems

    scenario = "pracauth.login_faults"
    doc = unverified_payload(json.loads(members(runs.reference)[f"traces/{scenario}.json"]))
    assert _faults_problems("t", scenario, doc) == []
    ex = doc["exchanges"]
    faults = [i for i, e in enumerate(ex) if e.get("note") == "sandbox.faults"]
    second = faults[1]
    # the step after the second fault crashes the driver: nothing after it
    step = next(i for i in range(second, len(ex)) if ex[i].get("note") == "driver.perform")
    crashed = {**doc, "exchanges": ex[:step] + [{**ex[step], "data": {**ex[step]["data"], "failure": {"kind": "crash"}}}]}
    assert _faults_problems("t", scenario, crashed) == []
    # the third fault left out, every later step still run (a patched harness): refused
    skipped = {**doc, "exchanges": [e for i, e in enumerate(ex) if i != faults[2]]}
    assert _faults_problems("t", scenario, skipped)[0].where == "sandbox.faults"
    # the same with a crash claimed at the end: the later steps are in the trace, refused
    claimed = {**skipped, "exchanges": skipped["exchanges"] + [{"kind": "note", "note": "driver.failure",
                                                                "data": {"kind": "crash"}}]}
    assert _faults_problems("t", scenario, claimed)[0].where == "sandbox.faults"


def test_a_scenario_stopped_by_its_driver_shows_fewer_steps_and_that_is_no_forgery(runs: Runs) -> None:
    """Every step of the scenario has its driver.perform note, then scenario.end; fewer steps only after a driver
    failure that stops the scenario (the runner's break), never a trace merely cut short."""
    from conformity.agency.verify import _steps_problems

    scenario = "docshare.documents"
    doc = unverified_payload(json.loads(members(runs.reference)[DOCUMENTS]))
    assert _steps_problems("t", scenario, doc) == []
    ex = doc["exchanges"]
    performs = [i for i, e in enumerate(ex) if e.get("note") == "driver.perform"]
    end = next(e for e in ex if e.get("note") == "scenario.end")
    third = ex[performs[2]]
    crashed = {**doc, "exchanges": ex[:performs[2]] + [{**third, "data": {**third["data"], "failure": {"kind": "crash"}}},
                                                       end]}
    assert _steps_problems("t", scenario, crashed) == []
    cut = {**doc, "exchanges": ex[:performs[2]] + [end]}
    assert _steps_problems("t", scenario, cut)[0].where == "driver.perform"
    swapped = [*ex]
    swapped[performs[0]], swapped[performs[1]] = swapped[performs[1]], swapped[performs[0]]
    assert _steps_problems("t", scenario, {**doc, "exchanges": swapped})[0].where == "driver.perform"
    assert _steps_problems("t", scenario, {**doc, "exchanges": [e for e in ex if e is not end]})[0].where == \
        "scenario.end"


def test_a_missing_trust_path_says_what_to_give(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No trusted key where looked: the message names the path and what to do (--trust, the variable, the folder)."""
    from conformity.agency.submit import TRUST_ENV, default_trust_dir, trusted_sandbox_keys
    from conformity.errors import InputError

    monkeypatch.setenv("USINE_HOME", str(tmp_path / "home"))
    for given in ([], [tmp_path / "absent.pem"]):
        with pytest.raises(InputError) as refused:
            trusted_sandbox_keys(given)
        message = str(refused.value)
        assert str(given[0] if given else default_trust_dir()) in message
        assert "--trust" in message and TRUST_ENV in message and "trace-signing.pub.pem" in message


def test_a_folder_holding_private_keys_is_refused_as_trust_saying_why(tmp_path: Path) -> None:
    """``--trust`` on the sandbox's own ``DATA/keys`` (private keys beside the public ones) is refused, naming each
    private key and what to give instead, not with the PEM parser's complaint about a missing public-key block."""
    from conformity.agency.submit import trusted_sandbox_keys
    from conformity.errors import InputError
    from conformity.signing import SigningKey

    keys = tmp_path / "keys"
    keys.mkdir()
    SigningKey.generate().save(keys / "trace-signing.pem")
    SigningKey.generate().save(keys / "infrastructure-signing.pem")
    for given in (keys, keys / "trace-signing.pem"):
        with pytest.raises(InputError) as refused:
            trusted_sandbox_keys([given])
        problems = refused.value.problems
        assert {Path(p.file).name for p in problems} == (
            {"trace-signing.pem", "infrastructure-signing.pem"} if given == keys else {"trace-signing.pem"})
        assert all(p.where == "--trust" and "private key" in p.message and "trace-signing.pub.pem" in p.message
                   for p in problems)
    public = tmp_path / "public"
    public.mkdir()
    (public / "trace-signing.pub.pem").write_bytes((keys / "trace-signing.pub.pem").read_bytes())
    assert len(trusted_sandbox_keys([public])) == 1
