"""The registry: migrations, append-only history, revocation, computed expiry, concurrent deciders, CLI."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conformity.agency.migrations import SCHEMA_VERSION, migrate
from conformity.agency.registry import Registry
from conformity.agency.submit import decide_bundle
from conformity.catalog import Catalog
from conformity.errors import InputError
from conformity.signing import KeyRing
from tests.agency.helpers import AGENCY, DECIDED, Runs, accept_all, label_bundle, members, raw_zip, usine


@pytest.fixture
def decided(runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> Path:
    """A registry holding the reference (labelled) and the defective vendor (refused)."""
    registry, key = tmp_path / "registry.sqlite3", tmp_path / "agency.pem"
    AGENCY.save(key)
    label_bundle(runs.reference, catalog, trust, registry, key, tmp_path / "out")
    decide_bundle(runs.defective, catalog, trust, registry, key, tmp_path / "out", now=DECIDED)
    return registry


def test_a_new_registry_has_every_migration(tmp_path: Path) -> None:
    with Registry(tmp_path / "r.sqlite3") as reg:
        versions = [v for (v,) in reg.db.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1)) and SCHEMA_VERSION >= 4
        assert reg.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_older_registry_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, path, target=1) == 1
    decision = {"requirements": [{"id": "PRACAUTH-004", "level": "MUST", "method": "automated", "verdict": "pass"},
                                 {"id": "SECURITY-013", "level": "MUST", "method": "document", "verdict": "evidence-required"}],
                "pending_reviews": [{"id": "SECURITY-013", "level": "MUST", "method": "document", "evidence": "HDS"}]}
    db.execute("INSERT INTO submissions VALUES ('sub_old', 'ab', 'b.zip', 'v', 'V', 's', 'S', '1', '2026-W1', 'GP', "
               "'labelled', '2026-05-01T00:00:00Z', '2026-05-01T00:00:00Z', ?)", (json.dumps(decision),))
    db.execute("INSERT INTO labels (label_id, submission, wave, category, vendor_id, software_id, version, issued, "
               "expires, doc) VALUES ('lbl_old00000', 'sub_old', '2026-W1', 'GP', 'v', 's', '1', "
               "'2026-05-01T00:00:00Z', '2028-12-31', '{}')")
    db.close()
    with Registry(path) as reg:
        assert reg.db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert [r[2:] for r in reg.results("2026-W1")] == [("PRACAUTH-004", "MUST", "automated", "pass"),
                                                           ("SECURITY-013", "MUST", "document", "evidence-required")]
        old = reg.get("lbl_old00000")
        assert old.state == "labelled" and old.run_id is None and old.label_id == "lbl_old00000"
        assert old.decision.raw["pending_reviews"] == decision["pending_reviews"] and reg.reviews(old.id) == []
    shown = usine("agency", "registry", "show", "lbl_old00000", "--registry", path)
    assert shown.exit_code == 0, shown.output
    assert "SECURITY-013 [MUST, document] not reviewed (labelled before reviews were required)" in shown.output
    assert "run (recorded before runs were identities)" in shown.output


def test_a_newer_registry_or_another_database_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with Registry(newer) as reg:
        reg.db.execute("INSERT INTO schema_version VALUES (99, 'later')")
    with pytest.raises(InputError, match="schema version 99 is newer than this usine knows"):
        Registry(newer)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(InputError, match="not a usine registry"):
        Registry(other)
    (tmp_path / "garbage.sqlite3").write_bytes(b"not a database at all, certainly not" * 100)
    with pytest.raises(InputError):
        Registry(tmp_path / "garbage.sqlite3")


def test_history_and_labels_are_never_rewritten(decided: Path) -> None:
    with Registry(decided) as reg:
        for sql in ("UPDATE history SET state = 'x'", "DELETE FROM history", "DELETE FROM labels",
                    "DELETE FROM submissions", "UPDATE labels SET doc = '{}'", "UPDATE labels SET expires = '2099-12-31'",
                    "UPDATE labels SET signed = '{}'", "UPDATE labels SET version = '9.9'",
                    "UPDATE submissions SET run_id = 'x'", "UPDATE submissions SET bundle_sha256 = 'x'",
                    "UPDATE submissions SET state = 'labelled' WHERE state = 'refused'",
                    "UPDATE reviews SET verdict = 'rejected'", "DELETE FROM reviews", "UPDATE evidence SET sha256 = 'x'",
                    "DELETE FROM evidence", "UPDATE evidence_blobs SET data = x'00'", "DELETE FROM evidence_blobs"):
            with pytest.raises(sqlite3.DatabaseError):
                reg.db.execute(sql)


def test_revocation_and_expiry(decided: Path) -> None:
    with Registry(decided) as reg:
        label = next(s for s in reg.submissions() if s.label_id)
        assert label.effective_state(DECIDED) == "labelled"
        assert label.effective_state(dt.datetime(2029, 1, 1, tzinfo=dt.UTC)) == "expired"
        assert [s.id for s in reg.submissions(state="refused")] != []
        assert reg.revoke(label.label_id, "security flaw found in the field",  # type: ignore[arg-type]  # label_id is a str on an issued label (Optional only before issuance)
                          DECIDED + dt.timedelta(days=30)) == [label.label_id]
        revoked = reg.get(label.label_id)  # type: ignore[arg-type]  # label_id is a str on an issued label (Optional only before issuance)
        assert revoked.effective_state(DECIDED + dt.timedelta(days=31)) == "revoked"
        assert revoked.effective_state(DECIDED + dt.timedelta(days=29)) == "labelled"
        with pytest.raises(InputError, match="already revoked"):
            reg.revoke(label.label_id, "again", DECIDED)  # type: ignore[arg-type]  # label_id is a str on an issued label (Optional only before issuance)
        with pytest.raises(InputError, match="no label"):
            reg.revoke("lbl_unknown000", "x", DECIDED)
        assert [h[2] for h in reg.history(label.label_id)] == ["issued", "revoked"]  # type: ignore[arg-type]  # label_id is a str on an issued label (Optional only before issuance)


def test_registry_cli(decided: Path, home: Path) -> None:
    listed = usine("agency", "registry", "list", "--registry", decided, "--json")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert sorted(r["state"] for r in rows) == ["labelled", "refused"]
    label_id = next(r["label_id"] for r in rows if r["label_id"])
    only = usine("agency", "registry", "list", "--registry", decided, "--state", "refused")
    assert only.exit_code == 0 and "refused" in only.output and label_id not in only.output
    shown = usine("agency", "registry", "show", label_id, "--registry", decided)
    assert shown.exit_code == 0 and "history:" in shown.output and " pending — " in shown.output
    assert "SECURITY-013 [MUST, document] accepted by B. Second" in shown.output
    assert "evidence evidence/SECURITY-013/hds-certificate.pdf (application/pdf" in shown.output
    assert "SECURITY-011 [SHOULD, document] not reviewed (SHOULD: does not block)" in shown.output
    refused = next(r["submission"] for r in rows if r["state"] == "refused")
    assert "failed PRACAUTH-004" in usine("agency", "registry", "show", refused, "--registry", decided).output
    r = usine("agency", "registry", "revoke", label_id, "--reason", "fraud", "--registry", decided)
    assert r.exit_code == 0 and "revoked" in r.output
    assert usine("agency", "registry", "revoke", label_id, "--reason", "x", "--registry", decided).exit_code == 2
    assert usine("agency", "registry", "show", "sub_nope", "--registry", decided).exit_code == 2
    assert usine("agency", "registry", "list", "--registry", home / "none.sqlite3").exit_code == 2


def _decide_in_process(bundle: str, trust: str, registry: str, key: str, out: str, barrier: Any, queue: Any) -> None:
    """A separate agency process deciding a bundle once every process is ready."""
    from conformity.agency.submit import decide_bundle as decide
    from conformity.catalog import load_catalog
    from conformity.checks import registered_check_ids

    catalog = load_catalog(registered_checks=registered_check_ids())
    keys = KeyRing.from_paths([trust])
    barrier.wait(timeout=120)
    outcome = decide(Path(bundle), catalog, keys, Path(registry), Path(key), Path(out))
    queue.put((bundle, outcome.doc["submission"], outcome.created, outcome.label["label_id"] if outcome.label else None,
               outcome.label["issuer"]["key_id"] if outcome.label else None))


@pytest.mark.slow
def test_concurrent_deciders_record_each_run_once_and_label_it_once(runs: Runs, catalog: Catalog, trust: KeyRing,
                                                                   tmp_path: Path) -> None:
    """The reference's run, reviewed, decided by three processes at once in three packagings (one label); the
    defective run decided by two at once (one refusal)."""
    registry, key = tmp_path / "registry.sqlite3", tmp_path / "keys" / "agency.pem"  # the key is created by one of them
    first = decide_bundle(runs.reference, catalog, trust, registry, key, tmp_path / "out", now=DECIDED)
    accept_all(registry, first.doc["submission"])
    with Registry(registry) as reg:
        history = len(reg.db.execute("SELECT * FROM history").fetchall())
    files = members(runs.reference)
    reference = [runs.reference, raw_zip(tmp_path / "stored.zip", list(files.items()), stored=True),
                 raw_zip(tmp_path / "reordered.zip", sorted(files.items(), reverse=True))]
    bundles = reference + [runs.defective] * 2
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(len(bundles)), ctx.Queue()
    procs = [ctx.Process(target=_decide_in_process, args=(str(b), str(runs.trust), str(registry), str(key),
                                                          str(tmp_path / f"out{i}"), barrier, queue))
             for i, b in enumerate(bundles)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ref = [r for r in results if r[0] in {str(b) for b in reference}]
    assert {r[1] for r in ref} == {first.doc["submission"]} and sum(r[2] for r in ref) == 1
    assert len({r[3] for r in ref}) == 1 and None not in {r[3] for r in ref} and len({r[4] for r in ref}) == 1
    assert sum(r[2] for r in results if r[0] == str(runs.defective)) == 1
    with Registry(registry) as reg:
        assert len(reg.submissions()) == 2 and len(reg.labels()) == 1
        assert reg.labels()[0][0]["issuer"]["key_id"] == ref[0][4]
        assert len(reg.db.execute("SELECT * FROM history").fetchall()) == history + 2 + 3  # labelled, issued; refusal
