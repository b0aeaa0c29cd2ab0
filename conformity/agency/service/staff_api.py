"""The staff's JSON API (``/api/v1/staff``): review, decide (with waivers), revoke, reinstate with a Bearer token.

A staff token (``usine agency account token LOGIN``) carries the scopes its role allows: ``review``
(reviewers), ``decide`` (deciders), both and ``admin`` (admins). The same rules as the pages hold
(four-eyes for MUST requirements: a second acceptance is another person's); refusals are RFC 9457
problem documents and audit entries. Tokens are not sent by browsers on their own: no CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from conformity.agency.registry import Registry
from conformity.agency.service import accounts, staff_actions
from conformity.agency.service.accounts import Account
from conformity.agency.service.deps import StrictJSONRoute, client, config_of, staff_token
from conformity.agency.service.problems import HTTPProblem
from conformity.errors import InputError
from conformity.http_problems import require_json_media


async def _json_only(request: Request) -> None:
    """A body the staff API reads is JSON: 415 for any other media type (before it is read)."""
    if request.method in ("POST", "PUT", "PATCH"):
        require_json_media(request)


def _staff(action: accounts.Action) -> Callable[[Request], Account]:
    """The staff account allowed to ``action`` (``staff_token``), as a dependency: a call without a valid token is
    401/403 before its body is validated (an anonymous caller learns nothing of what a body must be)."""
    def dependency(request: Request) -> Account:
        return staff_token(request, action)
    return dependency


Reviewer = Annotated[Account, Depends(_staff("review"))]
Decider = Annotated[Account, Depends(_staff("decide"))]

router = APIRouter(prefix="/api/v1/staff", tags=["staff"], dependencies=[Depends(_json_only)],
                   route_class=StrictJSONRoute)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or bad token (problem+json)"},
    403: {"description": "this role or token may not (problem+json)"},
    404: {"description": "no such submission or label"},
    422: {"description": "refused by the agency's rules, nothing changed: every problem listed (problem+json)"}}


class ReviewIn(BaseModel):
    requirements: list[str] = Field(min_length=1, max_length=200, description="requirement ids reviewed")
    verdict: str = Field(pattern="^(accepted|rejected)$")
    reason: str = Field(min_length=1, max_length=4000)


class DecideIn(BaseModel):
    waive: list[str] = Field(default_factory=list, max_length=200,
                             description="MUST requirements to waive (e.g. a check that cannot run), with waive_reason")
    waive_reason: str = Field("", max_length=4000)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


@router.get("/queue", summary="Submissions awaiting review, with what each awaits (and whose acceptance)",
            responses=ERRORS)
def queue(request: Request, acct: Reviewer) -> dict[str, Any]:
    cfg = config_of(request)
    now = staff_actions._now()
    out = []
    with Registry(cfg.database) as reg:
        for s, d in staff_actions.review_queue(reg, cfg, now):
            out.append({"submission": s.id, "vendor": s.vendor_id, "software": s.software_name, "version": s.version,
                        "wave": s.wave, "category": s.category, "awaiting": [a.to_json() for a in d.awaiting]})
    return {"reviewer": acct.reviewer_name, "queue": out}


@router.post("/submissions/{ident}/reviews", status_code=201, summary="Accept or reject requirements (four-eyes "
             "for MUST)", responses=ERRORS)
async def review(request: Request, ident: str, acct: Reviewer, body: ReviewIn) -> dict[str, Any]:
    done = await run_in_threadpool(staff_actions.review, config_of(request), acct, ident, body.requirements,
                                   body.verdict, body.reason, client(request))
    return done.doc


@router.post("/submissions/{ident}/decision", summary="Decide from what the registry holds (with waivers)",
             responses=ERRORS)
async def decide(request: Request, ident: str, acct: Decider, body: DecideIn) -> dict[str, Any]:
    if body.waive and not body.waive_reason.strip():
        raise HTTPProblem(422, "invalid-waiver", "a waiver says why (waive_reason)")
    done = await run_in_threadpool(staff_actions.decide, config_of(request), acct, ident, tuple(body.waive),
                                   body.waive_reason, client(request))
    return done.doc


@router.post("/labels/{label_id}/revocation", summary="Revoke a label (its software version in its wave)",
             responses=ERRORS)
async def revoke(request: Request, label_id: str, acct: Decider, body: ReasonIn) -> dict[str, Any]:
    return (await _label_action(request, acct, label_id, "revoke", body.reason)).doc


@router.post("/labels/{label_id}/reinstatement", summary="Reinstate the software version of a revoked label",
             responses=ERRORS)
async def reinstate(request: Request, label_id: str, acct: Decider, body: ReasonIn) -> dict[str, Any]:
    return (await _label_action(request, acct, label_id, "reinstate", body.reason)).doc


async def _label_action(request: Request, acct: Account, label_id: str, action: str,
                        reason: str) -> staff_actions.Done:
    with Registry(config_of(request).database) as reg:
        try:
            reg.get(label_id)
        except InputError as exc:
            raise HTTPProblem(404, "no-such-label", f"no label {label_id!r}") from exc
    return await run_in_threadpool(staff_actions.revoke_or_reinstate, config_of(request), acct, label_id, action,
                                   reason, client(request))
