"""The rows a decision rests on, typed: as the agency builds them and as the registry stores and reads them back.

A submission's ``decision`` column holds :class:`DecisionRecord` as JSON; it is parsed once, where the
registry reads the row, and every reader (CLI, web pages, API, re-decision) works on these types. Each
``to_json`` writes exactly the keys the registry and the ``usine.decision/2`` document always had;
``from_json`` reads them back, including records written by older registries (schema 1-3: rows without
a title, no facts, no review lists).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformity.errors import Problem
from conformity.harness.report import RequirementRow

__all__ = ["Awaiting", "DecisionRecord", "MissingEvidence", "NotPassed", "RecordedRow", "Rejected", "Revocation"]


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked label that still blocks its software version in its wave (not reinstated)."""

    label_id: str
    revoked: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"label_id": self.label_id, "revoked": self.revoked, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RecordedRow:
    """A requirement row as the registry keeps it (its findings, if it failed, are kept in :class:`NotPassed`)."""

    id: str
    title: str
    level: str
    method: str
    verdict: str
    evidence: str | None = None  # what to provide, for a requirement no check proves

    @classmethod
    def of(cls, row: RequirementRow) -> RecordedRow:
        return cls(row.id, row.title, row.level, row.method, row.verdict, row.evidence)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "level": self.level, "method": self.method,
                               "verdict": self.verdict}
        if self.evidence is not None:
            out["evidence"] = self.evidence
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RecordedRow:
        # registry schema 1-3 rows carry no title
        return cls(d["id"], d.get("title", ""), d["level"], d["method"], d["verdict"], d.get("evidence"))


@dataclass(frozen=True, slots=True)
class NotPassed:
    """An applicable automated MUST the run did not pass, with what its checks found."""

    id: str
    title: str
    level: str
    verdict: str
    checks: tuple[str, ...]
    findings: tuple[dict[str, Any], ...]  # each a finding's JSON, as the signed traces re-derived it

    @classmethod
    def of(cls, row: RequirementRow) -> NotPassed:
        return cls(row.id, row.title, row.level, row.verdict, tuple(row.checks), tuple(dict(f) for f in row.findings))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "level": self.level, "verdict": self.verdict,
                "checks": list(self.checks), "findings": [dict(f) for f in self.findings]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NotPassed:
        return cls(d["id"], d.get("title", ""), d["level"], d["verdict"], tuple(d.get("checks", ())),
                   tuple(d.get("findings", ())))


@dataclass(frozen=True, slots=True)
class Rejected:
    """A MUST a reviewer rejected (the latest review of it)."""

    id: str
    title: str
    level: str
    method: str
    reviewer: str
    reviewed: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "level": self.level, "method": self.method,
                "reviewer": self.reviewer, "reviewed": self.reviewed, "reason": self.reason}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Rejected:
        return cls(d["id"], d.get("title", ""), d["level"], d["method"], d["reviewer"], d["reviewed"], d["reason"])


@dataclass(frozen=True, slots=True)
class MissingEvidence:
    """A document MUST with no evidence in the run (it can never be reviewed)."""

    id: str
    title: str
    level: str
    method: str
    evidence: str  # what to provide

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "level": self.level, "method": self.method,
                "evidence": self.evidence}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MissingEvidence:
        return cls(d["id"], d.get("title", ""), d["level"], d["method"], d.get("evidence", ""))


@dataclass(frozen=True, slots=True)
class Awaiting:
    """A document/manual MUST still waiting for a review, or (``accepted_by``) for a second reviewer's."""

    id: str
    title: str
    level: str
    method: str
    evidence: str  # what to provide
    attached: tuple[str, ...]  # the run's evidence files for it
    accepted_by: str | None = None  # the first reviewer, when it waits for the second (four-eyes)
    #: why another reviewer's acceptance did not count as the second (one person: conformity.agency.persons)
    one_person: str | None = None

    @property
    def second_review(self) -> bool:
        return self.accepted_by is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "level": self.level, "method": self.method,
                               "evidence": self.evidence, "attached": list(self.attached)}
        if self.accepted_by is not None:
            out |= {"accepted_by": self.accepted_by, "second_review": True}
        if self.one_person is not None:
            out["one_person"] = self.one_person
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Awaiting:
        return cls(d["id"], d.get("title", ""), d["level"], d["method"], d.get("evidence", ""),
                   tuple(d.get("attached", ())), d.get("accepted_by"), d.get("one_person"))


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A submission's decision as the registry keeps it (``submissions.decision``), read back typed.

    ``facts`` is the JSON :meth:`Facts.to_json` wrote (``None`` for submissions recorded before runs were
    identities); ``raw`` is the stored JSON whole, for the fields older registries wrote and nothing reads.
    """

    outcome: str | None = None
    reasons: tuple[Problem, ...] = ()
    failed: tuple[NotPassed, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    missing_evidence: tuple[MissingEvidence, ...] = ()
    awaiting: tuple[Awaiting, ...] = ()
    warnings: tuple[str, ...] = ()
    requirements: tuple[RecordedRow, ...] = ()
    label_id: str | None = None
    waived_failures: tuple[NotPassed, ...] = ()  # failures the agency waived (still not passed)
    run_started: str | None = None
    facts: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DecisionRecord:
        return cls(
            outcome=d.get("outcome"),
            reasons=tuple(Problem(file, where, message) for file, where, message in d.get("reasons", ())),
            failed=tuple(NotPassed.from_json(x) for x in d.get("failed", ())),
            rejected=tuple(Rejected.from_json(x) for x in d.get("rejected", ())),
            missing_evidence=tuple(MissingEvidence.from_json(x) for x in d.get("missing_evidence", ())),
            awaiting=tuple(Awaiting.from_json(x) for x in d.get("awaiting_review", ())),
            warnings=tuple(d.get("warnings", ())),
            requirements=tuple(RecordedRow.from_json(x) for x in d.get("requirements", ())),
            label_id=d.get("label_id"),
            waived_failures=tuple(NotPassed.from_json(x) for x in d.get("waived_failures", ())),
            run_started=d.get("run_started"),
            facts=d.get("facts"), raw=dict(d))

    def current(self) -> dict[str, Any]:
        """What the vendor API shows of it (``current_decision``): the outcome, what awaits review, the rejections
        and failures (each key as the registry stores it, present when the decision recorded it)."""
        shown: dict[str, Any] = {"outcome": self.outcome, "awaiting_review": [a.to_json() for a in self.awaiting],
                                 "rejected": [r.to_json() for r in self.rejected],
                                 "failed": [f.to_json() for f in self.failed]}
        return {k: v for k, v in shown.items() if k in self.raw}
