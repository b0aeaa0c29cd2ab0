"""Decide on a verified bundle: a label when every applicable automated MUST passed, else a refusal.

The decision rests only on the verdicts the agency re-derived, never on the bundle's own report.
A refusal is written as JSON (format ``usine.decision/1``) and as readable text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from conformity.agency.verify import Verification
from conformity.catalog import Wave
from conformity.errors import Problem

DECISION_FORMAT = "usine.decision/1"
Outcome = Literal["labelled", "refused"]


def submission_id(bundle_sha256: str) -> str:
    """A submission's id: derived from the bundle's hash, so the same bundle is the same submission."""
    return "sub_" + bundle_sha256[:20]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the agency decided about one bundle, and on which grounds."""

    outcome: Outcome
    verification: Verification
    decided: str
    reasons: tuple[Problem, ...] = ()
    failed: tuple[dict[str, Any], ...] = ()
    passed: tuple[str, ...] = ()
    pending: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def verified(self) -> bool:
        return self.verification.ok

    @property
    def submission(self) -> str:
        return submission_id(self.verification.bundle_sha256)

    def label_fields(self, wave: Wave, label_id: str) -> dict[str, Any]:
        """The fields of the label to sign (only for a ``labelled`` decision)."""
        m = self.verification.manifest
        plan = self.verification.plan
        assert self.outcome == "labelled" and m is not None and plan is not None
        return {
            "label_id": label_id,
            "vendor": dict(m["vendor"]),
            "software": {"id": m["software"]["id"], "name": m["software"]["name"],
                         "registration_id": m["software"]["registration_id"]},
            "versions": [m["software"]["version"]],
            "category": m["category"], "wave": m["wave"], "referentials": plan.referential_versions(),
            "requirements_passed": list(self.passed), "issued": self.decided,
            "expires": wave.label_valid_until.isoformat(), "bundle_sha256": self.verification.bundle_sha256,
        }


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def decide(v: Verification, wave: Wave | None, now: dt.datetime) -> Decision:
    """Label or refuse a bundle from its verification (``wave``: the bundle's wave, None if unknown)."""
    decided = now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if not v.ok or wave is None:
        return Decision("refused", v, decided, reasons=tuple(v.reasons))
    failed = tuple(
        {"id": r["id"], "title": r["title"], "level": r["level"], "verdict": r["verdict"], "checks": r["checks"],
         "findings": r["findings"]}
        for r in v.rows if r["level"] == "MUST" and r["method"] == "automated"
        and r["verdict"] not in ("pass", "not-applicable"))
    passed = tuple(r["id"] for r in v.rows if r["method"] == "automated" and r["verdict"] == "pass")
    pending = tuple({"id": r["id"], "level": r["level"], "method": r["method"], "evidence": r.get("evidence", "")}
                    for r in v.rows if r["method"] in ("document", "manual"))
    warnings = []
    if v.run_started and v.run_started[:10] > wave.submission_deadline.isoformat():
        warnings.append(f"the run ({v.run_started}) is after the wave's submission deadline "
                        f"{wave.submission_deadline.isoformat()}")
    reasons: tuple[Problem, ...] = ()
    if now >= _day_end(wave.label_valid_until):
        reasons = (Problem("", "wave", f"labels of {wave.id} expired on {wave.label_valid_until.isoformat()}; "
                                       "none can be issued"),)
    outcome: Outcome = "refused" if failed or reasons else "labelled"
    return Decision(outcome, v, decided, reasons, failed, passed, pending, tuple(warnings))


def decision_doc(d: Decision, *, recorded: bool, label_id: str | None = None) -> dict[str, Any]:
    """The decision as JSON: outcome, run identity, reasons, failed MUST requirements with their findings."""
    v, m = d.verification, d.verification.manifest or {}
    doc: dict[str, Any] = {
        "format": DECISION_FORMAT, "outcome": d.outcome, "submission": d.submission, "recorded": recorded,
        "bundle": {"name": v.bundle.name, "sha256": v.bundle_sha256}, "verified": d.verified,
        "decided": d.decided,
        "vendor": m.get("vendor"), "software": m.get("software"), "wave": m.get("wave"), "category": m.get("category"),
        "reasons": [{"file": p.file, "where": p.where, "message": p.message} for p in d.reasons],
        "failed_requirements": list(d.failed),
        "pending_reviews": list(d.pending) if d.outcome == "labelled" else [],
        "warnings": list(d.warnings),
    }
    if label_id:
        doc["label_id"] = label_id
    return doc


def refusal_text(doc: dict[str, Any]) -> str:
    """A refusal as a vendor reads it: why, and for each failed MUST requirement, its findings."""
    sw = doc.get("software") or {}
    who = f"{sw.get('name', '?')} {sw.get('version', '?')} ({(doc.get('vendor') or {}).get('id', '?')})"
    lines = [f"REFUSED: {who}, wave {doc.get('wave') or '?'}, category {doc.get('category') or '?'}",
             f"bundle {doc['bundle']['name']} sha256 {doc['bundle']['sha256']}",
             f"submission {doc['submission']} ({'recorded in the registry' if doc['recorded'] else 'not recorded: the evidence did not verify'})",
             ""]
    if doc["reasons"]:
        lines.append(f"The evidence does not verify ({len(doc['reasons'])} reason(s)):")
        for r in doc["reasons"]:
            where = f" at {r['where']}" if r["where"] else ""
            lines.append(f"  - {r['file'] or 'bundle'}{where}: {r['message']}")
    if doc["failed_requirements"]:
        lines.append(f"{len(doc['failed_requirements'])} applicable automated MUST requirement(s) not passed:")
        for f in doc["failed_requirements"]:
            lines.append(f"  - {f['id']} [{f['level']}] {f['title']}: {f['verdict']} (checks: {', '.join(f['checks'])})")
            for finding in f["findings"]:
                detail = ""
                if "exchange" in finding:
                    detail += f" (exchange {finding['exchange']})"
                if finding.get("where"):
                    detail += f" at {finding['where']}"
                if "expected" in finding or "got" in finding:
                    detail += f"; expected {finding.get('expected')!r}, got {finding.get('got')!r}"
                lines.append(f"      · {finding['message']}{detail}")
    for w in doc.get("warnings", ()):
        lines.append(f"note: {w}")
    return "\n".join(lines) + "\n"
