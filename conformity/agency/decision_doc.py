"""A decision as the vendor and the agency read it: JSON (``usine.decision/2``, schema ``decision``) and text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformity.agency.decision import DECISION_FORMAT, Decision, Facts
from conformity.agency.timing import Longest
from conformity.checks.model import Finding
from conformity.runs import canonical_seed

HEADLINE = {"labelled": "LABELLED", "pending": "PENDING", "refused": "REFUSED", "revoked": "REVOKED"}


def who_of_facts(f: Facts) -> dict[str, Any]:
    i = f.identity
    return {"vendor": {"id": i.vendor_id, "name": f.vendor_name},
            "software": {"id": i.software_id, "name": f.software_name, "version": i.version,
                         "registration_id": f.registration_id},
            "wave": i.wave, "category": i.category,
            "run": {"id": i.run_id, "seed": canonical_seed(f.seed), "harness": f.harness, "started": f.run_started,
                    **({"seed_source": f.seed_source} if f.seed_source else {}),
                    **({"attempt": f.attempt} if f.attempt else {}),
                    **({"longest": f.longest.to_json()} if f.longest else {})}}


def who_of_manifest(m: dict[str, Any] | None) -> dict[str, Any]:
    """What an unverified bundle claims (shown as such: nothing in it is proven)."""
    m = m or {}
    return {"vendor": m.get("vendor"), "software": m.get("software"), "wave": m.get("wave"),
            "category": m.get("category"), "run": None}


@dataclass(frozen=True, slots=True)
class DecisionDoc:
    """A decision with what the vendor is told about it: ``to_json`` is the document, ``text`` its reading.

    ``who`` is the run's identity as :func:`who_of_facts` proves it or :func:`who_of_manifest` reports the
    bundle's claim (JSON, shown as it is); ``recorded``: the run is in the registry (whether or not this step
    wrote anything); ``verified``: the decision rests on verified facts.
    """

    decision: Decision
    who: dict[str, Any]
    recorded: bool
    bundle: tuple[str, str]  # the zip's name and SHA-256
    verified: bool
    label_id: str | None = None
    already: str | None = None  # when the run was decided before
    labelled_by: tuple[str, str] | None = None  # (label id, submission) the version already holds

    @property
    def outcome(self) -> str:
        return self.decision.outcome

    @property
    def submission(self) -> str:
        return self.decision.submission

    def to_json(self) -> dict[str, Any]:
        """The decision as JSON (``usine.decision/2``): outcome, what was tested, and every ground it rests on."""
        d = self.decision
        doc: dict[str, Any] = {
            "format": DECISION_FORMAT, "outcome": d.outcome, "submission": d.submission, "recorded": self.recorded,
            "bundle": {"name": self.bundle[0], "sha256": self.bundle[1]},
            "verified": self.verified, "decided": d.decided,
            **self.who,
            "reasons": [{"file": p.file, "where": p.where, "message": p.message} for p in d.reasons],
            "failed_requirements": [f.to_json() for f in d.failed],
            "rejected_reviews": [r.to_json() for r in d.rejected],
            "missing_evidence": [m.to_json() for m in d.missing_evidence],
            "awaiting_review": [a.to_json() for a in d.awaiting],
            "reviews": [r.to_json() for r in d.reviewed],
            "not_reviewed_should": list(d.not_reviewed),
            "waived": [w.to_json() for w in d.waived],
            "warnings": list(d.warnings),
        }
        if self.label_id:
            doc["label_id"] = self.label_id
        if self.already:
            doc["already_decided"] = self.already
        if d.revoked:
            doc["revocation"] = d.revoked.to_json()
        if self.labelled_by:
            doc["labelled_by"] = {"label_id": self.labelled_by[0], "submission": self.labelled_by[1]}
        return doc

    def text(self) -> str:
        """The decision as a vendor reads it: the outcome, then why, requirement by requirement."""
        d = self.decision
        run = self.who.get("run") or {}
        longest = Longest.from_json(run.get("longest"))
        recorded = ("in the registry" if self.recorded else
                    "not recorded: the evidence did not verify" if not self.verified else "not recorded")
        lines = [f"{HEADLINE[d.outcome]}: {_who_line(self.who)}"
                 + (f" (already decided on {self.already})" if self.already else ""),
                 f"submission {d.submission}" + (f", run {run['id']}" if run.get("id") else "")
                 + (f", attempt {run['attempt']}" if run.get("attempt") else "")
                 + (", seed chosen by the vendor" if run.get("seed_source") == "caller" else "")
                 + (f", longest scenario {longest.scenario} {longest.said()}" if longest else "")
                 + f" ({recorded}); bundle {self.bundle[0]} sha256 {self.bundle[1]}", ""]
        if self.label_id:
            lines.append(f"label {self.label_id}")
        if self.labelled_by:
            label_id, submission = self.labelled_by
            lines.append(f"This version already holds label {label_id} in this wave and category (from submission "
                         f"{submission}): one label per tested version, none issued for this run.")
        if d.revoked:
            r = d.revoked
            lines.append(f"Label {r.label_id} of this version was revoked on {r.revoked}: {r.reason}")
            lines.append("No label is issued for this software version in this wave until the agency reinstates it "
                         "(usine agency registry reinstate LABEL --reason TEXT).")
        if d.reasons:
            lines.append(f"The evidence does not verify ({len(d.reasons)} reason(s)):" if not self.verified
                         else f"{len(d.reasons)} reason(s):")
            for p in d.reasons:
                where = f" at {p.where}" if p.where else ""
                lines.append(f"  - {p.file or 'bundle'}{where}: {p.message}")
        if d.failed:
            lines.append(f"{len(d.failed)} applicable automated MUST requirement(s) not passed:")
            for f in d.failed:
                lines.append(f"  - {f.id} [{f.level}] {f.title}: {f.verdict} (checks: {', '.join(f.checks)})")
                for finding in map(Finding.from_json, f.findings):
                    detail = ""
                    if finding.exchange is not None:
                        detail += f" (exchange {finding.exchange})"
                    if finding.where:
                        detail += f" at {finding.where}"
                    if finding.expected is not None or finding.got is not None:
                        detail += f"; expected {finding.expected!r}, got {finding.got!r}"
                    lines.append(f"      · {finding.message}{detail}")
        if d.rejected:
            lines.append(f"{len(d.rejected)} MUST requirement(s) rejected on review:")
            for rj in d.rejected:
                lines.append(f"  - {rj.id} [{rj.level}, {rj.method}] {rj.title}: rejected by {rj.reviewer} on "
                             f"{rj.reviewed}: {rj.reason}")
        if d.missing_evidence:
            lines.append(f"{len(d.missing_evidence)} document MUST requirement(s) without evidence in this run (never "
                         "reviewable: attach it with usine run --evidence REQ-ID=FILE and submit a new run):")
            for m in d.missing_evidence:
                lines.append(f"  - {m.id} {m.title} (usine wave show says what to provide)")
        if d.awaiting and d.outcome == "pending":
            lines.append(f"{len(d.awaiting)} MUST requirement(s) await the agency's review "
                         f"(usine agency review {d.submission} REQ-ID --accept|--reject ...):")
            for a in d.awaiting:
                attached = ", ".join(a.attached) or "no file (a witnessed manual check)"
                second = (f" — accepted by {a.accepted_by}, awaits a second reviewer (four-eyes"
                          + (f"; {a.one_person})" if a.one_person else ")") if a.second_review else "")
                lines.append(f"  - {a.id} [{a.method}] {a.title}: {attached}{second}")
        elif d.awaiting:
            lines.append(f"{len(d.awaiting)} other MUST requirement(s) not accepted on review: "
                         + ", ".join(a.id + (f" (accepted by {a.accepted_by}, awaits a second reviewer)"
                                             if a.second_review else "") for a in d.awaiting))
        if d.reviewed and d.outcome != "refused":
            lines.append(f"{len(d.reviewed)} requirement(s) reviewed:")
            for rv in d.reviewed:
                lines.append(f"  - {rv.requirement} [{rv.level}] {rv.verdict} by {rv.reviewer} on {rv.at}")
        if d.not_reviewed:
            lines.append(f"SHOULD requirement(s) not reviewed (they do not block a label): {', '.join(d.not_reviewed)}")
        for w in d.waived:
            lines.append(f"WAIVED by the agency: {w.requirement} ({w.verdict}) by {w.decider} on {w.at}: {w.reason}")
        for warning in d.warnings:
            lines.append(f"note: {warning}")
        return "\n".join(lines) + "\n"


def decision_doc(d: Decision, who: dict[str, Any], *, recorded: bool, bundle: tuple[str, str],
                 label_id: str | None = None, already: str | None = None,
                 labelled_by: tuple[str, str] | None = None, verified: bool | None = None) -> DecisionDoc:
    """The decision and what the vendor is told about it (``verified`` defaults to whether it rests on verified
    facts)."""
    return DecisionDoc(d, who, recorded, bundle, d.facts is not None if verified is None else verified, label_id,
                       already, labelled_by)


def _who_line(who: dict[str, Any]) -> str:
    sw, vendor = who.get("software") or {}, who.get("vendor") or {}
    return (f"{sw.get('name', '?')} {sw.get('version', '?')} ({vendor.get('id', '?')}), wave {who.get('wave') or '?'}, "
            f"category {who.get('category') or '?'}")
