"""The CLI's registry, review and revocation paths on both engines (SQLite file, PostgreSQL URL), and the
real service over HTTP: ``usine agency serve``'s app under uvicorn, ``usine submit`` and the account commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity.agency.registry import Registry
from conformity.agency.service import ServiceConfig
from conformity.catalog import Catalog
from conformity.db.connection import Database
from conformity.signing import KeyRing
from tests.agency.helpers import Runs, usine
from tests.agency.service_client import Served


def test_cli_decide_review_revoke_reinstate_on_each_engine(database_target: Path | str, runs: Runs, home: Path,
                                                           tmp_path: Path) -> None:
    reg = str(database_target)
    out = tmp_path / "out"
    first = usine("agency", "decide", runs.reference, "--trust", runs.trust, "--registry", reg, "--out", out)
    assert first.exit_code == 4, first.output
    doc = json.loads(next(out.glob("pending-sub_*.json")).read_text())
    sub, awaiting = doc["submission"], [a["id"] for a in doc["awaiting_review"]]
    def review(who: str, *requirements: str) -> int:
        r = usine("agency", "review", sub, *requirements, "--accept", "--reason", "read", "--reviewer", who,
                  "--registry", reg)
        return r.exit_code

    assert review("C. Durand", *awaiting) == 0
    assert review("C. Durand", awaiting[0]) == 2  # four-eyes: the second acceptance is another reviewer's
    assert review("F. Moreau", *awaiting) == 0
    labelled = usine("agency", "decide", sub, "--registry", reg, "--out", out)
    assert labelled.exit_code == 0 and labelled.output.startswith("LABELLED"), labelled.output
    label_id = next(out.glob("label-*.json")).stem.removeprefix("label-")
    assert usine("agency", "registry", "revoke", label_id, "--reason", "field report", "--registry", reg).exit_code == 0
    assert usine("agency", "decide", sub, "--registry", reg, "--out", out).exit_code == 3  # revoked: nothing issued
    assert usine("agency", "registry", "reinstate", label_id, "--reason", "fixed", "--registry", reg).exit_code == 0
    shown = usine("agency", "registry", "show", sub, "--registry", reg)
    assert shown.exit_code == 0 and "reinstated" in shown.output and "confirmed by F. Moreau" in shown.output
    with Registry(database_target) as r:
        assert [e for e in r.db.execute("SELECT type FROM events ORDER BY seq").fetchall()] == [
            ("org.usine.label.issued",), ("org.usine.label.revoked",)]
        with pytest.raises(r.db.errors):
            with r.write() as db:
                db.execute("UPDATE history SET detail = 'edited'")


# ---------------------------------------------------------------------------------------------- over HTTP

@pytest.fixture
def served(runs: Runs, catalog: Catalog, home: Path, tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    registry = tmp_path / "registry.sqlite3"
    config = ServiceConfig(database=Database(registry), catalog=catalog, trust=KeyRing.from_paths([runs.trust]),
                           key_path=home / "agency" / "agency-key.pem", data=tmp_path / "service",
                           secure_cookies=False)
    s = Served(config)
    yield s, registry
    s.close()


def test_usine_submit_to_the_served_agency(served: tuple[Served, Path], runs: Runs) -> None:
    server, registry = served
    added = usine("agency", "account", "add", "ref", "--name", "Reference", "--role", "vendor", "--vendor",
                  "usine-reference", "--database", registry)
    assert added.exit_code == 0, added.output
    refused = usine("agency", "account", "add", "eve", "--name", "Eve", "--role", "reviewer", "--database", registry)
    assert refused.exit_code == 2 and "needs a password" in refused.output  # staff sign in with a password
    token = usine("agency", "account", "token", "ref", "--database", registry).output.strip()
    assert token.startswith("usn_")
    r = usine("submit", runs.reference, "--agency", server.url, "--token", token)
    assert r.exit_code == 4, r.output  # verified in the background, then awaiting the agency's review
    assert r.output.startswith("received: upl_") and "AWAITING-REVIEW" in r.output and "SECURITY-013" in r.output
    bad = usine("submit", runs.reference, "--agency", server.url, "--token", "usn_wrong")
    assert bad.exit_code == 2 and "401" in bad.output
    refused_run = usine("submit", runs.defective, "--agency", server.url, "--token", token)
    assert refused_run.exit_code == 1 and "PRACAUTH-004" in refused_run.output


def test_pay_side_mirrors_labels_and_revocations_from_the_service(served: tuple[Served, Path], runs: Runs,
                                                                  catalog: Catalog, home: Path, tmp_path: Path) -> None:
    from conformity.agency.submit import decide_submission
    from conformity.payments.agency_feed import sync_labels
    from conformity.payments.labelbook import load_labelbook
    from tests.agency.helpers import AGENCY, accept_all

    server, registry = served
    first = usine("agency", "decide", runs.reference, "--trust", runs.trust, "--registry", registry, "--out",
                  tmp_path / "d")
    sub = json.loads(next((tmp_path / "d").glob("pending-*.json")).read_text())["submission"]
    accept_all(registry, sub)
    outcome = decide_submission(sub, catalog, registry, home / "agency" / "agency-key.pem", tmp_path / "d")
    assert first.exit_code == 4 and outcome.labelled
    labels = tmp_path / "labels"
    synced = sync_labels(server.url, labels)
    assert (synced.labels, synced.cursor) == (1, 1)
    book = load_labelbook(labels, KeyRing([AGENCY.verify_key]))
    assert [lbl.id for lbl in book.labels()] == [outcome.label["label_id"]]  # type: ignore[index]
    assert usine("agency", "registry", "revoke", outcome.label["label_id"], "--reason", "fraud",  # type: ignore[index]
                 "--registry", registry).exit_code == 0
    again = sync_labels(server.url, labels)
    assert (again.labels, again.events, again.cursor) == (0, 1, 2)  # the revoked event read; the list fetched
    book = load_labelbook(labels, KeyRing([AGENCY.verify_key]))
    assert outcome.label["label_id"] in book.revocations  # type: ignore[index]


def test_a_percent_sign_in_a_quoted_literal_reads_the_same_on_each_engine(database_target: Path | str) -> None:
    """``'a%'`` beside a ``?`` placeholder raised psycopg's ProgrammingError on PostgreSQL (SQLite read it)."""
    db = Database(database_target)
    conn = db.connect()
    try:
        row = conn.execute("SELECT 'abc' LIKE 'a%', '50%?', ? + 1", (1,)).fetchone()
        assert (bool(row[0]), row[1], row[2]) == (True, "50%?", 2)
    finally:
        db.release(conn)
        db.dispose()
