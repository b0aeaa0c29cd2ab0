"""Checks: consent (CONSENT) and the fiscal housing number (HOUSINGID-010) — every access carries its consent,
within its scope, nothing after revocation, consumption transferred only when allowed."""

from __future__ import annotations

import datetime as dt

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import performed, quote
from conformity.checks.model import Finding, MissingEvidence, Verdict, failed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView
from conformity.packs.housing.checks.common import answer_is, answered, during, judged, output, step, verdict
from conformity.packs.housing.rules import is_fiscal_number
from conformity.packs.housing.scenarios.consent import BAD_NUMBERS, CONSENTS

SCENARIO = CONSENTS.id
READ, GRANT, TRANSFER, REVOKE = "home.read", "consent.request", "consumption.transfer", "consent.revoke"


def home_accesses(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if e.service == "dataspace" and e.local_path.startswith("/homes/")]


def consent_of(e: Exchange) -> str | None:
    return e.request_headers().get("consent-id")


def home_of(e: Exchange) -> str:
    """The home an access is to: ``/homes/{fiscal}/...`` → ``fiscal``."""
    parts = e.local_path.split("/")
    return parts[2] if len(parts) > 2 else ""


def grants(trace: TraceView) -> dict[str, tuple[str, int]]:
    """The consents the data space granted in a trace: id → (the home it was granted for, the grant's seq)."""
    out: dict[str, tuple[str, int]] = {}
    for e in trace.exchanges("dataspace", method="POST", path="/consents"):
        body = e.response_json
        if e.status == 201 and isinstance(body, dict) and body.get("consent_id"):
            out[str(body["consent_id"])] = (str(body.get("household", "")), e.seq)
    return out


#: the data space's refusals of a home access whose consent is not one the household granted for it (CONSENT-001);
#: ``consent-scope`` is CONSENT-002's, ``consent-revoked`` CONSENT-003's (a household may revoke at any time: only an
#: access after the software was told of it is a breach)
NOT_GRANTED = {
    "consent-missing": "carries no consent",
    "consent-unknown": "names a consent the data space never granted",
    "consent-other-home": "relies on a consent granted for another home",
    "consent-other-grantee": "relies on a consent granted to another professional",
    "consent-expired": "relies on an expired consent",
}


def named_home(note: Note) -> str | None:
    """The home a step names (its input's ``household``), when it is a fiscal housing number."""
    given = note.data.get("input")
    named = given.get("household") if isinstance(given, dict) else None
    return named if isinstance(named, str) and is_fiscal_number(named) else None


def other_homes(trace: TraceView) -> list[Finding]:
    """What a step naming a home asked the data space about another home: a consent asked of another household, an
    access to another home (granted to the software for that other home, it relies on no consent of the home the
    user named: the sandbox, playing every household, grants whatever is asked)."""
    findings = []
    for note in trace.performed():
        named = named_home(note)
        if named is None:
            continue
        for e in during(trace, note, "dataspace"):
            body = e.request_json if isinstance(e.request_json, dict) else {}
            asked = body.get("household", named)
            # a malformed number is HOUSINGID-010's: this rule is about another, well-formed, home
            if e.method == "POST" and e.local_path == "/consents" and asked != named and is_fiscal_number(str(asked)):
                findings.append(quote(
                    e,
                    f"the software asked for consent for another home than the one the user named (step "
                    f"{note.data.get('name')!r})",
                    where="request.body.json.household",
                    expected=named,
                    got=body.get("household"),
                ))
            elif e.local_path.startswith("/homes/") and home_of(e) != named:
                findings.append(quote(
                    e,
                    f"the software accessed another home than the one the user named (step {note.data.get('name')!r})",
                    where="request.path",
                    expected=f"/homes/{named}/...",
                    got=e.local_path,
                ))
    return findings


def wider_than_asked(trace: TraceView) -> list[Finding]:
    """Each consent asked for covers no kind the user did not ask for, and allows the transfer of consumption data only
    if the user asked for it (the sandbox, playing the household, grants whatever is asked)."""
    findings = []
    for note in performed(trace, GRANT):
        given = note.data.get("input")
        if not isinstance(given, dict):
            continue
        for e in during(trace, note, "dataspace"):
            body = e.request_json if isinstance(e.request_json, dict) else {}
            if e.method != "POST" or e.local_path != "/consents":
                continue
            scope, wanted = body.get("scope"), given.get("scope")
            if isinstance(scope, list) and isinstance(wanted, list):
                extra = sorted({str(k) for k in scope} - {str(k) for k in wanted})
                if extra:
                    findings.append(quote(
                        e,
                        f"the consent asked for is wider than the user asked: it covers {', '.join(extra)} too",
                        where="request.body.json.scope",
                        expected=wanted,
                        got=scope,
                    ))
            if body.get("transfer_consumption") is True and given.get("transfer_consumption") is not True:
                findings.append(quote(
                    e,
                    "the consent asked for is wider than the user asked: it allows the transfer of consumption data",
                    where="request.body.json.transfer_consumption",
                    expected=given.get("transfer_consumption", False),
                    got=True,
                ))
    return findings


def granted_id(trace: TraceView, name: str) -> str | None:
    note = step(trace, GRANT, name)
    for e in during(trace, note, "dataspace"):
        body = e.response_json
        if e.local_path == "/consents" and e.status == 201 and isinstance(body, dict):
            return str(body.get("consent_id"))
    return None


@check("housing.fiscal_number_validated", verifies=["HOUSINGID-010"], scenario=SCENARIO)
@judged
def fiscal_number_validated(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A fiscal housing number out of format (12 characters, [0-9][0-9AB][0-9]{10}) is refused before any request:
    each of the scenario's malformed numbers (a wrong character, 13 characters, a letter other than A or B, a lower-case
    a)."""
    findings: list[Finding] = []
    malformed: set[str] = set()
    for name in BAD_NUMBERS:
        note = step(trace, GRANT, name)
        typed = note.data.get("input", {}).get("household")
        findings += [
            quote(
                e,
                f"the software sent the malformed fiscal housing number {typed!r} to the data space",
                where="request",
                expected="no request",
                got=e.request_json or e.local_path,
            )
            for e in during(trace, note, "dataspace")
        ]
        findings += answer_is(
            note, "granted", False, f"the software did not refuse the malformed fiscal number {typed!r}"
        )
        malformed.add(str(typed))
    # and at any other moment (an outbox sending it after the step answered): a request naming a malformed number
    seen = {f.exchange for f in findings}
    findings += [
        quote(
            e,
            "the software sent a malformed fiscal housing number to the data space, outside the step that typed it",
            where="request",
            expected="no request",
            got=e.request_json or e.local_path,
        )
        for e in trace.exchanges("dataspace")
        if e.seq not in seen
        and (
            (isinstance(e.request_json, dict) and str(e.request_json.get("household")) in malformed)
            or any(part in malformed for part in e.local_path.split("/"))
        )
    ]
    return verdict(findings, f"{len(BAD_NUMBERS)} malformed fiscal housing numbers refused locally")


@check("housing.consent_every_access", verifies=["CONSENT-001"], scenario=SCENARIO, reads_all=True)
def consent_every_access(run: RunView, ctx: EvalContext) -> Verdict:
    """Every access to a home, in every scenario, carries the consent it relies on (Consent-Id): one the household of
    that very home granted to the software — never none, an unknown one, another home's, another professional's or
    an expired one (as the trace's grants show, and as the data space's refusals say); and a step naming a home asks
    consent of that home's household and accesses that home, none other."""
    accesses = [(trace, e) for trace in run for e in home_accesses(list(trace))]
    if not accesses:
        return failed(Finding("the software accessed no home in this run"))
    granted = {id(trace): grants(trace) for trace in run}
    findings = []
    for trace, e in accesses:
        consent = consent_of(e)
        home = granted[id(trace)].get(consent or "", ("", 0))[0]
        if not consent:
            problem, expected = NOT_GRANTED["consent-missing"], "the consent it relies on"
        elif home and home != home_of(e):
            problem, expected = NOT_GRANTED["consent-other-home"], f"a consent granted for home {home_of(e)}"
        elif e.outcome in NOT_GRANTED:
            problem, expected = NOT_GRANTED[e.outcome], "a consent the household granted for this home, to the software"
        else:
            continue
        refused = f" (the data space refused it: {e.outcome})" if e.outcome in NOT_GRANTED else ""
        findings.append(
            quote(
                e,
                f"an access to a home {problem}{refused}",
                where="request.headers.consent-id",
                expected=expected,
                got=consent or None,
            )
        )
    findings += [f for trace in run for f in other_homes(trace)]
    return verdict(findings, f"{len(accesses)} home access(es), each with the consent its household granted")


@check("housing.consent_scope_respected", verifies=["CONSENT-002"], scenario=SCENARIO, reads_all=True)
@judged
def consent_scope_respected(run: RunView, ctx: EvalContext) -> Verdict:
    """Nothing outside a consent's scope is asked for: the software refuses it itself, in every scenario; and no
    consent asked for is wider than the user asked (another kind, the transfer of consumption data)."""
    trace = run.get(SCENARIO)
    assert trace is not None
    note = step(trace, READ, "read_out_of_scope")
    findings = [
        quote(
            e,
            "the software asked for a kind its consent does not cover",
            where="request.query.kind",
            expected="no request",
            got=e.param("kind"),
        )
        for e in home_accesses(during(trace, note))
    ]
    findings += [
        quote(
            e,
            "the data space refused an access outside the consent's scope",
            where="outcome",
            expected="accesses within scope",
            got=e.outcome,
        )
        for t in run
        for e in home_accesses(list(t))
        if e.outcome == "consent-scope"
    ]
    findings += answer_is(note, "read", False, "the software claims to have read a kind its consent does not cover")
    findings += [f for t in run for f in wider_than_asked(t)]
    return verdict(findings, "no access outside the consents' scope, no consent wider than asked")


@check("housing.consent_revocation_honoured", verifies=["CONSENT-003"], scenario=SCENARIO)
@judged
def consent_revocation_honoured(trace: TraceView, ctx: EvalContext) -> Verdict:
    """After a consent is revoked (by request, or by the household: a 403 consent-revoked), nothing more is asked
    under it — for that home or any other — nor is the home accessed again under any consent but one its household
    granted anew; and nothing is reported as read."""
    findings: list[Finding] = []
    revoked = [i for i in (granted_id(trace, "grant"), granted_id(trace, "grant_transfer")) if i]
    if len(revoked) < 2:
        return failed(Finding("the scenario's consents were not both granted: revocation is not shown"))
    household = step(trace, READ, "household_revoked")
    told = [e for e in home_accesses(during(trace, household)) if e.outcome == "consent-revoked"]
    if not told:
        findings.append(
            answered(
                household,
                "the software never met the household's revocation",
                where="read",
                expected="a read answered 403 consent-revoked",
                got=output(household),
            )
        )
    granted = grants(trace)
    # each revoked consent: its home, and from when the software knew (the revocation asked; the household's 403)
    revoke = step(trace, REVOKE, "revoke")
    deleted = [e.seq for e in during(trace, revoke, "dataspace") if e.method == "DELETE"]
    since = {revoked[0]: min(deleted, default=revoke.seq), revoked[1]: told[0].seq if told else household.seq}
    for consent, seq in since.items():
        home = granted.get(consent, ("", 0))[0]
        for e in home_accesses([e for e in trace if e.seq > seq]):
            if consent_of(e) == consent:
                message = f"the software accessed a home again under revoked consent {consent}"
            elif home_of(e) == home and granted.get(consent_of(e) or "", ("", 0))[0] != home:
                message = (
                    f"the software accessed home {home} again, after its consent {consent} was revoked, "
                    f"under {'no consent' if not consent_of(e) else f'another consent ({consent_of(e)})'}"
                )
            elif home_of(e) == home and granted[consent_of(e) or ""][1] < seq:
                message = (
                    f"the software accessed home {home} again under a consent granted before {consent} was revoked"
                )
            else:
                continue
            findings.append(
                quote(e, message, where="request.headers.consent-id", expected="no access", got=consent_of(e))
            )
    for name in ("read_after_revoke", "after_household_revoked"):
        note = step(trace, READ, name)
        findings += answer_is(note, "read", False, "the software reports a read under a revoked consent")
    return verdict(findings, "nothing asked or read under revoked consents")


@check("housing.consent_transfer_only_when_allowed", verifies=["CONSENT-004"], scenario=SCENARIO)
@judged
def consent_transfer_only_when_allowed(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Consumption data is transferred only under a consent that allows it — in the refused step or at any other
    moment of the trace (as the consents' grants and the data space's refusals show); and it is when it does."""
    refused, allowed = step(trace, TRANSFER, "transfer_refused"), step(trace, TRANSFER, "transfer_allowed")
    findings = [
        quote(
            e,
            "consumption data was sent for transfer although the consent does not allow it",
            where="request.path",
            expected="no transfer",
            got=e.local_path,
        )
        for e in during(trace, refused, "dataspace")
        if e.local_path.endswith("/transfers")
    ]
    # any other transfer under a consent granted without it (an outbox sending it after the step answered, a retry)
    window = {f.exchange for f in findings}
    allows = {
        str(e.response_json["consent_id"]): e.request_json.get("transfer_consumption") is True
        for e in trace.exchanges("dataspace", method="POST", path="/consents")
        if e.status == 201 and isinstance(e.response_json, dict) and e.response_json.get("consent_id")
        and isinstance(e.request_json, dict)
    }
    findings += [
        quote(
            e,
            "consumption data was sent for transfer under a consent that does not allow it"
            + (" (the data space refused it: transfer-not-consented)" if e.outcome == "transfer-not-consented" else ""),
            where="request.path",
            expected="no transfer",
            got=e.local_path,
        )
        for e in trace.exchanges("dataspace", method="POST")
        if e.local_path.endswith("/transfers") and e.seq not in window
        and (e.outcome == "transfer-not-consented" or allows.get(consent_of(e) or "") is False)
    ]
    done = [e for e in during(trace, allowed, "dataspace") if e.local_path.endswith("/transfers") and e.status == 201]
    if not done:
        findings.append(
            answered(
                allowed,
                "the transfer the consent allows was not made, so refusing the other one proves nothing",
                where="transferred",
                expected=True,
                got=output(allowed).get("transferred"),
            )
        )
    findings += answer_is(refused, "transferred", False, "the software reports a transfer the consent does not allow")
    return verdict(findings, "consumption transferred only under the consent that allows it")


@check("housing.consent_grant_complete", verifies=["CONSENT-005"], scenario=SCENARIO, reads_all=True)
def consent_grant_complete(run: RunView, ctx: EvalContext) -> Verdict:
    """Each consent asked for states its purpose and an expiry within the referential's maximum duration."""
    max_days = int(ctx.param("CONSENT-005", "max_days", 365))
    asked = [e for trace in run for e in trace.exchanges("dataspace", method="POST", path="/consents")]
    if not asked:
        return failed(Finding("the software asked for no consent in this run"))
    findings = []
    for e in asked:
        body = e.request_json if isinstance(e.request_json, dict) else {}
        try:
            days = (dt.date.fromisoformat(str(body.get("expires"))) - dt.date.fromisoformat(e.raw["time"][:10])).days
        except ValueError:
            days = None
        if days is None or not 0 < days <= max_days:
            findings.append(
                quote(
                    e,
                    "the consent asked for has no expiry, or one beyond the maximum duration",
                    where="request.body.json.expires",
                    expected=f"within {max_days} days",
                    got=body.get("expires"),
                )
            )
        purpose = body.get("purpose")
        if not (isinstance(purpose, str) and purpose.strip()):  # null, a list or false is no purpose (nor a blank)
            findings.append(
                quote(
                    e,
                    "the consent asked for states no purpose",
                    where="request.body.json.purpose",
                    expected="a purpose",
                    got=body.get("purpose"),
                )
            )
    return verdict(findings, f"{len(asked)} consent(s) with purpose and expiry")


@check("housing.consent_revoke_sent", verifies=["CONSENT-006"], scenario=SCENARIO)
@judged
def consent_revoke_sent(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A revocation asked for in the software reaches the data space (DELETE of that very consent)."""
    note = step(trace, REVOKE, "revoke")
    consent = granted_id(trace, "grant")
    if consent is None:  # "DELETE /consents/None" would be no finding a vendor can act on
        raise MissingEvidence(Finding("the data space granted no consent at step 'grant': there was none to revoke"))
    done = [
        e
        for e in during(trace, note, "dataspace")
        if e.method == "DELETE" and e.local_path == f"/consents/{consent}" and e.outcome == "consent-revoked-by-request"
    ]
    if not done:
        return failed(
            answered(
                note,
                "the revocation did not reach the data space",
                where="revoked",
                expected=f"DELETE /consents/{consent}",
                got=output(note),
            )
        )
    return verdict([], f"consent {consent} revoked at the data space")
