"""Attack 1 of issue 9: a submission is the run that was tested, not the bytes of a zip.

The same run repackaged (stored instead of deflated, a zip comment, 1 KiB of junk in front, members in
another order) gets its recorded decision back and nothing is issued; after a revocation neither a
repackaged bundle nor a new run of the same version gets a label (REVOKED, exit 3) until the agency
reinstates the version; a registry from before upgrades and its revocations hold.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from conformity.agency.migrations import SCHEMA_VERSION, migrate
from conformity.agency.registry import Registry
from conformity.catalog import Catalog
from conformity.labels import verify_revocations
from conformity.signing import KeyRing
from tests.agency.helpers import (
    AGENCY,
    CATEGORY,
    WAVE,
    Runs,
    accept_all,
    label_bundle,
    members,
    raw_zip,
    snapshot,
    usine,
)


def _stored(bundle: Path, out: Path) -> Path:
    return raw_zip(out, list(members(bundle).items()), stored=True)


def _comment(bundle: Path, out: Path) -> Path:
    return raw_zip(out, list(members(bundle).items()), comment=b"repackaged by a reseller, same evidence")


def _junk_prefix(bundle: Path, out: Path) -> Path:
    out.write_bytes(bytes(range(256)) * 4 + bundle.read_bytes())  # 1 KiB in front: zip readers still find it
    return out


def _reordered(bundle: Path, out: Path) -> Path:
    return raw_zip(out, sorted(members(bundle).items(), reverse=True))


REPACKAGE: dict[str, Callable[[Path, Path], Path]] = {
    "stored-not-deflated": _stored, "zip-comment": _comment, "junk-prefix-1KiB": _junk_prefix,
    "members-reordered": _reordered}


def _decide(runs: Runs, target: Path | str, out: Path) -> tuple[int, str]:
    r = usine("agency", "decide", target, "--trust", runs.trust, "--out", out)
    return r.exit_code, r.output


@pytest.fixture
def labelled(runs: Runs, catalog: Catalog, trust: KeyRing, home: Path, tmp_path: Path) -> tuple[Path, str]:
    """The default registry of ``home`` with the reference labelled (its evidence accepted): (registry, label id)."""
    registry = home / "agency" / "registry.sqlite3"
    done = label_bundle(runs.reference, catalog, trust, registry, home / "agency" / "agency-key.pem", tmp_path / "first",
                        now=dt.datetime.now(dt.UTC))
    return registry, done.doc["label_id"]


@pytest.mark.parametrize("how", sorted(REPACKAGE))
def test_a_repackaged_labelled_bundle_gets_its_decision_back_and_nothing_new(
        how: str, runs: Runs, labelled: tuple[Path, str], tmp_path: Path) -> None:
    registry, label_id = labelled
    repackaged = REPACKAGE[how](runs.reference, tmp_path / "repackaged.zip")
    assert repackaged.read_bytes() != runs.reference.read_bytes()
    before = snapshot(registry)
    code, output = _decide(runs, repackaged, tmp_path / "out")
    assert code == 0, output
    assert output.startswith("LABELLED (already decided on") and f"label {label_id}" in output
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"label-{label_id}.json"]
    assert (tmp_path / "out" / f"label-{label_id}.json").read_bytes() == \
        (tmp_path / "first" / f"label-{label_id}.json").read_bytes()
    assert snapshot(registry) == before


def test_a_repackaged_pending_run_is_the_same_submission(runs: Runs, home: Path, tmp_path: Path) -> None:
    code, output = _decide(runs, runs.reference, tmp_path / "a")
    assert code == 4, output
    [first] = [json.loads(p.read_text()) for p in (tmp_path / "a").glob("pending-*.json")]
    registry = home / "agency" / "registry.sqlite3"
    before = snapshot(registry)
    for how, make in sorted(REPACKAGE.items()):
        out = tmp_path / how
        code, again = _decide(runs, make(runs.reference, tmp_path / f"{how}.zip"), out)
        [doc] = [json.loads(p.read_text()) for p in out.glob("pending-*.json")]
        assert code == 4 and again.startswith("PENDING:"), (how, again)
        assert doc["submission"] == first["submission"] and doc["run"] == first["run"] and doc["recorded"]
        assert doc["bundle"]["name"] == f"{how}.zip" and doc["awaiting_review"] == first["awaiting_review"]
    assert snapshot(registry) == before
    with Registry(registry) as reg:
        [s] = reg.submissions()
        assert s.state == "pending" and s.bundle_name == runs.reference.name


@pytest.mark.parametrize("how", sorted(REPACKAGE))
def test_revoked_then_repackaged_says_revoked_and_issues_nothing(how: str, runs: Runs, labelled: tuple[Path, str],
                                                                 tmp_path: Path) -> None:
    registry, label_id = labelled
    r = usine("agency", "registry", "revoke", label_id, "--reason", "TLS certificate checks disabled in the field")
    assert r.exit_code == 0, r.output
    before = snapshot(registry)
    for bundle in (REPACKAGE[how](runs.reference, tmp_path / "repackaged.zip"), runs.reference):
        code, output = _decide(runs, bundle, tmp_path / "out")
        assert code == 3, output
        assert output.startswith("REVOKED: RefApp 1.0.0 (usine-reference), wave 2026-W1")
        assert f"Label {label_id} of this version was revoked" in output and "reinstate" in output
    assert not list((tmp_path / "out").glob("label-*")) and list((tmp_path / "out").glob("revoked-sub_*.json"))
    assert snapshot(registry) == before


def test_revoked_then_a_new_run_of_the_same_version_says_revoked_until_reinstated(
        runs: Runs, catalog: Catalog, reference_again: Path, labelled: tuple[Path, str], tmp_path: Path) -> None:
    registry, label_id = labelled
    assert usine("agency", "registry", "revoke", label_id, "--reason", "fraud").exit_code == 0
    before = snapshot(registry)
    code, output = _decide(runs, reference_again, tmp_path / "out")
    assert code == 3 and output.startswith("REVOKED:") and f"Label {label_id}" in output, output
    doc = json.loads(next((tmp_path / "out").glob("revoked-sub_*.json")).read_text())
    assert doc["outcome"] == "revoked" and not doc["recorded"] and doc["revocation"]["label_id"] == label_id
    assert snapshot(registry) == before  # a new run of a revoked version is not even recorded

    for bad in (("reinstate", "lbl_unknown0000", "--reason", "x"), ("reinstate", label_id, "--reason", "  ")):
        assert usine("agency", "registry", *bad).exit_code == 2
    assert snapshot(registry) == before
    r = usine("agency", "registry", "reinstate", label_id, "--reason", "the field report was about a forged build")
    assert r.exit_code == 0 and "stays revoked" in r.output, r.output
    assert usine("agency", "registry", "reinstate", label_id, "--reason", "again").exit_code == 2
    with Registry(registry) as reg:
        assert [h[2] for h in reg.history(label_id)] == ["issued", "revoked", "reinstated"]

    code, output = _decide(runs, reference_again, tmp_path / "new")  # a new run: recorded, it waits for reviews
    assert code == 4, output
    new_sub = json.loads(next((tmp_path / "new").glob("pending-sub_*.json")).read_text())["submission"]
    accept_all(registry, new_sub, when=dt.datetime.now(dt.UTC))
    code, output = _decide(runs, new_sub, tmp_path / "new")
    assert code == 0 and output.startswith("LABELLED: RefApp 1.0.0"), output
    with Registry(registry) as reg:
        labels = {d["label_id"]: (d, revoked) for d, revoked, _ in reg.labels()}
        assert len(labels) == 2 and labels[label_id][1] is not None  # the revoked label stays revoked
        [new_id] = set(labels) - {label_id}
        assert labels[new_id][1] is None and labels[new_id][0]["run"]["submission"] == new_sub
        assert labels[new_id][0]["run"]["id"] != labels[label_id][0]["run"]["id"]
    code, output = _decide(runs, runs.reference, tmp_path / "old")  # the revoked run: the version is labelled again
    assert code == 0 and "already holds a label" in output and f"label {new_id}" in output, output
    export = tmp_path / "export"
    assert usine("agency", "registry", "export", "--out", export).exit_code == 0
    listed = verify_revocations(json.loads((export / "labels" / "revocations.json").read_text()),
                                KeyRing([AGENCY.verify_key]))
    assert listed.revoked_at(label_id) is not None and listed.revoked_at(new_id) is None
    # the label issued after the reinstatement is valid, to `label verify` and to a payment run alike (same rule)
    for lid, code, verdict in ((new_id, 0, "VALID:"), (label_id, 1, "INVALID (revoked)")):
        r = usine("label", "verify", export / "labels" / f"label-{lid}.json", "--key", export / "agency-key.pub.pem",
                  "--revocations", export / "labels" / "revocations.json")
        assert r.exit_code == code and r.output.startswith(verdict), r.output


def test_a_reinstated_run_is_labelled_again_from_the_registry(runs: Runs, labelled: tuple[Path, str],
                                                              tmp_path: Path) -> None:
    registry, label_id = labelled
    assert usine("agency", "registry", "revoke", label_id, "--reason", "suspected forged evidence").exit_code == 0
    assert usine("agency", "registry", "reinstate", label_id, "--reason", "evidence checked again").exit_code == 0
    with Registry(registry) as reg:
        sub = reg.get(label_id).id
    code, output = _decide(runs, sub, tmp_path / "out")  # no bundle: the run's facts and reviews are in the registry
    assert code == 0 and output.startswith("LABELLED: RefApp 1.0.0"), output
    [new_file] = (tmp_path / "out").glob("label-*.json")
    assert new_file.name != f"label-{label_id}.json"
    with Registry(registry) as reg:
        s = reg.get(sub)
        assert s.label_id != label_id and s.revoked is None and [lab[0] for lab in reg.labels_of(sub)][0] == label_id
        assert reg.get(label_id).id == sub
    before = snapshot(registry)
    assert _decide(runs, sub, tmp_path / "again")[0] == 0 and snapshot(registry) == before
    code, output = _decide(runs, label_id, tmp_path / "by-label")  # a label's id names its submission too
    assert code == 0 and "already decided" in output and snapshot(registry) == before


def test_a_new_run_of_a_labelled_version_gets_no_second_label(runs: Runs, reference_again: Path,
                                                            labelled: tuple[Path, str], tmp_path: Path) -> None:
    registry, label_id = labelled
    before = snapshot(registry)
    code, output = _decide(runs, reference_again, tmp_path / "out")
    assert code == 0 and "this version already holds a label" in output and label_id in output, output
    assert not list((tmp_path / "out").glob("label-*")) and snapshot(registry) == before


def _legacy_registry(path: Path, runs: Runs) -> None:
    """A registry of schema 3 holding what the repackaging attack left: two labels of one version (two zips)."""
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, path, target=3) == 3
    for n, sha in ((1, "a" * 64), (2, "b" * 64)):
        sub, label = f"sub_{sha[:20]}", f"lbl_legacy{n:04d}"
        decision = {"outcome": "labelled", "requirements": [
            {"id": "SECURITY-013", "level": "MUST", "method": "document", "verdict": "evidence-required"}],
            "pending_reviews": [{"id": "SECURITY-013", "level": "MUST", "method": "document", "evidence": "HDS"}]}
        db.execute("INSERT INTO submissions VALUES (?, ?, ?, 'usine-reference', 'usine project', "
                   "'usine-reference.refapp', 'RefApp', '1.0.0', ?, ?, 'labelled', '2026-05-01T00:00:00Z', "
                   "'2026-05-01T00:00:00Z', ?)", (sub, sha, f"b{n}.zip", WAVE, CATEGORY, json.dumps(decision)))
        db.execute("INSERT INTO labels (label_id, submission, wave, category, vendor_id, software_id, version, issued, "
                   "expires, doc, signed) VALUES (?, ?, ?, ?, 'usine-reference', 'usine-reference.refapp', '1.0.0', "
                   "'2026-05-01T00:00:00Z', '2028-12-31', ?, '{}')",
                   (label, sub, WAVE, CATEGORY, json.dumps({"format": "usine.label/1", "label_id": label})))
    db.close()


def test_an_older_registry_upgrades_and_a_revocation_covers_every_label_of_the_version(
        runs: Runs, home: Path, tmp_path: Path) -> None:
    registry = home / "agency" / "registry.sqlite3"
    _legacy_registry(registry, runs)
    with Registry(registry) as reg:  # schema 3 → latest, data kept, constraints of the new schema in force
        assert reg.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert [(s.id, s.state, s.run_id) for s in reg.submissions()] == [
            ("sub_aaaaaaaaaaaaaaaaaaaa", "labelled", None), ("sub_bbbbbbbbbbbbbbbbbbbb", "labelled", None)]
        assert reg.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert reg.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    r = usine("agency", "registry", "revoke", "lbl_legacy0001", "--reason", "one version, two labels: repackaging")
    assert r.exit_code == 0 and "lbl_legacy0001, lbl_legacy0002" in r.output, r.output
    with Registry(registry) as reg:
        assert all(revoked for _, revoked, _ in reg.labels())
    before = snapshot(registry)
    code, output = _decide(runs, runs.reference, tmp_path / "out")  # a real run of the revoked version
    assert code == 3 and "lbl_legacy000" in output, output
    assert snapshot(registry) == before
