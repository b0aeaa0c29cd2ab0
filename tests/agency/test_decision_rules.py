"""The decision rule on its own (a pure function): what a label waits for, what refuses it, what never blocks.

Facts built from the real 2026-W1 HOSPITAL plan; reviews and evidence varied, by hand and by Hypothesis
(seeded: the same examples every run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.agency.decision import CALLER_SEED_REFUSED, Facts, Review, Waiver, decide
from conformity.agency.records import DecisionRecord, NotPassed, RecordedRow
from conformity.agency.verify import RunIdentity
from conformity.bundle.evidence import EvidenceFile
from conformity.catalog import Catalog
from conformity.harness.plan import make_plan
from tests.agency.helpers import CATEGORY, WAVE

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
IDENTITY = RunIdentity("v", "v.app", "1.0", WAVE, CATEGORY, "0123456789abcdef")


def _rows(catalog: Catalog) -> list[dict[str, Any]]:
    plan = make_plan(catalog, WAVE, CATEGORY)
    return [{"id": p.id, "title": p.applied.requirement.title, "level": p.applied.level,
             "method": p.applied.requirement.proof.method,
             "verdict": "pass" if p.checks else "evidence-required"} for p in plan.requirements]


def _facts(catalog: Catalog, evidenced: set[str] | None = None, failed: tuple[NotPassed, ...] = ()) -> Facts:
    rows = _rows(catalog)
    reviewable = {r["id"] for r in rows if r["method"] != "automated"}
    files = tuple(EvidenceFile(req, f"evidence/{req}/doc.pdf", "0" * 64, 10, "application/pdf")
                  for req in sorted(reviewable if evidenced is None else evidenced))
    return Facts(IDENTITY, "V", "App", "REG", {"DOCSHARE": "1.0"}, 0, "0.1.0", "2026-05-01T00:00:00Z", "b.zip",
                 "f" * 64, tuple(RecordedRow.from_json(r) for r in rows), files, failed)


def _review(req: str, verdict: str, rows: list[dict[str, Any]], reviewer: str = "R") -> Review:
    row = next(r for r in rows if r["id"] == req)
    return Review("sub", req, row["level"], row["method"], verdict, "why", reviewer, "2026-06-01T00:00:00Z")  # type: ignore[arg-type]  # a test builder passing literal strings for the Review's Literal fields


def _reviews(verdicts: dict[str, str], rows: list[dict[str, Any]]) -> list[Review]:
    """Each requirement reviewed: an acceptance by R confirmed by R2 (four-eyes), a rejection by R."""
    out = [_review(r, v, rows) for r, v in verdicts.items()]
    return out + [_review(r, v, rows, "R2") for r, v in verdicts.items() if v == "accepted"]


def _reviewable(catalog: Catalog, level: str | None = None) -> list[str]:
    return [r["id"] for r in _rows(catalog) if r["method"] != "automated" and (level is None or r["level"] == level)]


def test_every_must_accepted_labels_and_should_never_block(catalog: Catalog) -> None:
    rows = _rows(catalog)
    must = _reviewable(catalog, "MUST")
    d = decide(_facts(catalog), _reviews({r: "accepted" for r in must}, rows), catalog.wave(WAVE), NOW)
    assert d.outcome == "labelled" and set(d.not_reviewed) == set(_reviewable(catalog, "SHOULD"))
    fields = d.label_fields(catalog.wave(WAVE), "lbl_test0000")
    assert fields["run"]["id"] == IDENTITY.run_id and len(fields["requirements_reviewed"]) == len(must)
    assert all(r["reviewer"] == "R2" and r["first_review"]["reviewer"] == "R" for r in fields["requirements_reviewed"])


def test_four_eyes_a_must_accepted_once_or_twice_by_one_reviewer_waits_for_another(catalog: Catalog) -> None:
    rows = _rows(catalog)
    must = _reviewable(catalog, "MUST")
    once = [_review(r, "accepted", rows) for r in must]
    d = decide(_facts(catalog), once, catalog.wave(WAVE), NOW)
    assert d.outcome == "pending" and [a.id for a in d.awaiting] == must
    assert all(a.second_review and a.accepted_by == "R" for a in d.awaiting)
    assert decide(_facts(catalog), once + once, catalog.wave(WAVE), NOW).outcome == "pending"  # the same eyes twice
    first = must[0]
    rejected_then = _reviews({r: "accepted" for r in must[1:]}, rows) + [
        _review(first, "accepted", rows), _review(first, "rejected", rows, "R2"), _review(first, "accepted", rows, "R3")]
    d = decide(_facts(catalog), rejected_then, catalog.wave(WAVE), NOW)  # acceptances before a rejection do not count
    assert d.outcome == "pending" and [a.id for a in d.awaiting] == [first]
    d = decide(_facts(catalog), [*rejected_then, _review(first, "accepted", rows, "R")], catalog.wave(WAVE), NOW)
    assert d.outcome == "labelled"


def test_nothing_reviewed_is_pending_with_every_must_listed(catalog: Catalog) -> None:
    d = decide(_facts(catalog), {}, catalog.wave(WAVE), NOW)
    assert d.outcome == "pending" and [a.id for a in d.awaiting] == _reviewable(catalog, "MUST")


def test_a_document_must_without_evidence_refuses_a_manual_one_waits(catalog: Catalog) -> None:
    rows = _rows(catalog)
    document = next(r["id"] for r in rows if r["method"] == "document" and r["level"] == "MUST")
    manual = next(r["id"] for r in rows if r["method"] == "manual" and r["level"] == "MUST")
    others = _reviews({r: "accepted" for r in _reviewable(catalog, "MUST") if r not in (document, manual)}, rows)
    evidenced = set(_reviewable(catalog)) - {document, manual}
    d = decide(_facts(catalog, evidenced), others, catalog.wave(WAVE), NOW)
    assert d.outcome == "refused" and [m.id for m in d.missing_evidence] == [document]
    assert [a.id for a in d.awaiting] == [manual] and d.awaiting[0].attached == ()
    d = decide(_facts(catalog, evidenced | {document}), others + _reviews({document: "accepted"}, rows),
               catalog.wave(WAVE), NOW)
    assert d.outcome == "pending" and [a.id for a in d.awaiting] == [manual]  # a witnessed manual check may pass


def test_a_failed_automated_must_or_an_expired_wave_refuses_whatever_the_reviews(catalog: Catalog) -> None:
    rows = _rows(catalog)
    accepted = _reviews({r: "accepted" for r in _reviewable(catalog)}, rows)
    failed = (NotPassed("PRACAUTH-004", "t", "MUST", "fail", (), ()),)
    assert decide(_facts(catalog, failed=failed), accepted, catalog.wave(WAVE), NOW).outcome == "refused"
    late = decide(_facts(catalog), accepted, catalog.wave(WAVE), dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    assert late.outcome == "refused" and "expired" in late.reasons[0].message



def test_a_must_not_exercised_refuses_like_a_failure_unless_waived(catalog: Catalog) -> None:
    """No vacuous pass: a MUST whose situation never happened in the run blocks the label; the agency may waive it."""
    rows = _rows(catalog)
    accepted = _reviews({r: "accepted" for r in _reviewable(catalog)}, rows)
    unexercised = (NotPassed("PATIENTID-010", "t", "MUST", "not-exercised", (),
                             ({"message": "the scenarios never sent a message"},)),)
    d = decide(_facts(catalog, failed=unexercised), accepted, catalog.wave(WAVE), NOW)
    assert d.outcome == "refused" and [f.verdict for f in d.failed] == ["not-exercised"]
    waiver = Waiver("PATIENTID-010", "not-exercised", "messaging out of scope", "A", "2026-06-01T00:00:00Z")
    d = decide(_facts(catalog, failed=unexercised), accepted, catalog.wave(WAVE), NOW, {"PATIENTID-010": waiver})
    assert d.outcome == "labelled" and [w.verdict for w in d.waived] == ["not-exercised"]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(data=st.data())
def test_shoulds_never_change_the_outcome_and_a_rejected_must_never_labels(catalog: Catalog, data: st.DataObject) -> None:
    rows = _rows(catalog)
    verdicts = st.sampled_from([None, "accepted", "rejected"])
    musts = {r: data.draw(verdicts, label=r) for r in _reviewable(catalog, "MUST")}
    shoulds = {r: data.draw(verdicts, label=r) for r in _reviewable(catalog, "SHOULD")}
    reviews = _reviews({r: v for r, v in musts.items() if v}, rows)
    with_shoulds = reviews + _reviews({r: v for r, v in shoulds.items() if v}, rows)
    wave = catalog.wave(WAVE)
    d = decide(_facts(catalog), reviews, wave, NOW)
    assert decide(_facts(catalog), with_shoulds, wave, NOW).outcome == d.outcome
    expected = ("refused" if "rejected" in musts.values() else "pending" if None in musts.values() else "labelled")
    assert d.outcome == expected


def test_a_recorded_decision_reads_back_as_the_decision_it_records(catalog: Catalog) -> None:
    """The registry keeps a decision as JSON and reads it back typed (DecisionRecord): every ground the same, and
    written again the same JSON (a failure with its findings, a rejection, evidence missing, a second review)."""
    rows = _rows(catalog)
    must = _reviewable(catalog, "MUST")
    document = next(r["id"] for r in rows if r["method"] == "document" and r["level"] == "MUST")
    rejected, once = [r for r in must if r != document][:2]
    failed = (NotPassed("PRACAUTH-004", "t", "MUST", "fail", ("pracauth.token",),
                        ({"message": "no token", "exchange": 3, "expected": "JWT", "got": None},)),)
    reviews = [_review(rejected, "rejected", rows), _review(once, "accepted", rows)]
    d = decide(_facts(catalog, set(_reviewable(catalog)) - {document}, failed), reviews, catalog.wave(WAVE), NOW)
    assert d.outcome == "refused" and d.failed and d.rejected and d.missing_evidence
    assert any(a.second_review for a in d.awaiting)
    stored = json.loads(json.dumps(d.record_json(None)))
    back = DecisionRecord.from_json(stored)
    assert d.facts is not None
    assert (back.outcome, back.failed, back.rejected, back.missing_evidence, back.awaiting, back.requirements) == (
        d.outcome, d.failed, d.rejected, d.missing_evidence, d.awaiting, d.facts.rows)
    assert [a.to_json() for a in back.awaiting] == stored["awaiting_review"]
    assert [f.to_json() for f in back.failed] == stored["failed"]
    assert [r.to_json() for r in back.requirements] == stored["requirements"]
    assert back.current() == {"outcome": "refused", "awaiting_review": stored["awaiting_review"],
                              "rejected": stored["rejected"], "failed": stored["failed"]}


def test_a_decision_recorded_by_an_older_registry_still_reads() -> None:
    """Registry schema 1-3 rows carry no title and no facts; nothing else is assumed of them."""
    old = {"requirements": [{"id": "SECURITY-013", "level": "MUST", "method": "document", "verdict": "evidence-required"}],
           "pending_reviews": [{"id": "SECURITY-013", "level": "MUST", "method": "document", "evidence": "HDS"}]}
    back = DecisionRecord.from_json(old)
    assert back.requirements == (RecordedRow("SECURITY-013", "", "MUST", "document", "evidence-required"),)
    assert back.facts is None and back.outcome is None and back.failed == () and back.current() == {}
    assert back.raw["pending_reviews"] == old["pending_reviews"]


def test_a_run_whose_seed_the_vendor_chose_is_refused_whatever_its_verdicts(catalog: Catalog) -> None:
    rows = _rows(catalog)
    must = _reviewable(catalog, "MUST")
    reviews = _reviews({r: "accepted" for r in must}, rows)
    sandbox = dataclasses.replace(_facts(catalog), seed_source="sandbox", attempt=2)
    assert decide(sandbox, reviews, catalog.wave(WAVE), NOW).outcome == "labelled"
    chosen = dataclasses.replace(sandbox, seed_source="caller")
    d = decide(chosen, reviews, catalog.wave(WAVE), NOW)
    assert d.outcome == "refused" and [p.message for p in d.reasons] == [CALLER_SEED_REFUSED]
    assert "run again without --seed" in CALLER_SEED_REFUSED
    kept = Facts.from_json(IDENTITY, chosen.to_json(), chosen.rows, chosen.failed, chosen.evidence)
    assert (kept.seed_source, kept.attempt) == ("caller", 2)  # decided again from the registry: refused again
    assert decide(kept, reviews, catalog.wave(WAVE), NOW).outcome == "refused"
