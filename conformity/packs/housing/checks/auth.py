"""Checks: professional authentication (PROAUTH), with the generic OpenID Connect rules of
:mod:`conformity.checks.oidc` applied to the ProConnect-like provider."""

from __future__ import annotations

from conformity.checks import oidc
from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import quote
from conformity.checks.model import Finding, Verdict, failed
from conformity.checks.registry import check
from conformity.checks.trace import TraceView
from conformity.packs.housing.checks.common import answer_is, answered, during, judged, output, step, verdict
from conformity.packs.housing.scenarios.auth import LOGIN_FAULTS
from conformity.packs.housing.scenarios.common import LOGIN, PROVIDER

SCENARIO = LOGIN_FAULTS.id
PROCONNECT = oidc.Provider(PROVIDER, LOGIN)
ACR_ORDER = ("eidas1", "eidas2", "eidas3")


@check("housing.oidc_code_flow", verifies=["PROAUTH-001"], scenario=SCENARIO)
def oidc_code_flow(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Professionals log in with the authorization code flow and the openid scope."""
    return verdict(oidc.code_flow_findings(trace, PROVIDER), "code flow with the openid scope")


@check("housing.oidc_state", verifies=["PROAUTH-002"], scenario=SCENARIO)
@judged
def oidc_state(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each authorization request carries a fresh state of at least 32 characters; a callback with another state is
    refused (its code never redeemed)."""
    length = int(ctx.param("PROAUTH-002", "min_length", 32))
    findings = oidc.random_value_findings(trace, PROVIDER, "state", min_length=length, min_bits=128)
    findings += oidc.control_findings(trace, PROCONNECT)
    note = step(trace, LOGIN, "state_not_echoed")
    findings += [
        quote(
            e,
            "the software redeemed a code whose callback carried another state",
            where="request.body.form",
            expected="no token request",
            got=e.outcome,
        )
        for e in during(trace, note, PROVIDER)
        if e.local_path == "/token"
    ]
    findings += answer_is(note, "authenticated", False, "the software opened a session after a callback with another state")
    return verdict(findings, f"fresh states of {length}+ characters, a foreign state refused")


@check("housing.oidc_nonce", verifies=["PROAUTH-003"], scenario=SCENARIO)
def oidc_nonce(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each authorization request carries a fresh nonce of at least 32 characters; an ID token with another nonce is
    refused."""
    length = int(ctx.param("PROAUTH-003", "min_length", 32))
    findings = oidc.random_value_findings(trace, PROVIDER, "nonce", min_length=length, min_bits=128)
    refusal = oidc.refusal_verdict(trace, PROCONNECT, (("wrong_nonce", "wrong_nonce"),), "another nonce")
    if refusal.status == "fail":
        findings += list(refusal.findings)
    return verdict(findings, f"fresh nonces of {length}+ characters, another nonce refused")


@check("housing.oidc_pkce", verifies=["PROAUTH-004"], scenario=SCENARIO)
def oidc_pkce(trace: TraceView, ctx: EvalContext) -> Verdict:
    """PKCE with S256 on every authorization, each code redeemed with its verifier."""
    if not oidc.authorizations(trace, PROVIDER):
        return failed(Finding("the software sent no authorization request"))
    return verdict(oidc.pkce_findings(trace, PROVIDER), "PKCE S256 on every authorization")


#: the provider's forgeries whose signature does not verify with its published keys (steps of the same names)
SIGNATURE_FORGERIES = ("bad_signature", "alg_none", "hs256_public_key", "unknown_kid")


@check("housing.oidc_signature_verified", verifies=["PROAUTH-005"], scenario=SCENARIO)
def oidc_signature_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token whose signature does not verify with the provider's published keys is refused: a bad signature,
    none (alg none), an HMAC keyed with the provider's public key, a key the JWKS does not publish."""
    return oidc.refusal_verdict(trace, PROCONNECT, tuple((f, f) for f in SIGNATURE_FORGERIES),
                                "a signature that does not verify with the provider's published keys")


@check("housing.oidc_audience_expiry_verified", verifies=["PROAUTH-006"], scenario=SCENARIO)
def oidc_audience_expiry_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token for another audience, or expired, is refused."""
    return oidc.refusal_verdict(
        trace,
        PROCONNECT,
        (("wrong_audience", "wrong_audience"), ("expired", "expired")),
        "another audience or an expiry in the past",
    )


@check("housing.oidc_acr", verifies=["PROAUTH-007"], scenario=SCENARIO)
def oidc_acr(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each authorization asks for the referential's eIDAS level or higher, and an ID token with a lower one is
    refused."""
    minimum = str(ctx.param("PROAUTH-007", "min_acr", "eidas1"))
    allowed = ACR_ORDER[ACR_ORDER.index(minimum) :] if minimum in ACR_ORDER else (minimum,)
    findings = []
    requests = oidc.authorizations(trace, PROVIDER)
    if not requests:
        return failed(Finding("the software sent no authorization request"))
    for e in requests:
        asked = (e.param("acr_values") or "").split()
        if not asked or any(a not in allowed for a in asked):
            findings.append(
                quote(
                    e,
                    "the authorization does not ask for the required eIDAS level",
                    where="request.query.acr_values",
                    expected=" ".join(allowed),
                    got=e.param("acr_values"),
                )
            )
    refusal = oidc.refusal_verdict(trace, PROCONNECT, (("wrong_acr", "wrong_acr"),), "a lower acr")
    if refusal.status == "fail":
        findings += list(refusal.findings)
    return verdict(findings, f"acr {minimum}+ asked for, a lower one refused")


@check("housing.oidc_professional_claims", verifies=["PROAUTH-008"], scenario=SCENARIO)
@judged
def oidc_professional_claims(trace: TraceView, ctx: EvalContext) -> Verdict:
    """The professional is identified by the userinfo answer: uid and the 14-digit SIRET, recorded unchanged."""
    note = step(trace, LOGIN, "control")
    served = [
        e.response_json
        for e in during(trace, note, PROVIDER)
        if e.local_path == "/userinfo" and isinstance(e.response_json, dict)
    ]
    if not served:
        return failed(
            answered(
                note,
                "the software did not call userinfo",
                where="authenticated",
                expected="a userinfo call",
                got=output(note),
            )
        )
    expected = {"uid": served[-1].get("uid"), "siret": served[-1].get("siret")}
    got = {k: output(note).get(k) for k in expected}
    if got != expected:
        return failed(
            answered(
                note,
                "the professional recorded differs from userinfo's",
                where="uid, siret",
                expected=expected,
                got=got,
            )
        )
    return verdict([], f"professional {expected['uid']} of SIRET {expected['siret']}")
