"""Attack 2 of issue 9: no label before a reviewer looked at the evidence no test can judge.

A run whose document/manual MUST requirements are not reviewed is pending (exit 4, no label); a
rejected MUST refuses it (final); a later review supersedes an earlier one, which stays in history;
SHOULD requirements never block; reviews that make no sense are refused and change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conformity.agency.registry import Registry
from conformity.catalog import Catalog
from conformity.signing import KeyRing, unverified_payload
from tests.agency.helpers import Runs, accept_all, snapshot, usine

REJECTED = "SECURITY-013"


def _decide(runs: Runs, target: Path | str, out: Path) -> tuple[int, str]:
    r = usine("agency", "decide", target, "--trust", runs.trust, "--out", out)
    return r.exit_code, r.output


def _review(submission: str, *args: str) -> tuple[int, str]:
    r = usine("agency", "review", submission, *args)
    return r.exit_code, r.output


@pytest.fixture
def pending(runs: Runs, home: Path, tmp_path: Path) -> tuple[Path, str, list[str]]:
    """The reference decided once: (registry, submission id, MUST requirements awaiting review)."""
    code, output = _decide(runs, runs.reference, tmp_path / "first")
    assert code == 4, output
    doc = json.loads(next((tmp_path / "first").glob("pending-sub_*.json")).read_text())
    return home / "agency" / "registry.sqlite3", doc["submission"], [a["id"] for a in doc["awaiting_review"]]


def test_no_label_while_reviews_are_pending(runs: Runs, pending: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    registry, sub, awaiting = pending
    assert len(awaiting) == 14  # every document/manual MUST of 2026-W1 HOSPITAL
    with Registry(registry) as reg:
        s = reg.get(sub)
        assert s.state == "pending" and s.label_id is None and not reg.labels()
        assert [h[2] for h in reg.history(sub)] == ["submitted", "verified", "pending"]
        assert len(reg.evidence(sub)) == 17
    before = snapshot(registry)
    assert _review(sub, *awaiting[:-1], "--accept", "--reason", "read", "--reviewer", "A")[0] == 0
    code, output = _decide(runs, sub, tmp_path / "out")  # accepted once: a second reviewer must confirm (four-eyes)
    assert code == 4 and f"{len(awaiting)} MUST requirement(s) await the agency's review" in output
    assert "accepted by A, awaits a second reviewer (four-eyes)" in output
    assert _review(sub, *awaiting[:-1], "--accept", "--reason", "read again", "--reviewer", "B")[0] == 0
    code, output = _decide(runs, sub, tmp_path / "out")  # one MUST still unreviewed: still pending
    assert code == 4 and "1 MUST requirement(s) await the agency's review" in output and awaiting[-1] in output
    assert not list((tmp_path / "out").glob("label-*"))
    with Registry(registry) as reg:
        assert reg.get(sub).state == "pending" and not reg.labels()
        assert [h[2] for h in reg.history(sub)] == ["submitted", "verified", "pending"] + ["reviewed"] * 26
    assert snapshot(registry) != before  # the reviews, and only them, were recorded


def test_a_rejected_must_refuses_the_label_for_good(runs: Runs, pending: tuple[Path, str, list[str]],
                                                     tmp_path: Path) -> None:
    registry, sub, awaiting = pending
    accept_all(registry, sub, except_=(REJECTED,), when=dt.datetime.now(dt.UTC))
    code, output = _review(sub, REJECTED, "--reject", "--reviewer", "B. Martin", "--reason",
                           "an ISO 27001 certificate, not a health data hosting (HDS) certificate")
    assert code == 0 and "deciding refuses it" in output, output
    code, output = _decide(runs, sub, tmp_path / "out")
    assert code == 1 and output.startswith("REFUSED: RefApp 1.0.0"), output
    assert f"- {REJECTED} [MUST, document]" in output and "rejected by B. Martin" in output
    doc = json.loads(next((tmp_path / "out").glob("refusal-sub_*.json")).read_text())
    assert [r["id"] for r in doc["rejected_reviews"]] == [REJECTED] and not doc["failed_requirements"]
    assert not list((tmp_path / "out").glob("label-*"))
    before = snapshot(registry)
    code, output = _review(sub, REJECTED, "--accept", "--reviewer", "B. Martin", "--reason", "changed my mind")
    assert code == 2 and "final" in output  # a refused submission is final: a new run is needed
    code, output = _decide(runs, runs.reference, tmp_path / "again")
    assert code == 1 and "already decided" in output
    assert snapshot(registry) == before
    with Registry(registry) as reg:
        assert reg.get(sub).state == "refused" and not reg.labels()


def test_a_refusal_tells_a_must_accepted_once_from_one_never_reviewed(runs: Runs, pending: tuple[Path, str, list[str]],
                                                                     tmp_path: Path) -> None:
    """Before, a refusal listed every MUST not yet accepted as "not reviewed", one a reviewer had accepted (awaiting
    the second reviewer) included: the vendor read that nobody had looked at it."""
    _, sub, awaiting = pending
    once, never = awaiting[0], awaiting[1]
    assert _review(sub, once, "--accept", "--reason", "read", "--reviewer", "A. Petit")[0] == 0
    assert _review(sub, REJECTED, "--reject", "--reason", "not an HDS certificate", "--reviewer", "B. Martin")[0] == 0
    code, output = _decide(runs, sub, tmp_path / "out")
    assert code == 1, output
    line = next(x for x in output.splitlines() if "other MUST requirement(s)" in x)
    assert "not reviewed" not in line and "not accepted on review" in line, line
    assert f"{once} (accepted by A. Petit, awaits a second reviewer)" in line and f", {never}," in line, line


def test_a_later_review_supersedes_and_the_earlier_stays(runs: Runs, pending: tuple[Path, str, list[str]],
                                                         tmp_path: Path) -> None:
    registry, sub, _ = pending
    assert _review(sub, REJECTED, "--reject", "--reviewer", "B. Martin", "--reason", "scope unclear")[0] == 0
    assert _review(sub, REJECTED, "--accept", "--reviewer", "C. Durand", "--reason", "scope covers activities 1-6")[0] == 0
    assert _review(sub, REJECTED, "--accept", "--reviewer", "D. Petit", "--reason", "confirmed: activities 1-6")[0] == 0
    accept_all(registry, sub, except_=(REJECTED, "DOCSHARE-026"), when=dt.datetime.now(dt.UTC))
    code, output = _review(sub, "DOCSHARE-026", "--reject", "--reviewer", "B. Martin", "--reason", "no PDF/A profile")
    assert code == 0 and "every applicable MUST is passed or accepted" in output
    code, output = _decide(runs, sub, tmp_path / "out")
    assert code == 0 and output.startswith("LABELLED"), output  # a rejected SHOULD does not block
    label = unverified_payload(json.loads(next((tmp_path / "out").glob("label-*.json")).read_text()))
    reviewed = {r["id"]: r for r in label["requirements_reviewed"]}
    assert reviewed[REJECTED]["verdict"] == "accepted" and reviewed[REJECTED]["reviewer"] == "D. Petit"
    first = reviewed[REJECTED]["first_review"]
    assert (first["reviewer"], first["reason"]) == ("C. Durand", "scope covers activities 1-6")
    assert first["reviewed"] <= reviewed[REJECTED]["reviewed"]
    assert reviewed["DOCSHARE-026"]["verdict"] == "rejected" and "SECURITY-011" not in reviewed
    shown = usine("agency", "registry", "show", sub)
    assert shown.exit_code == 0
    assert f"{REJECTED} rejected by B. Martin: scope unclear (superseded)" in shown.output
    assert f"{REJECTED} accepted by C. Durand: scope covers activities 1-6 (first review, confirmed by D. Petit)\n" \
        in shown.output
    assert f"{REJECTED} [MUST, document] accepted by D. Petit" in shown.output
    with Registry(registry) as reg:
        assert [r.verdict for r in reg.reviews(sub) if r.requirement == REJECTED] == ["rejected", "accepted", "accepted"]


def test_four_eyes_the_first_reviewer_cannot_give_the_second_acceptance(pending: tuple[Path, str, list[str]]) -> None:
    registry, sub, _ = pending
    assert _review(sub, REJECTED, "--accept", "--reviewer", "C. Durand", "--reason", "HDS scope 1-6")[0] == 0
    before = snapshot(registry)
    code, output = _review(sub, REJECTED, "--accept", "--reviewer", "C. Durand", "--reason", "still fine")
    assert code == 2 and "must be by another reviewer (four-eyes rule)" in output, output
    assert snapshot(registry) == before
    assert _review(sub, REJECTED, "--accept", "--reviewer", "E. Leroy", "--reason", "confirmed")[0] == 0


#: review arguments that must be refused (exit 2, registry unchanged) → a word of the message
BAD_REVIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "automated-requirement": (("PRACAUTH-004", "--accept"), "proven by automated checks"),
    "not-applicable-requirement": (("ETHICS-001", "--accept"), "does not apply"),
    "unknown-requirement": (("NOPE-999", "--accept"), "does not apply"),
    "document-without-evidence": (("SECURITY-011", "--accept"), "carries no evidence"),
    "one-bad-id-among-good-ones": (("SECURITY-013", "PATIENTID-015", "PRACAUTH-004", "--accept"), "automated"),
    "neither-accept-nor-reject": (("SECURITY-013",), "--accept or --reject"),
    "both-accept-and-reject": (("SECURITY-013", "--accept", "--reject"), "--accept or --reject"),
    "empty-reason": (("SECURITY-013", "--accept", "--reason", "   "), "cannot be empty"),
    "control-character-in-reason": (("SECURITY-013", "--accept", "--reason", "ok\x1b[2J"), "control character"),
    "reviewer-name-too-long": (("SECURITY-013", "--accept", "--reviewer", "x" * 201), "longer than 200"),
}


@pytest.mark.parametrize("case", sorted(BAD_REVIEWS))
def test_a_review_that_makes_no_sense_is_refused_and_changes_nothing(case: str, pending: tuple[Path, str, list[str]]) -> None:
    registry, sub, _ = pending
    args, words = BAD_REVIEWS[case]
    extra = [] if "--reason" in args else ["--reason", "read"]
    extra += [] if "--reviewer" in args else ["--reviewer", "A. Reviewer"]
    before = snapshot(registry)
    code, output = _review(sub, *args, *extra)
    assert code == 2 and words in output, output
    assert "Traceback" not in output
    assert snapshot(registry) == before


def test_reviews_of_a_refused_or_unknown_submission_are_refused(runs: Runs, home: Path, tmp_path: Path) -> None:
    assert _decide(runs, runs.defective, tmp_path / "out")[0] == 1
    registry = home / "agency" / "registry.sqlite3"
    with Registry(registry) as reg:
        [s] = reg.submissions()
    before = snapshot(registry)
    code, output = _review(s.id, "SECURITY-013", "--accept", "--reason", "x", "--reviewer", "A")
    assert code == 2 and "refused" in output and "final" in output
    assert _review("sub_00000000000000000000", "SECURITY-013", "--accept", "--reason", "x", "--reviewer", "A")[0] == 2
    assert _decide(runs, "sub_00000000000000000000", tmp_path / "out")[0] == 2
    assert snapshot(registry) == before
    doc = json.loads(next((tmp_path / "out").glob("refusal-sub_*.json")).read_text())
    assert {m["id"] for m in doc["missing_evidence"]} >= {"SECURITY-013", "PATIENTID-015"}  # its vendor.toml has none


def test_the_reviewer_reads_the_evidence_the_run_bound(pending: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    registry, sub, _ = pending
    r = usine("agency", "evidence", sub, REJECTED, "--out", tmp_path / "ev")
    assert r.exit_code == 0, r.output
    got = tmp_path / "ev" / "evidence" / REJECTED / "hds-certificate.pdf"
    assert got.read_bytes() == (Path(__file__).resolve().parents[2] / "examples" / "vendors" / "health" / "reference" / "evidence"
                                / "hds-certificate.pdf").read_bytes()
    everything = usine("agency", "evidence", sub, "--out", tmp_path / "all")
    assert everything.exit_code == 0 and len(list((tmp_path / "all").rglob("*.*"))) == 17
    assert usine("agency", "evidence", sub, "SECURITY-011", "--out", tmp_path / "none").exit_code == 2


def test_evidence_whose_stored_bytes_changed_writes_nothing(pending: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    """Before, the files were checked one by one as written: a damaged file stopped the command (exit 2) after the
    files before it were written, a reviewer's folder half-filled."""
    import sqlite3

    registry, sub, _ = pending
    with Registry(registry) as reg:
        files = sorted(reg.evidence(sub), key=lambda e: e.file)
    db = sqlite3.connect(registry)  # the bytes damaged under the registry (a disk, a restore), not through usine
    with db:
        [trigger] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'evidence_blobs_never_changed'").fetchone()
        db.execute("DROP TRIGGER evidence_blobs_never_changed")
        db.execute("UPDATE evidence_blobs SET data = ? WHERE sha256 = ?", (b"edited", files[-1].sha256))
        db.execute(trigger)
    db.close()
    r = usine("agency", "evidence", sub, "--out", tmp_path / "review")
    assert r.exit_code == 2 and "stored bytes do not match their SHA-256" in r.output, r.output
    assert not (tmp_path / "review").exists()


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


def test_evidence_that_fails_part_way_leaves_the_folder_as_it_was(pending: tuple[Path, str, list[str]], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, each file was put in place as written: a disk that filled on the second file left the first one
    written, a reviewer's folder holding part of a submission's evidence beside files of an earlier one."""
    import errno
    import os
    import stat

    _, sub, _ = pending
    out = tmp_path / "review"
    (out / "evidence" / REJECTED).mkdir(parents=True)
    (out / "evidence" / REJECTED / "hds-certificate.pdf").write_bytes(b"an earlier submission's")
    (out / "notes.txt").write_text("the reviewer's own")
    before = _tree(out)
    real_fsync, files_synced = os.fsync, []

    def full_on_the_second_file(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            files_synced.append(fd)
            if len(files_synced) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_on_the_second_file)
    r = usine("agency", "evidence", sub, "--out", out)
    assert r.exit_code != 0 and len(files_synced) == 2, r.output
    assert _tree(out) == before
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert usine("agency", "evidence", sub, "--out", out).exit_code == 0  # the same, with room: the whole set
    assert len([p for p in (out / "evidence").rglob("*") if p.is_file()]) == 17


def test_evidence_that_fails_leaves_no_folder_it_made(pending: tuple[Path, str, list[str]], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An --out that did not exist is made for the set: a failure part-way removed the files and the subfolders, and
    left the folder itself, empty, where the reviewer had asked for evidence and got an error."""
    import errno
    import os
    import stat

    _, sub, _ = pending
    out = tmp_path / "reviews" / "today"
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    r = usine("agency", "evidence", sub, "--out", out)
    assert r.exit_code != 0, r.output
    assert not (tmp_path / "reviews").exists()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert usine("agency", "evidence", sub, "--out", out).exit_code == 0
    assert len([p for p in (out / "evidence").rglob("*") if p.is_file()]) == 17


def test_decided_again_without_the_bundle(runs: Runs, catalog: Catalog, trust: KeyRing,
                                          pending: tuple[Path, str, list[str]], tmp_path: Path) -> None:
    """Once reviewed, the run is decided from the registry: the bundle may be gone."""
    registry, sub, _ = pending
    accept_all(registry, sub, when=dt.datetime.now(dt.UTC))
    gone = tmp_path / "gone.zip"
    gone.write_bytes(runs.reference.read_bytes())
    gone.unlink()
    code, output = _decide(runs, sub, tmp_path / "out")
    assert code == 0 and output.startswith("LABELLED:"), output
