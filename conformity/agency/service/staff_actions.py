"""The staff's actions (review, decide with waivers, revoke, reinstate), one place for the web forms and the API.

Each is the registry operation the CLI performs, then an audit entry; a refusal is audited too and
answered as a problem (nothing changed). Who may act is checked by the caller (session or token).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from conformity.agency.decision import Decision, Review
from conformity.agency.registry import Registry, Submission
from conformity.agency.service import audit
from conformity.agency.service.accounts import Account
from conformity.agency.service.config import ServiceConfig
from conformity.agency.service.deps import still_allowed
from conformity.agency.service.problems import HTTPProblem, from_input_error
from conformity.agency.submit import WaiverRequest, decide_submission, preview
from conformity.errors import InputError

REQUIREMENT = re.compile(r"^[A-Z][A-Z0-9]*-[0-9A-Za-z.-]+$")


@dataclass(frozen=True, slots=True)
class Done:
    """What an action did: the submission it concerns, one line for people, and the document for the API."""

    submission: str
    what: str
    doc: dict[str, Any]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def review_queue(reg: Registry, cfg: ServiceConfig, now: dt.datetime,
                 submissions: list[Submission] | None = None) -> list[tuple[Submission, Decision]]:
    """The pending submissions (of ``submissions``, else the registry's), each with what it awaits: its decision
    preview. One recorded before runs were identities is left out: it is decided again only from a new run."""
    subs = reg.submissions(now=now) if submissions is None else submissions
    return [(s, preview(reg, s, cfg.catalog, now, cfg.same_person)) for s in subs
            if s.effective_state(now) == "pending" and s.identity is not None]


def review(cfg: ServiceConfig, acct: Account, ident: str, requirements: list[str], verdict: str, reason: str,
           client: str) -> Done:
    """Accept or reject document/manual requirements of a pending submission (four-eyes for MUST)."""
    if verdict not in ("accepted", "rejected"):
        raise HTTPProblem(422, "invalid-review", "choose accept or reject (verdict: accepted or rejected)")
    if not requirements or not all(isinstance(r, str) and REQUIREMENT.match(r) for r in requirements):
        raise HTTPProblem(422, "invalid-review", "name the requirement(s) reviewed")
    with Registry(cfg.database, guard=still_allowed(acct)) as reg:
        try:
            recorded: list[Review] = reg.review(ident, requirements, verdict, reason, acct.reviewer_name,  # type: ignore[arg-type]  # verdict checked above
                                                same_person=cfg.same_person)  # dated holding the write lock
        except InputError as exc:
            audit.record(reg.db, acct.login, acct.role, "review-refused", ident, exc.render(), client)
            raise from_input_error(exc) from exc
        sub = recorded[0].submission
        audit.record(reg.db, acct.login, acct.role, f"review-{verdict}", sub,
                     f"{', '.join(requirements)}: {reason.strip()}", client)
    return Done(sub, f"{verdict}: {', '.join(requirements)}",
                {"submission": sub, "reviews": [r.to_json() | {"id": r.requirement} for r in recorded]})


def decide(cfg: ServiceConfig, acct: Account, ident: str, waive: tuple[str, ...], waive_reason: str,
           client: str) -> Done:
    """Decide on a submission from what the registry holds (labelled, refused or still pending), with waivers."""
    request = WaiverRequest(waive, waive_reason, acct.reviewer_name)
    with Registry(cfg.database) as reg:
        try:
            outcome = decide_submission(ident, cfg.catalog, cfg.database, cfg.key_path, cfg.decisions / ident,
                                        waive=request, same_person=cfg.same_person, guard=still_allowed(acct))
        except InputError as exc:
            audit.record(reg.db, acct.login, acct.role, "decide-refused", ident, exc.render(), client)
            raise from_input_error(exc) from exc
        doc = outcome.decision
        what = doc.outcome + (f": label {doc.label_id}" if doc.label_id else "") + \
            ("" if outcome.created else " (nothing new recorded)")
        audit.record(reg.db, acct.login, acct.role, "decide", doc.submission,
                     what + (f"; waived {', '.join(waive)}" if waive else ""), client)
    return Done(doc.submission, f"decision: {what}", {"decision": doc.to_json(), "created": outcome.created,
                                                          **({"label": outcome.signed} if outcome.signed else {})})


def revoke_or_reinstate(cfg: ServiceConfig, acct: Account, label_id: str, action: str, reason: str,
                        client: str) -> Done:
    """Revoke a label (and the other labels of its version), or reinstate the version of a revoked one."""
    if action not in ("revoke", "reinstate"):
        raise HTTPProblem(404, "not-found", f"no action {action!r} on labels (revoke, reinstate)")
    with Registry(cfg.database, guard=still_allowed(acct)) as reg:
        try:
            if action == "revoke":
                done = reg.revoke(label_id, reason)  # dated holding the write lock
                what = f"revoked {', '.join(done)}: {reason.strip()}"
            else:
                reg.reinstate(label_id, reason)
                done, what = [label_id], f"reinstated the version of {label_id}: {reason.strip()}"
            sub = reg.get(label_id).id
        except InputError as exc:
            audit.record(reg.db, acct.login, acct.role, f"{action}-refused", label_id, exc.render(), client)
            raise from_input_error(exc) from exc
        audit.record(reg.db, acct.login, acct.role, action, label_id, what, client)
    return Done(sub, what, {"submission": sub, "action": action, "labels": list(done), "reason": reason.strip()})
