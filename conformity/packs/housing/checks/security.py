"""Checks: the shared security baseline (BASELINE) — trust, identification, secrets."""

from __future__ import annotations

import json

from conformity.checks import oidc
from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import names_whole, noted, quote
from conformity.checks.model import Finding, Verdict, failed
from conformity.checks.registry import check
from conformity.checks.trace import RunView, TraceView
from conformity.packs.housing.checks.common import answered, judged, output, step, verdict
from conformity.packs.housing.scenarios.common import PROVIDER
from conformity.packs.housing.scenarios.security import UNTRUSTED

#: the services of the housing pack whose calls must name the software
SERVICES = ("geocoder", "buildings", "observatory", "dataspace")


@check("housing.untrusted_server_refused", verifies=["BASELINE-001"], scenario=UNTRUSTED.id)
@judged
def untrusted_server_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A service behind a self-signed certificate is not talked to: no request reaches it, the step fails."""
    logged_in = [e for e in trace.exchanges(PROVIDER) if e.local_path == "/userinfo"]
    note = step(trace, "building.identify", "self_signed")
    if not logged_in:
        return failed(Finding("the professional never logged in: the software proves nothing by refusing the geocoder"))
    findings = [
        quote(
            e,
            "the software sent a request to a server whose certificate is self-signed",
            where="request.path",
            expected="no request",
            got=e.local_path,
        )
        for e in trace.exchanges("geocoder")
    ]
    if output(note).get("status") not in ("error", None) or output(note).get("rnb_id"):
        findings.append(
            answered(
                note,
                "the software reports an answer from an untrusted server",
                where="status",
                expected="error",
                got=output(note).get("status"),
            )
        )
    return verdict(findings, "the self-signed server was refused")


@check("housing.software_identified", verifies=["BASELINE-002"], scenario=UNTRUSTED.id, reads_all=True)
def software_identified(run: RunView, ctx: EvalContext) -> Verdict:
    """Every call to a housing service names the software: its User-Agent carries name, version and registration id."""
    calls = [e for trace in run for e in trace if e.service in SERVICES]
    if not calls:
        return failed(Finding("the software called no housing service in this run"))
    declared = [str(ctx.software.get(k, "")) for k in ("software", "version", "registration_id")]
    findings = []
    for e in calls:
        agent = e.request_headers().get("user-agent", "")
        if any(v and not names_whole(v, agent) for v in declared):
            findings.append(
                quote(
                    e,
                    "the call does not identify the software under test",
                    where="request.headers.user-agent",
                    expected=declared,
                    got=agent or None,
                )
            )
    return verdict(findings, f"{len(calls)} call(s) naming the software")


@check("housing.secrets_not_exposed", verifies=["BASELINE-003"], scenario=UNTRUSTED.id, reads_all=True)
def secrets_not_exposed(run: RunView, ctx: EvalContext) -> Verdict:
    """No secret the sandbox issued (tokens, codes, client secret) in what the software answers, writes on its error
    output or in its logs (the sandbox redacts each one it finds, so a redaction marks a leak)."""
    findings, places, logins = [], 0, 0
    for trace in run:
        logins += len(oidc.issued(trace, PROVIDER))
        for note in trace.notes():
            if note.kind not in ("driver.perform", "software.output"):
                continue
            text = json.dumps(
                note.data.get("output") if note.kind == "driver.perform" else note.data, ensure_ascii=False
            )
            places += 1
            hits = oidc.REDACTED.findall(text)
            if hits:
                findings.append(
                    noted(
                        note,
                        f"the software wrote {len(hits)} secret(s) the sandbox issued in its "
                        f"{'answer' if note.kind == 'driver.perform' else 'error output or logs'}",
                        where=note.kind,
                        expected="no secret",
                        got=[f"sha256:{h}" for h in hits[:5]],
                    )
                )
    if not logins:
        return failed(Finding("no token was issued in this run, so where the software writes secrets is not shown"))
    return verdict(findings, f"{logins} token response(s), no secret in {places} answer(s) and output(s)")
