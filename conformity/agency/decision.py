"""Decide on a verified run: a label only when every applicable MUST is passed (automated) or accepted (review).

A decision is a pure function of what the agency established about the run (:class:`Facts`: the
verdicts it re-derived from the signed traces and the evidence the traces bind), the reviews recorded
for it, the wave and the time; never of the bundle's own report, nor of the zip's bytes. Outcomes:

``labelled``  every applicable automated MUST passed (or was explicitly waived by the agency) and every
              applicable document/manual MUST was accepted by two different reviewers — two people: an
              account and the admin who lately set its password count as one (:mod:`conformity.agency.persons`)
              — (SHOULD requirements never block; one review of a SHOULD is enough);
``pending``   nothing failed, but some document/manual MUST still waits for a review, or for the second
              review by another reviewer (the four-eyes rule; listed);
``refused``   an automated MUST did not pass, a reviewer rejected a MUST, a document MUST has no
              evidence in the run (so it can never be reviewed), the run started before the wave opened
              (the sandbox's signed session time), the vendor chose the run's seed (``--seed``: the
              sandbox signed it so; a run for a label takes the sandbox's seed), the wave's labels have
              expired, or the wave's specification is no longer the one the run was verified against (the
              catalog now pins another referential version, or applies other requirements or levels:
              :func:`specification_changes`);
``revoked``   the version holds a revoked label in this wave and was not reinstated: nothing is issued.

A refusal or a pending decision is written as JSON (format ``usine.decision/2``) and as readable text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from conformity.agency.persons import NOBODY_PAIRED, Persons
from conformity.agency.records import Awaiting, MissingEvidence, NotPassed, RecordedRow, Rejected, Revocation
from conformity.agency.timing import LONG_SCENARIO, Longest
from conformity.agency.verify import RunIdentity, Verification
from conformity.bundle.evidence import EvidenceFile
from conformity.catalog import Wave
from conformity.errors import Problem
from conformity.runs import canonical_seed, read_seed

DECISION_FORMAT = "usine.decision/2"
Outcome = Literal["labelled", "pending", "refused", "revoked"]
REVIEWABLE = ("document", "manual")
#: why a run whose seed the caller chose is refused (a policy: such a run reproduces another, it is not one for a
#: label; the sandbox recorded who chose the seed in every trace it signed)
CALLER_SEED_REFUSED = ("the seed was chosen by the vendor (usine run --seed); a run for a label takes the sandbox's "
                       "seed: run again without --seed")
#: exit codes of ``usine agency decide`` (documented in the README)
EXIT = {"labelled": 0, "refused": 1, "revoked": 3, "pending": 4}


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Review:
    """One reviewer's verdict on one document/manual requirement of a submission (the latest one counts)."""

    submission: str
    requirement: str
    level: str
    method: str
    verdict: Literal["accepted", "rejected"]
    reason: str
    reviewer: str
    at: str
    evidence: tuple[dict[str, Any], ...] = ()  # the files reviewed: {file, sha256}
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.requirement, "level": self.level, "method": self.method, "verdict": self.verdict,
                "reviewer": self.reviewer, "reviewed": self.at, "reason": self.reason,
                "evidence": [dict(e) for e in self.evidence]}


def confirmations(reviews: Iterable[Review], persons: Persons = NOBODY_PAIRED) -> dict[str, Review]:
    """Four-eyes: requirement → the earlier acceptance, by another reviewer, that its latest acceptance confirms.

    Only acceptances since the requirement's last rejection count; a requirement whose latest review is
    a rejection, or whose acceptances are all by one reviewer (one person: ``persons``), has none.
    """
    by_requirement: dict[str, list[Review]] = {}
    for r in reviews:
        by_requirement.setdefault(r.requirement, []).append(r)
    out = {}
    for requirement, history in by_requirement.items():
        latest = history[-1]
        if latest.verdict != "accepted":
            continue
        for earlier in reversed(history[:-1]):
            if earlier.verdict == "rejected":
                break
            if not persons.same(earlier.reviewer, latest.reviewer):
                out[requirement] = earlier
                break
    return out


def latest_reviews(reviews: Iterable[Review]) -> dict[str, Review]:
    """The review that counts for each reviewed requirement: the latest."""
    return {r.requirement: r for r in reviews}


@dataclass(frozen=True, slots=True)
class Waiver:
    """The agency's explicit decision not to hold a run to one automated MUST it did not pass (e.g. cannot judge)."""

    requirement: str
    verdict: str  # what the checks said: fail, error or not-exercised
    reason: str
    decider: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.requirement, "verdict": self.verdict, "reason": self.reason, "decider": self.decider,
                "waived": self.at}


def waiver_problems(facts: Facts, wave: Wave, requirements: Mapping[str, Any], wanted: Iterable[str]) -> list[Problem]:
    """Why each wanted waiver may not be given (``requirements``: id → catalog Requirement of the run's plan)."""
    rows = {r.id: r for r in facts.rows}
    out = []
    for rid in wanted:
        row, req = rows.get(rid), requirements.get(rid)
        why = None
        if row is None or req is None:
            why = f"{rid} does not apply to {facts.identity.wave} {facts.identity.category}"
        elif row.method != "automated":
            why = f"{rid} is proven by {row.method} review, not waived: record a review"
        elif row.level != "MUST":
            why = f"{rid} is a {row.level}: it never blocks a label, there is nothing to waive"
        elif row.verdict in ("pass", "not-applicable"):
            why = f"{rid} is {row.verdict}: there is nothing to waive"
        else:
            why = wave.waiver_refusal(req)
        if why:
            out.append(Problem("", "--waive", why))
    return out


@dataclass(frozen=True, slots=True)
class Facts:
    """What the agency established about one run: identity, re-derived verdicts, bound evidence."""

    identity: RunIdentity
    vendor_name: str
    software_name: str
    registration_id: str
    referentials: dict[str, str]
    seed: int
    harness: str
    run_started: str | None
    bundle_name: str
    bundle_sha256: str
    rows: tuple[RecordedRow, ...]
    evidence: tuple[EvidenceFile, ...]
    failed: tuple[NotPassed, ...] = ()  # applicable automated MUST not passed, with their findings
    #: who chose the run's seed ("sandbox" or "caller", as the sandbox signed it in every trace; None: recorded
    #: before the sandbox issued runs) and the run's attempt number (the software's runs in the wave and category)
    seed_source: str | None = None
    attempt: int | None = None
    #: the run's longest scenario, session opened to last exchange (the sandbox's signed times; None: recorded before
    #: the agency kept it)
    longest: Longest | None = None

    @property
    def submission(self) -> str:
        return self.identity.submission_id

    @classmethod
    def of(cls, v: Verification) -> Facts:
        m = v.manifest
        assert v.ok and m is not None
        failed = tuple(NotPassed.of(r) for r in v.rows if r.must_automated and not r.settled)
        return cls(v.identity, m["vendor"]["name"], m["software"]["name"], m["software"]["registration_id"],
                   dict(m["referentials"]), read_seed(m["seed"]), m["harness"]["version"], v.run_started, v.bundle.name,
                   v.bundle_sha256, tuple(RecordedRow.of(r) for r in v.rows), v.evidence, failed,
                   m["seed_source"], m["attempt"], v.longest)

    def to_json(self) -> dict[str, Any]:
        """What the registry keeps to decide again without the bundle (evidence is kept in its own table)."""
        return {"run": {"id": self.identity.run_id, "seed": canonical_seed(self.seed), "harness": self.harness,
                        "started": self.run_started, "seed_source": self.seed_source, "attempt": self.attempt,
                        **({"longest": self.longest.to_json()} if self.longest else {})},
                "vendor_name": self.vendor_name, "software_name": self.software_name,
                "registration_id": self.registration_id, "referentials": self.referentials,
                "bundle": {"name": self.bundle_name, "sha256": self.bundle_sha256}}

    @classmethod
    def from_json(cls, identity: RunIdentity, facts: Mapping[str, Any], rows: Iterable[RecordedRow],
                  failed: Iterable[NotPassed], evidence: Iterable[EvidenceFile]) -> Facts:
        run = facts["run"]
        return cls(identity, facts["vendor_name"], facts["software_name"], facts["registration_id"],
                   dict(facts["referentials"]), read_seed(run["seed"]), run["harness"], run["started"], facts["bundle"]["name"],
                   facts["bundle"]["sha256"], tuple(rows), tuple(evidence), tuple(failed), run.get("seed_source"),
                   run.get("attempt"), Longest.from_json(run.get("longest")))


@dataclass(frozen=True, slots=True)
class Decision:
    """What the agency decided about one run, and on which grounds."""

    outcome: Outcome
    submission: str
    decided: str
    facts: Facts | None = None  # None when the evidence did not verify
    reasons: tuple[Problem, ...] = ()
    failed: tuple[NotPassed, ...] = ()
    rejected: tuple[Rejected, ...] = ()                # MUST requirements a reviewer rejected
    missing_evidence: tuple[MissingEvidence, ...] = ()  # document MUST requirements with no evidence in the run
    awaiting: tuple[Awaiting, ...] = ()                # MUST requirements still waiting for a review
    passed: tuple[str, ...] = ()
    reviewed: tuple[Review, ...] = ()                  # the latest review of each reviewed requirement
    not_reviewed: tuple[str, ...] = ()                 # SHOULD requirements nobody reviewed (they do not block)
    warnings: tuple[str, ...] = field(default=())
    revoked: Revocation | None = None                  # the revocation that blocks the version (outcome revoked)
    waived: tuple[Waiver, ...] = ()                    # automated MUST requirements the agency waived
    confirmed: tuple[Review, ...] = ()                 # the first acceptance of each MUST a second reviewer confirmed

    def label_fields(self, wave: Wave, label_id: str) -> dict[str, Any]:
        """The fields of the label to sign (only for a ``labelled`` decision): what was tested and how."""
        f = self.facts
        assert self.outcome == "labelled" and f is not None
        i = f.identity
        return {
            "label_id": label_id,
            "vendor": {"id": i.vendor_id, "name": f.vendor_name},
            "software": {"id": i.software_id, "name": f.software_name, "registration_id": f.registration_id},
            "versions": [i.version], "category": i.category, "wave": i.wave, "referentials": f.referentials,
            "run": {"id": i.run_id, "seed": canonical_seed(f.seed), "harness": f.harness, "submission": self.submission,
                    **({"started": f.run_started} if f.run_started else {})},
            "requirements_passed": list(self.passed),
            "requirements_reviewed": [self._reviewed_json(r) for r in self.reviewed],
            **({"requirements_waived": [w.to_json() for w in self.waived]} if self.waived else {}),
            "issued": self.decided, "expires": wave.label_valid_until.isoformat(), "bundle_sha256": f.bundle_sha256,
        }

    def _reviewed_json(self, r: Review) -> dict[str, Any]:
        """A review as the label carries it; a MUST names the first review its reviewer confirmed (four-eyes)."""
        first = next((c for c in self.confirmed if c.requirement == r.requirement), None)
        out = r.to_json()
        if first is not None:
            out["first_review"] = {"reviewer": first.reviewer, "reviewed": first.at, "reason": first.reason}
        return out

    def record_json(self, label_id: str | None) -> dict[str, Any]:
        """The decision as the registry keeps it (``submissions.decision``)."""
        f = self.facts
        assert f is not None
        return {"outcome": self.outcome, "reasons": [[p.file, p.where, p.message] for p in self.reasons],
                "failed": [x.to_json() for x in self.failed], "rejected": [x.to_json() for x in self.rejected],
                "missing_evidence": [x.to_json() for x in self.missing_evidence],
                "awaiting_review": [x.to_json() for x in self.awaiting],
                "warnings": list(self.warnings), "requirements": [r.to_json() for r in f.rows], "label_id": label_id,
                "waived": [w.to_json() for w in self.waived],
                "waived_failures": [x.to_json() for x in f.failed if x.id in {w.requirement for w in self.waived}],
                "run_started": f.run_started, "facts": f.to_json()}


def _one_person(history: Sequence[Review], latest: Review, persons: Persons) -> str | None:
    """Why an acceptance awaiting a second person's has another reviewer's acceptance that does not confirm it."""
    for r in reversed(history[:history.index(latest)]):
        if r.requirement != latest.requirement:
            continue
        if r.verdict == "rejected":
            return None
        if (pair := persons.one(r.reviewer, latest.reviewer)) is not None:
            return pair.why()
    return None


#: a requirement as a wave's specification applies it: (id, level, method)
Applied = tuple[str, str, str]


def specification_changes(facts: Facts, pinned: Mapping[str, str], applied: Iterable[Applied]) -> tuple[Problem, ...]:
    """Why a recorded run is no longer evidence for its wave and category as the catalog now states them (``pinned``:
    referential → version; ``applied``: each requirement's id, level and method), empty when it still is.

    A run is verified against the specification of the catalog of the day and its verdicts are recorded; deciding it
    again later (reviews done, a version reinstated) with a catalog that pins another referential version, applies
    a requirement more or less, or holds one to another level, would label what that specification was never
    checked against: a SHOULD now a MUST that failed, a MUST the run never ran."""
    i = facts.identity
    changes = [f"{rid} {pinned.get(rid, '(not pinned)')} (the run: {facts.referentials.get(rid, '(absent)')})"
               for rid in sorted(set(pinned) | set(facts.referentials)) if pinned.get(rid) != facts.referentials.get(rid)]
    now = {a[0]: a for a in applied}
    then = {r.id: (r.id, r.level, r.method) for r in facts.rows}
    changes += [f"{rid} applies now as {now[rid][1]} {now[rid][2]}"
                + (f" (the run: {then[rid][1]} {then[rid][2]})" if rid in then else " (the run: not applied)")
                for rid in sorted(now) if now[rid] != then.get(rid)]
    changes += [f"{rid} applies no longer (the run: {then[rid][1]})" for rid in sorted(set(then) - set(now))]
    if not changes:
        return ()
    return (Problem("", "specification", f"the specification of {i.wave} {i.category} changed since this run was "
                                         f"verified: {'; '.join(changes)}; a label is issued only for the current "
                                         "specification: run again"),)


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def unverified(v: Verification, now: dt.datetime) -> Decision:
    """The refusal of a bundle whose evidence does not verify (never recorded; named after the zip's hash, since
    the run it claims is unproven)."""
    return Decision("refused", "sub_" + v.bundle_sha256[:20], iso(now), reasons=tuple(v.reasons) or (
        Problem("", "bundle", "the evidence does not verify"),))


def revoked(facts: Facts, revocation: Revocation, now: dt.datetime) -> Decision:
    """No label: the version's label in this wave was revoked and the version not reinstated."""
    return Decision("revoked", facts.submission, iso(now), facts, revoked=revocation)


def decide(facts: Facts, reviews: Sequence[Review] | Mapping[str, Review], wave: Wave, now: dt.datetime,
           waivers: Mapping[str, Waiver] | None = None, persons: Persons = NOBODY_PAIRED,
           changes: Sequence[Problem] = ()) -> Decision:
    """Judge a verified run with its reviews (every review recorded, in order: the latest of each requirement
    counts, and a MUST is accepted only when another person's acceptance confirms it — ``persons``: the reviewer
    names that count as one person now), the agency's waivers (``waivers``: requirement → waiver; validated by
    :func:`waiver_problems` when given) and how the wave's specification changed since the run was verified
    (``changes``: :func:`specification_changes`; each a reason to refuse)."""
    decided = iso(now)
    waivers = waivers or {}
    history = list(reviews.values()) if isinstance(reviews, Mapping) else list(reviews)
    confirmed = confirmations(history, persons)
    reviews = latest_reviews(history)
    failed = tuple(f for f in facts.failed if f.id not in waivers)
    waived = tuple(waivers[f.id] for f in facts.failed if f.id in waivers)
    rows = facts.rows
    passed = tuple(r.id for r in rows if r.method == "automated" and r.verdict == "pass")
    evidenced = {f.requirement for f in facts.evidence}
    reviewable = [r for r in rows if r.method in REVIEWABLE]
    rejected: list[Rejected] = []
    missing_evidence: list[MissingEvidence] = []
    awaiting: list[Awaiting] = []
    for r in reviewable:
        if r.level != "MUST":
            continue
        review = reviews.get(r.id)
        wanted = r.evidence or ""
        if review is not None and review.verdict == "rejected":
            rejected.append(Rejected(r.id, r.title, r.level, r.method, review.reviewer, review.at, review.reason))
        elif review is not None and r.id in confirmed:
            continue
        elif review is not None:  # one acceptance: a second reviewer must confirm it (four-eyes)
            awaiting.append(Awaiting(r.id, r.title, r.level, r.method, wanted,
                                     tuple(f.file for f in facts.evidence if f.requirement == r.id), review.reviewer,
                                     _one_person(history, review, persons)))
        elif r.method == "document" and r.id not in evidenced:
            missing_evidence.append(MissingEvidence(r.id, r.title, r.level, r.method, wanted))
        else:
            awaiting.append(Awaiting(r.id, r.title, r.level, r.method, wanted,
                                     tuple(f.file for f in facts.evidence if f.requirement == r.id)))
    reviewed = tuple(reviews[r.id] for r in reviewable if r.id in reviews)
    not_reviewed = tuple(r.id for r in reviewable if r.level != "MUST" and r.id not in reviews)
    warnings = []
    if facts.run_started and facts.run_started[:10] > wave.submission_deadline.isoformat():
        warnings.append(f"the run ({facts.run_started}) is after the wave's submission deadline "
                        f"{wave.submission_deadline.isoformat()}")
    if facts.longest is not None and facts.longest.long:
        warnings.append(f"scenario {facts.longest.scenario} lasted {facts.longest.said()} from its session's opening "
                        f"to its last exchange (the sandbox's signed times; the harness plays a scenario in seconds, "
                        f"warned past {LONG_SCENARIO.total_seconds() / 60:g} min): it may have been played by hand, or "
                        "its inputs studied before the software was made to act on them")
    reasons: tuple[Problem, ...] = ()
    if now >= _day_end(wave.label_valid_until):
        reasons = (Problem("", "wave", f"labels of {wave.id} expired on {wave.label_valid_until.isoformat()}; "
                                       "none can be issued"),)
    if facts.run_started and facts.run_started[:10] < wave.open.isoformat():
        # the sandbox's time, signed in every trace: a run against a wave not yet in force, never labelled
        reasons += (Problem("", "run", f"the run ({facts.run_started}) started before the wave opened "
                                       f"({wave.open.isoformat()}): run again on or after that day"),)
    if facts.seed_source == "caller":
        reasons += (Problem("", "run", CALLER_SEED_REFUSED),)
    reasons += tuple(changes)
    outcome: Outcome
    if failed or rejected or missing_evidence or reasons:
        outcome = "refused"
    elif awaiting:
        outcome = "pending"
    else:
        outcome = "labelled"
    return Decision(outcome, facts.submission, decided, facts, reasons, failed, tuple(rejected),
                    tuple(missing_evidence), tuple(awaiting), passed, reviewed, not_reviewed, tuple(warnings),
                    waived=waived, confirmed=tuple(confirmed[r.requirement] for r in reviewed
                                                   if r.requirement in confirmed and r.level == "MUST"))
