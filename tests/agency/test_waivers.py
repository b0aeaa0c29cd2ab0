"""Agency waivers (issue 11): an explicit, signed decision not to hold a run to an automated MUST it did not pass.

The realistic case: an evaluator without the official HL7 CDA schema cannot judge DOCSHARE-001 (its verdict
is ``error``); the agency may waive it, with a reason, and the label says so. Never for what the wave marks
non-waivable (every security requirement, the identity rules patient safety rests on), never for a passed
requirement, never after a final decision; a refused waiver records nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformity.agency.registry import Registry
from conformity.agency.submit import WaiverRequest, decide_bundle, decide_submission
from conformity.catalog import Catalog
from conformity.errors import InputError
from conformity.signing import KeyRing, verify_document
from tests.agency.helpers import AGENCY, DECIDED, Runs, accept_all, extra_run, snapshot, usine

WAIVE_CDA = WaiverRequest(("DOCSHARE-001",), "the evaluator had no HL7 CDA R2 schema; documents were checked by the "
                                            "sandbox's own CDA rules", "J. Decider")


@pytest.fixture(scope="module")
def unjudged(runs: Runs, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference vendor's full run judged without the official CDA schema: DOCSHARE-001 is an error."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("USINE_SHARED_SCHEMAS", str(tmp_path_factory.mktemp("no-shared-schemas")))
        return extra_run(runs, catalog, "reference-without-cda-schema")


@pytest.fixture
def no_schema(unjudged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The agency judges without the schema too (so it re-derives the same error)."""
    monkeypatch.setenv("USINE_SHARED_SCHEMAS", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    return unjudged


def test_a_waiver_lets_an_unjudged_requirement_through_and_the_label_says_so(
        no_schema: Path, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> None:
    registry, key, out = tmp_path / "r.sqlite3", tmp_path / "agency.pem", tmp_path / "out"
    AGENCY.save(key)
    refused = decide_bundle(no_schema, catalog, trust, tmp_path / "other.sqlite3", key, out, now=DECIDED)
    assert refused.doc["outcome"] == "refused"
    assert [f["id"] for f in refused.doc["failed_requirements"]] == ["DOCSHARE-001"]
    assert refused.doc["failed_requirements"][0]["verdict"] == "error"

    first = decide_bundle(no_schema, catalog, trust, registry, key, out, now=DECIDED, waive=WAIVE_CDA)
    assert first.doc["outcome"] == "pending" and [w["id"] for w in first.doc["waived"]] == ["DOCSHARE-001"]
    accept_all(registry, first.doc["submission"])
    done = decide_submission(first.doc["submission"], catalog, registry, key, out, now=DECIDED)
    assert done.labelled
    label = verify_document(json.loads((out / f"label-{done.doc['label_id']}.json").read_text()),
                            KeyRing([AGENCY.verify_key]))
    [waived] = label["requirements_waived"]
    assert waived == {"id": "DOCSHARE-001", "verdict": "error", "reason": WAIVE_CDA.reason,
                      "decider": "J. Decider", "waived": first.doc["decided"]}
    assert "DOCSHARE-001" not in label["requirements_passed"]
    with Registry(registry) as reg:
        history = reg.history(first.doc["submission"])
        assert any(state == "waived" and "DOCSHARE-001 (error) waived by J. Decider" in detail
                   for _, _, state, detail in history)
        assert set(reg.waivers(first.doc["submission"])) == {"DOCSHARE-001"}
        with pytest.raises(Exception, match="never"):
            reg.db.execute("DELETE FROM waivers")


@pytest.mark.parametrize(("wanted", "words"), [
    (("PRACAUTH-004",), "is pass: there is nothing to waive"),
    (("SECURITY-002",), "is pass: there is nothing to waive"),
    (("SECURITY-013",), "proven by document review, not waived"),
    (("PATIENTID-012",), "a SHOULD"),
    (("RADIOLOGY-001",), "does not apply"),
])
def test_a_waiver_that_means_nothing_is_refused_and_nothing_recorded(
        no_schema: Path, catalog: Catalog, trust: KeyRing, tmp_path: Path, wanted: tuple[str, ...], words: str) -> None:
    registry, key = tmp_path / "r.sqlite3", tmp_path / "agency.pem"
    with pytest.raises(InputError, match=words):
        decide_bundle(no_schema, catalog, trust, registry, key, tmp_path / "out", now=DECIDED,
                      waive=WaiverRequest(wanted, "because", "x"))
    assert snapshot(registry) == snapshot(tmp_path / "never-created")


def test_a_non_waivable_requirement_is_refused(runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path) -> None:
    """The defective vendor skips the nonce check (PRACAUTH-004, security): the wave never lets it be waived."""
    registry = tmp_path / "r.sqlite3"
    with pytest.raises(InputError, match="2026-W1 marks every security requirement non-waivable"):
        decide_bundle(runs.defective, catalog, trust, registry, tmp_path / "k.pem", tmp_path / "out", now=DECIDED,
                      waive=WaiverRequest(("PRACAUTH-004",), "we trust them", "x"))
    assert not registry.exists() or snapshot(registry) == []


def test_no_waiver_after_a_final_refusal_and_the_cli_says_why(no_schema: Path, runs: Runs, home: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    refused = usine("agency", "decide", no_schema, "--trust", runs.trust, "--out", out)
    assert refused.exit_code == 1 and "DOCSHARE-001" in refused.output
    registry = home / "agency" / "registry.sqlite3"
    before = snapshot(registry)
    again = usine("agency", "decide", no_schema, "--trust", runs.trust, "--out", out, "--waive", "DOCSHARE-001",
                  "--reason", "too late")
    assert again.exit_code == 2 and "never after a final decision" in again.output
    assert snapshot(registry) == before
    no_reason = usine("agency", "decide", no_schema, "--trust", runs.trust, "--waive", "DOCSHARE-001",
                      "--registry", tmp_path / "fresh.sqlite3")
    assert no_reason.exit_code == 2 and "needs a reason" in no_reason.output
    assert not (tmp_path / "fresh.sqlite3").exists()


def test_the_cli_waives_loudly(no_schema: Path, runs: Runs, home: Path, tmp_path: Path) -> None:
    r = usine("agency", "decide", no_schema, "--trust", runs.trust, "--out", tmp_path / "out", "--waive", "DOCSHARE-001",
              "--reason", "no CDA schema here", "--decider", "J. Decider")
    assert r.exit_code == 4, r.output  # pending: the reviews are still to come
    assert "WAIVED by the agency: DOCSHARE-001 (error) by J. Decider" in r.output


def test_registry_show_lists_the_waiver(no_schema: Path, runs: Runs, home: Path, tmp_path: Path) -> None:
    r = usine("agency", "decide", no_schema, "--trust", runs.trust, "--out", tmp_path / "out", "--waive", "DOCSHARE-001",
              "--reason", "no CDA schema here")
    shown = usine("agency", "registry", "show", json.loads(next((tmp_path / "out").glob("pending-*.json")).read_text())
                  ["submission"])
    assert r.exit_code == 4 and shown.exit_code == 0
    assert "WAIVED by the agency: DOCSHARE-001 (error) by the agency" in shown.output and "waived —" in shown.output


def test_a_review_predicts_the_decision_with_the_recorded_waivers(no_schema: Path, runs: Runs, home: Path,
                                                                  tmp_path: Path) -> None:
    """After ``decide --waive``, the last review's preview said "deciding refuses it" (it judged without the waiver)
    while deciding then labelled the run."""
    r = usine("agency", "decide", no_schema, "--trust", runs.trust, "--out", tmp_path / "out", "--waive", "DOCSHARE-001",
              "--reason", "no CDA schema here", "--decider", "J. Decider")
    assert r.exit_code == 4, r.output
    sub = json.loads(next((tmp_path / "out").glob("pending-*.json")).read_text())["submission"]
    with Registry(home / "agency" / "registry.sqlite3") as reg:
        s = reg.get(sub)
        evidenced = {e.requirement for e in reg.evidence(s.id)}
        todo = [x.id for x in s.rows() if x.method in ("document", "manual") and (x.id in evidenced or x.method == "manual")]
    for reviewer in ("C. Durand", "D. Martin"):
        last = usine("agency", "review", sub, *todo, "--accept", "--reason", "read: it shows what is asked",
                     "--reviewer", reviewer)
        assert last.exit_code == 0, last.output
    assert "every applicable MUST is passed or accepted" in last.output and "refuses" not in last.output, last.output
    done = usine("agency", "decide", sub, "--out", tmp_path / "out")
    assert done.exit_code == 0 and "LABELLED" in done.output, done.output
