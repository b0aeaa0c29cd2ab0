"""Checks: practitioner authentication (PRACAUTH, SECURITY-004).

Refusals are judged on what the identity provider saw, not on what the driver says: a login is
refused when the software never used the access token delivered with the faulty answer (not at
userinfo, not at any service) and its driver does not claim a session either. Each refusal check
also needs the control logins of the scenario to succeed: software that refuses everything proves
nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conformity.checks.evaluate import EvalContext
from conformity.checks.helpers import noted, performed, quote, step_exchanges
from conformity.checks.model import Finding, Missing, Verdict, about, failed, judged, not_exercised, passed
from conformity.checks.registry import check
from conformity.checks.trace import Exchange, Note, RunView, TraceView, views

NOMINAL = "pracauth.login_nominal"
FAULTS = "pracauth.login_faults"
ROTATION = "pracauth.key_rotation"
DISCOVERY = "pracauth.discovery"
CONTROLS = ("control", "control_after")
#: token request grant types allowed → the provider's outcome when it grants them
GRANTS = {"authorization_code": "token-issued", "refresh_token": "token-refreshed"}
MIN_ENTROPY_BITS = 128
REDACTED = re.compile(r"\[redacted sha256:([0-9a-f]{16})\]")
NATIONAL_ID = re.compile(r"^8[0-9]{11}$")
ALPHABETS = ((string.digits, 10), (string.hexdigits.lower(), 16), (string.hexdigits.upper(), 16),
             (string.ascii_letters + string.digits, 62), (string.ascii_letters + string.digits + "-_", 64),
             (string.ascii_letters + string.digits + "+/=", 64))


# trace reading -------------------------------------------------------------------------------------

def authorizations(subject: TraceView | RunView) -> list[Exchange]:
    """The authorization requests the software sent (GET or POST /authorize), in every scenario of a RunView."""
    return [e for trace in views(subject) for e in trace.exchanges("idp", path="/authorize")]


def token_requests(subject: TraceView | RunView) -> list[Exchange]:
    return [e for trace in views(subject) for e in trace.exchanges("idp", method="POST", path="/token")]


def faults_trace(subject: TraceView | RunView) -> TraceView:
    """The trace of the faulty logins (the scenario the refusal rules are judged on)."""
    if isinstance(subject, TraceView):
        return subject
    trace = subject.get(FAULTS)
    assert trace is not None, "the faulty-logins scenario is the check's own: evaluation ensures its trace"
    return trace


def redacted_hash(value: Any) -> str | None:
    """The hash prefix of a secret the sandbox redacted in the trace (``[redacted sha256:…]``)."""
    match = REDACTED.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class Issued:
    """Tokens the provider issued in one token response (hash prefixes, as the trace holds them)."""

    exchange: Exchange
    access: str | None
    id_token: str | None
    refresh: str | None

    @property
    def fault(self) -> str | None:
        return self.exchange.details.get("fault")


def issued(trace: TraceView) -> list[Issued]:
    """Every successful token response (code or refresh grant), with the hashes of the tokens it carried."""
    out = []
    for e in token_requests(trace):
        body = e.response_json if isinstance(e.response_json, dict) else {}
        if e.outcome in ("token-issued", "token-refreshed"):
            out.append(Issued(e, redacted_hash(body.get("access_token")), redacted_hash(body.get("id_token")),
                              redacted_hash(body.get("refresh_token"))))
    return out


def bearer_uses(trace: TraceView, token_hash: str | None, after: int = 0) -> list[Exchange]:
    """Requests after seq ``after`` that presented the token with this hash prefix as a Bearer credential."""
    if not token_hash:
        return []
    return [e for e in trace.exchanges(after=after)
            if (e.auth or {}).get("scheme") == "Bearer" and (e.auth or {}).get("token_sha256") == token_hash]


def refresh_uses(trace: TraceView, token_hash: str | None, after: int = 0) -> list[Exchange]:
    """Token requests after seq ``after`` that redeemed the refresh token with this hash prefix."""
    if not token_hash:
        return []
    return [e for e in token_requests(trace) if e.seq > after and redacted_hash(e.param("refresh_token")) == token_hash]


def entropy_bits(value: str) -> float:
    """A generous estimate of a random string's entropy: its length times log2 of its smallest alphabet."""
    for alphabet, size in ALPHABETS:
        if all(c in alphabet for c in value):
            return len(value) * math.log2(size)
    return len(value) * math.log2(95)


def login_step(trace: TraceView, name: str) -> Note | None:
    notes = performed(trace, "practitioner.login", name)
    return notes[-1] if notes else None


def claims_session(note: Note) -> bool:
    out = note.data.get("output")
    return isinstance(out, dict) and out.get("authenticated") is True


# controls and refusals -----------------------------------------------------------------------------

def control_findings(trace: TraceView) -> list[Finding]:
    """The scenario's valid logins must succeed: a token issued, used at userinfo, a session opened."""
    found = []
    for name in CONTROLS:
        note = login_step(trace, name)
        if note is None:
            found.append(Missing(f"the control login {name!r} was not performed"))
            continue
        used = [e for i in _issued_in(trace, note) for e in bearer_uses(trace, i.access, i.exchange.seq)
                if e.local_path == "/userinfo" and e.outcome == "userinfo-served"]
        if not used or not claims_session(note):
            found.append(Finding(f"the control login {name!r} with valid answers did not succeed, so refusing the "
                                 "faulty ones proves nothing", exchange=note.seq, scenario=note.scenario,
                                 expected="token issued, userinfo called, authenticated", got=note.data.get("output")))
    return found


def _issued_in(trace: TraceView, note: Note) -> list[Issued]:
    seqs = {e.seq for e in step_exchanges(trace, note, "idp")}
    return [i for i in issued(trace) if i.exchange.seq in seqs]


def refusal_findings(trace: TraceView, step: str, fault: str, what: str) -> list[Finding]:
    """The software must refuse the login of ``step``, whose ID token the sandbox forged as ``fault``."""
    note = login_step(trace, step)
    if note is None:
        return [Missing(f"the login with {what} (step {step!r}) was not performed")]
    forged = [i for i in _issued_in(trace, note) if i.fault == fault]
    if not forged:
        return [Missing(f"step {step!r}: the software never redeemed its code, so it never received the ID token "
                        f"with {what}: its refusal is not shown", exchange=note.seq, scenario=note.scenario, got=note.data.get("output"))]
    found = []
    for i in forged:
        for e in bearer_uses(trace, i.access, i.exchange.seq):
            found.append(quote(e, f"step {step!r}: the software accepted the ID token with {what} (exchange "
                                  f"{i.exchange.seq}) and used the access token it came with at "
                                  f"{e.service} {e.method} {e.local_path}", where="request.auth",
                               expected="token discarded", got=e.auth))
        for e in refresh_uses(trace, i.refresh, i.exchange.seq):
            found.append(quote(e, f"step {step!r}: the software kept the refresh token that came with the ID token "
                                  f"with {what} (exchange {i.exchange.seq}) and redeemed it", where="request.body.form",
                               expected="token discarded", got=e.outcome))
    if claims_session(note):
        found.append(Finding(f"step {step!r}: the software opened a session with an ID token with {what}",
                             exchange=note.seq, scenario=note.scenario, where="output.authenticated", expected=False, got=True))
    return found


def refusals(trace: TraceView, steps: tuple[tuple[str, str], ...], what: str) -> list[Finding]:
    """The control logins' findings, then each (step, fault) login's: breaches, or Missing when not shown."""
    findings = control_findings(trace)
    for step, fault in steps:
        findings += refusal_findings(trace, step, fault, what)
    return findings


def refusal_verdict(trace: TraceView, steps: tuple[tuple[str, str], ...], what: str) -> Verdict:
    """Pass when every (step, fault) login was refused and the control logins succeeded; not exercised when a
    faulty answer never reached the software."""
    return judged(refusals(trace, steps, what),
                  f"the software refused {len(steps)} login(s) with {what} and accepted the valid ones")


def random_value_findings(trace: TraceView | RunView, name: str, ctx: EvalContext, requirement: str) -> list[Finding]:
    """Each authorization request carries parameter ``name`` with enough entropy, never reused."""
    minimum = ctx.param(requirement, "min_entropy_bits", MIN_ENTROPY_BITS)
    found, seen = [], {}
    requests = authorizations(trace)
    if not requests:
        return [Missing("the software sent no authorization request")]
    for e in requests:
        value = e.param(name)
        if not value:
            found.append(quote(e, f"the authorization request carries no {name}", where=f"request.query.{name}",
                               expected=f"a random value of at least {minimum} bits", got=value))
            continue
        bits = entropy_bits(value)
        if bits < minimum:
            found.append(quote(e, f"the {name} is too short to carry {minimum} bits of entropy",
                               where=f"request.query.{name}", expected=f">= {minimum} bits",
                               got=f"{value!r} (~{bits:.0f} bits)"))
        if value in seen:
            found.append(quote(e, f"the {name} of exchange {seen[value]} is reused", where=f"request.query.{name}",
                               expected="a fresh value", got=value))
        seen.setdefault(value, e.seq)
    return found


# checks on the nominal login -----------------------------------------------------------------------

@check("oidc.authorization_code_flow", verifies=["PRACAUTH-001", "PRACAUTH-015"], scenario=NOMINAL, reads_all=True)
def authorization_code_flow(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Code flow with openid scope, the code redeemed with client_secret_basic or private_key_jwt."""
    requests, tokens = authorizations(trace), token_requests(trace)
    if not requests or not tokens:
        return not_exercised(Finding("the software did not log in: no authorization request and token request",
                                     got={"authorization_requests": len(requests), "token_requests": len(tokens)}))
    findings = []
    for e in requests:
        if e.param("response_type") != "code":
            findings.append(quote(e, "the authorization request does not use the code flow",
                                  where="request.query.response_type", expected="code", got=e.param("response_type"))
                            .about("PRACAUTH-001"))
        if "openid" not in (e.param("scope") or "").split():
            findings.append(quote(e, "the authorization request scope lacks openid", where="request.query.scope",
                                  expected="openid …", got=e.param("scope")).about("PRACAUTH-001"))
    for e in tokens:
        if e.param("grant_type") not in GRANTS:
            findings.append(quote(e, "the token request is not an authorization_code (or refresh_token) grant",
                                  where="request.body.form.grant_type", expected="authorization_code",
                                  got=e.param("grant_type")).about("PRACAUTH-001"))
        method = e.details.get("client_auth")
        if e.outcome in GRANTS.values() and method not in ("client_secret_basic", "private_key_jwt"):
            findings.append(quote(e, "the client authenticated to the token endpoint with a method not allowed",
                                  where="outcome_details.client_auth",
                                  expected="client_secret_basic or private_key_jwt", got=method).about("PRACAUTH-015"))
        elif e.outcome not in GRANTS.values():
            # refused for its client authentication (client-…) or for the grant itself
            blamed = "PRACAUTH-015" if e.outcome.startswith("client-") else "PRACAUTH-001"
            findings.append(quote(e, "the token request was refused by the provider", where="outcome",
                                  expected="token-issued", got=e.outcome).about(blamed))
    if findings:
        return failed(*findings)
    methods = sorted({str(e.details.get("client_auth")) for e in tokens if e.outcome in GRANTS.values()})
    return passed(f"{len(requests)} code-flow authorization(s), codes redeemed with {' and '.join(methods) or 'no method'}")


@check("oidc.discovery_used", verifies=["PRACAUTH-002"], scenario=NOMINAL, reads_all=True)
def discovery_used(run: RunView, ctx: EvalContext) -> Verdict:
    """In every session, the discovery document is read before the first authorization request."""
    findings, sessions = [], 0
    for trace in run:
        requests = authorizations(trace)
        if not requests:
            continue
        sessions += 1
        discovery = trace.exchanges("idp", path="/.well-known/openid-configuration", before=requests[0].seq)
        if not [e for e in discovery if e.outcome == "discovery-served"]:
            findings.append(quote(requests[0], "the first authorization request was sent without reading the "
                                               "discovery document first (endpoints from fixed configuration)",
                                  expected="GET /.well-known/openid-configuration before", got="none"))
    if not sessions:
        return not_exercised(Finding("the software sent no authorization request"))
    if findings:
        return failed(*findings)
    return passed(f"the discovery document was read before the first authorization request of {sessions} session(s)")


@check("oidc.pkce_s256_used", verifies=["PRACAUTH-005"], scenario=NOMINAL, reads_all=True)
def pkce_s256_used(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Each authorization request has an S256 code_challenge and each code is redeemed with its verifier."""
    requests, tokens = authorizations(trace), token_requests(trace)
    if not requests or not tokens:
        return not_exercised(Finding("the software did not log in: no authorization request and token request"))
    findings = []
    for e in requests:
        if e.param("code_challenge_method") != "S256" or not e.param("code_challenge"):
            findings.append(quote(e, "the authorization request has no S256 PKCE challenge",
                                  where="request.query.code_challenge_method", expected="S256",
                                  got=e.param("code_challenge_method") or "absent"))
    for e in (t for t in tokens if t.param("grant_type") != "refresh_token"):
        if not e.param("code_verifier"):
            findings.append(quote(e, "the token request has no code_verifier", where="request.body.form.code_verifier",
                                  expected="the PKCE verifier", got=None))
        elif e.outcome == "token-issued" and e.details.get("pkce") is not True:
            findings.append(quote(e, "the provider issued the token without PKCE", where="outcome_details.pkce",
                                  expected=True, got=e.details.get("pkce")))
        elif e.outcome.startswith("pkce-"):
            findings.append(quote(e, "the provider refused the code_verifier", where="outcome", got=e.outcome))
    if findings:
        return failed(*findings)
    return passed(f"{len(requests)} authorization(s) with S256 challenges, verified at the token endpoint")


# checks on the faulty logins -----------------------------------------------------------------------

@check("oidc.state_verified", verifies=["PRACAUTH-003"], scenario=FAULTS, reads_all=True)
def state_verified(run: RunView, ctx: EvalContext) -> Verdict:
    """Fresh 128-bit states in every authorization request, and a callback with another state is refused."""
    trace = faults_trace(run)
    findings = random_value_findings(run, "state", ctx, "PRACAUTH-003") + control_findings(trace)
    note = login_step(trace, "state_not_echoed")
    step = step_exchanges(trace, note, "idp") if note else []
    faulty = [e for e in step if e.details.get("fault") == "state_not_echoed"]
    if not faulty:
        findings.append(Missing("the login whose callback carries another state did not reach the provider"))
    for e in faulty:
        code = _param_of_location(e, "code")
        for t in token_requests(trace):
            if t.seq > e.seq and code and t.param("code") == code:
                findings.append(quote(t, f"the software redeemed the code of a callback whose state was not the one "
                                         f"it sent (exchange {e.seq})", where="request.body.form.code",
                                      expected="code discarded", got="code redeemed"))
    if note is not None and claims_session(note):
        findings.append(Finding("the software opened a session from a callback with another state",
                                exchange=note.seq, scenario=note.scenario, where="output.authenticated", expected=False, got=True))
    return judged(findings, "states are fresh and long enough; the callback with another state was refused")


def _param_of_location(e: Exchange, name: str) -> str | None:
    location = e.response_headers.get("location", "")
    values = parse_qs(urlsplit(location).query).get(name)
    return values[0] if values else None


@check("oidc.nonce_verified", verifies=["PRACAUTH-004"], scenario=FAULTS, reads_all=True)
def nonce_verified(run: RunView, ctx: EvalContext) -> Verdict:
    """Fresh 128-bit nonces in every authorization request, and an ID token with another nonce is refused."""
    findings = random_value_findings(run, "nonce", ctx, "PRACAUTH-004")
    findings += refusals(faults_trace(run), (("wrong_nonce", "wrong_nonce"), ("nonce_missing", "nonce_missing")),
                         "another nonce than the one sent, or none")
    return judged(findings, "nonces are fresh and long enough; ID tokens with another nonce, or none, were refused")


@check("oidc.id_token_signature_verified", verifies=["PRACAUTH-006"], scenario=FAULTS)
def id_token_signature_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token whose signature does not verify is refused."""
    return refusal_verdict(trace, (("bad_signature", "bad_signature"),), "a corrupted signature")


@check("oidc.alg_none_refused", verifies=["PRACAUTH-007"], scenario=FAULTS)
def alg_none_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token signed with an algorithm the provider does not list is refused: alg none (unsigned), and HS256
    keyed with the provider's public key."""
    return refusal_verdict(trace, (("alg_none", "alg_none"), ("hs256_public_key", "hs256_public_key")),
                           "an algorithm the provider does not list (none, or HS256 keyed with its public key)")


def jwks_fetches(trace: TraceView, after: int, before: int | None) -> list[Exchange]:
    return [e for e in trace.exchanges("idp", method="GET", path="/jwks", after=after, before=before)
            if e.outcome == "jwks-served"]


def refetch_findings(trace: TraceView, ctx: EvalContext) -> list[Finding]:
    """JWKS refetches for an unknown kid: 1.0 once per token; 1.1 at most once in 5 minutes."""
    notes = [n for n in (login_step(trace, s) for s in ("unknown_kid", "unknown_kid_again")) if n is not None]
    forged = [i for n in notes for i in _issued_in(trace, n) if i.fault == "unknown_kid"]
    if not forged:
        return []
    found = []
    first = forged[0].exchange.seq
    for n in notes:
        tokens = [i for i in _issued_in(trace, n) if i.fault == "unknown_kid"]
        if not tokens:
            continue
        fetches = jwks_fetches(trace, tokens[0].exchange.seq, n.seq)
        if len(fetches) > 2:
            found.append(quote(fetches[-1], f"step {n.data.get('name')!r}: the JWKS was fetched {len(fetches)} times "
                                            "for one token with an unknown kid", expected="at most one refetch",
                               got=len(fetches)))
    if ctx.version("PRACAUTH") == "1.0":
        step = notes[0]
        if not jwks_fetches(trace, first, step.seq):
            found.append(Finding("the JWKS was not fetched again for the token with an unknown kid",
                                 exchange=forged[0].exchange.seq, scenario=forged[0].exchange.scenario, expected="one refetch", got=0))
    else:
        window = ctx.param("PRACAUTH-008", "refetch_interval_seconds", 300)
        fetches = jwks_fetches(trace, first, notes[-1].seq)
        for a, b in zip(fetches, fetches[1:], strict=False):
            gap = _seconds_between(a, b)
            if gap is not None and gap < window:
                found.append(quote(b, f"the JWKS was fetched again {gap:.1f} s after exchange {a.seq} for an unknown "
                                      f"kid (at most once every {window} s)", expected=f">= {window} s",
                                   got=f"{gap:.1f} s"))
    return found


def _seconds_between(a: Exchange, b: Exchange) -> float | None:
    try:
        start = dt.datetime.fromisoformat(a.raw["time"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(b.raw["time"].replace("Z", "+00:00"))
    except (KeyError, ValueError, AttributeError):
        return None
    return (end - start).total_seconds()


@check("oidc.unknown_kid_refused", verifies=["PRACAUTH-008"], scenario=FAULTS)
def unknown_kid_refused(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token signed under a kid absent from the JWKS is refused, with bounded JWKS refetches."""
    findings = refusals(trace, (("unknown_kid", "unknown_kid"), ("unknown_kid_again", "unknown_kid")),
                        "a key id absent from the JWKS")
    findings += refetch_findings(trace, ctx)
    return judged(findings, "the ID tokens with a key id absent from the JWKS were refused, with bounded refetches")


@check("oidc.issuer_verified", verifies=["PRACAUTH-009"], scenario=FAULTS)
def issuer_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token from another issuer is refused."""
    return refusal_verdict(trace, (("wrong_issuer", "wrong_issuer"),), "another issuer")


@check("oidc.audience_verified", verifies=["PRACAUTH-010"], scenario=FAULTS)
def audience_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token for another audience, or for several with another azp (from PRACAUTH 1.2: or none), is refused."""
    steps = (("wrong_audience", "wrong_audience"), ("foreign_azp", "foreign_azp"))
    if at_least(ctx, "1.2"):
        steps += (("several_audiences_no_azp", "several_audiences_no_azp"),)
    return refusal_verdict(trace, steps, "another audience (or several audiences and no or another azp)")


@check("oidc.expiry_verified", verifies=["PRACAUTH-011"], scenario=FAULTS)
def expiry_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An expired ID token, one issued in the future, or (from PRACAUTH 1.2) not valid before a future time."""
    steps = (("expired", "expired"), ("issued_in_future", "issued_in_future"))
    if at_least(ctx, "1.2"):
        steps += (("nbf_in_future", "nbf_in_future"),)
    return refusal_verdict(trace, steps, "an expiry in the past (or an iat or nbf in the future)")


def request_param_findings(trace: TraceView | RunView, name: str, accept: Any, expected: str) -> list[Finding]:
    """Each authorization request carries parameter ``name`` with a value ``accept`` approves."""
    requests = authorizations(trace)
    if not requests:
        return [Missing("the software sent no authorization request")]
    return [quote(e, f"the authorization request does not ask for {expected}", where=f"request.query.{name}",
                  expected=expected, got=e.param(name)) for e in requests if not accept(e.param(name))]


@check("oidc.acr_verified", verifies=["SECURITY-004"], scenario=FAULTS, reads_all=True)
def acr_verified(run: RunView, ctx: EvalContext) -> Verdict:
    """Each authorization asks acr_values=eidas1, and an ID token with another acr is refused."""
    acr = ctx.param("SECURITY-004", "acr", "eidas1")
    findings = request_param_findings(run, "acr_values", lambda v: acr in (v or "").split(), f"acr_values={acr}")
    findings += refusals(faults_trace(run), (("wrong_acr", "wrong_acr"),), f"an acr other than {acr}")
    return judged(findings, f"every authorization asks acr_values={acr}; the ID token with another acr was refused")


@check("oidc.max_auth_age_enforced", verifies=["PRACAUTH-017"], scenario=FAULTS, reads_all=True)
def max_auth_age_enforced(run: RunView, ctx: EvalContext) -> Verdict:
    """Each authorization sends the referential's max_age, and an ID token with an older auth_time is refused."""
    max_age = str(ctx.param("PRACAUTH-017", "max_age", 43200))
    findings = request_param_findings(run, "max_age", lambda v: v == max_age, f"max_age={max_age}")
    findings += refusals(faults_trace(run), (("stale_auth_time", "stale_auth_time"),),
                         f"an auth_time older than max_age ({int(max_age) // 3600} hours)")
    return judged(findings, f"every authorization sends max_age={max_age}; the ID token with an older auth_time was "
                            "refused")


@check("oidc.userinfo_national_id", verifies=["PRACAUTH-012", "PRACAUTH-013"], scenario=FAULTS)
def userinfo_national_id(trace: TraceView, ctx: EvalContext) -> Verdict:
    """Userinfo is called with the access token, its national id recorded unchanged, another sub refused."""
    findings = control_findings(trace)
    for name in CONTROLS:  # control_after follows the refused userinfo of another practitioner
        note = login_step(trace, name)
        if note is not None and claims_session(note):
            findings += national_id_findings(trace, note)
    findings += about(["PRACAUTH-012"], userinfo_refusal_findings(trace))
    return judged(findings, "userinfo called with the access token, national id recorded as returned, another sub "
                            "refused")


def national_id_findings(trace: TraceView, note: Note) -> list[Finding]:
    """The session's national id is the one userinfo returned, character for character."""
    served = [e for e in step_exchanges(trace, note, "idp") if e.outcome == "userinfo-served"]
    if not served:
        return [Finding("the control login never called userinfo", exchange=note.seq, scenario=note.scenario,
                        requirements=("PRACAUTH-012",))]
    e = served[-1]
    if (e.auth or {}).get("kind") != "access":
        return [quote(e, "userinfo was not called with the access token as a Bearer credential", where="request.auth",
                      expected="Bearer access token", got=e.auth).about("PRACAUTH-012")]
    claims = e.response_json if isinstance(e.response_json, dict) else {}
    returned = claims.get("SubjectNameID") or claims.get("sub")
    recorded = note.data["output"].get("national_id")
    if recorded != returned or not NATIONAL_ID.match(str(recorded)):
        return [Finding(f"the national id recorded for the session is not the one userinfo returned (exchange {e.seq})",
                        exchange=note.seq, scenario=note.scenario, where="output.national_id", expected=returned, got=recorded,
                        requirements=("PRACAUTH-013",))]
    return []


def userinfo_refusal_findings(trace: TraceView) -> list[Finding]:
    """The login whose userinfo answers another practitioner is refused."""
    note = login_step(trace, "userinfo_other_sub")
    if note is None:
        return [Missing("the login whose userinfo answers another practitioner was not performed")]
    faulty = [e for e in step_exchanges(trace, note, "idp") if e.details.get("fault") == "userinfo_other_sub"]
    if not faulty:
        return [Missing("step 'userinfo_other_sub': the software never called userinfo, so the mismatch was never "
                        "shown to it", exchange=note.seq, scenario=note.scenario, got=note.data.get("output"))]
    e = faulty[-1]
    found = [quote(u, f"the software kept using the access token after userinfo answered sub "
                      f"{e.details.get('served_sub')!r} for a login of {e.details.get('sub')!r} (exchange {e.seq})",
                   where="request.auth", expected="session refused", got=u.auth)
             for u in bearer_uses(trace, (e.auth or {}).get("token_sha256"), e.seq)]
    if claims_session(note):
        found.append(Finding("the software opened a session although userinfo's sub differs from the ID token's",
                             exchange=note.seq, scenario=note.scenario, where="output.authenticated", expected=False, got=True))
    return found


# PRACAUTH 1.2: the rest of the OpenID Foundation's RP certification tests ------------------------

def at_least(ctx: EvalContext, version: str) -> bool:
    """Whether the pinned PRACAUTH version is ``version`` or later."""
    pinned = ctx.version("PRACAUTH") or "0"
    return tuple(int(p) for p in pinned.split(".")) >= tuple(int(p) for p in version.split("."))


def acceptance_findings(trace: TraceView, step: str, what: str) -> list[Finding]:
    """The login of ``step``, whose answers are valid though unusual (``what``), must succeed."""
    note = login_step(trace, step)
    if note is None:
        return [Missing(f"the login with {what} (step {step!r}) was not performed")]
    used = [e for i in _issued_in(trace, note) for e in bearer_uses(trace, i.access, i.exchange.seq)
            if e.local_path == "/userinfo" and e.outcome == "userinfo-served"]
    if not used or not claims_session(note):
        return [noted(note, f"step {step!r}: the software refused a valid login with {what}",
                      where="output.authenticated", expected="token used at userinfo, authenticated",
                      got=note.data.get("output") or note.data.get("failure"))]
    return []


@check("oidc.required_claims_verified", verifies=["PRACAUTH-025"], scenario=FAULTS)
def required_claims_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token without iat, exp or sub is refused."""
    return refusal_verdict(trace, (("iat_missing", "iat_missing"), ("exp_missing", "exp_missing"),
                                   ("sub_missing", "sub_missing")), "a required claim missing (iat, exp or sub)")


@check("oidc.token_hashes_verified", verifies=["PRACAUTH-022"], scenario=FAULTS)
def token_hashes_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """An ID token whose at_hash or c_hash does not match the access token or the code is refused."""
    return refusal_verdict(trace, (("wrong_at_hash", "wrong_at_hash"), ("wrong_c_hash", "wrong_c_hash")),
                           "an at_hash or c_hash that does not match")


@check("oidc.signed_userinfo_verified", verifies=["PRACAUTH-023"], scenario=FAULTS)
def signed_userinfo_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A signed userinfo answer is accepted once verified; one whose signature does not verify ends the login."""
    findings = control_findings(trace) + acceptance_findings(trace, "userinfo_signed", "a signed userinfo answer")
    note = login_step(trace, "userinfo_bad_signature")
    faulty = [e for e in step_exchanges(trace, note, "idp") if e.details.get("fault") == "userinfo_signed_bad_signature"] \
        if note else []
    if note is None or not faulty:
        findings.append(Missing("the login whose signed userinfo answer has a corrupted signature did not reach "
                                "userinfo", exchange=note.seq if note else None, scenario=note.scenario if note else ""))
    for e in faulty:
        findings += [quote(u, f"the software kept using the access token after a userinfo answer whose signature "
                              f"does not verify (exchange {e.seq})", where="request.auth", expected="login refused",
                           got=u.auth) for u in bearer_uses(trace, (e.auth or {}).get("token_sha256"), e.seq)]
    if note is not None and claims_session(note):
        findings.append(noted(note, "the software opened a session on a signed userinfo answer whose signature does not "
                                    "verify", where="output.authenticated", expected=False, got=True))
    return judged(findings, "a signed userinfo answer was verified and used; one with a bad signature ended the login")


@check("oidc.provider_keys_followed", verifies=["PRACAUTH-021"], scenario=FAULTS, reads=(ROTATION,))
def provider_keys_followed(run: RunView, ctx: EvalContext) -> Verdict:
    """A token without kid is verified with the JWKS's only key; after a key rotation the JWKS is fetched again and
    the token signed by the new key accepted."""
    faults, rotation = faults_trace(run), run.get(ROTATION)
    assert rotation is not None
    findings = control_findings(faults) + acceptance_findings(faults, "kid_absent", "an ID token without kid "
                                                                                    "(the JWKS holds one key)")
    findings += acceptance_findings(rotation, "control", "the provider's current key")
    findings += acceptance_findings(rotation, "rotated", "an ID token signed by the provider's new key")
    note = login_step(rotation, "rotated")
    if note is not None and not [e for e in step_exchanges(rotation, note, "idp")
                                 if e.local_path == "/jwks" and e.details.get("fault") == "rotate_keys"]:
        findings.append(noted(note, "after the key rotation the software did not fetch the provider's JWKS again",
                              where="requests", expected="GET /jwks", got="none"))
    return judged(findings, "the token without kid was verified with the only key; after the rotation the JWKS was "
                            "fetched again and the new key's token accepted")


@check("oidc.discovery_issuer_verified", verifies=["PRACAUTH-024"], scenario=DISCOVERY)
def discovery_issuer_verified(trace: TraceView, ctx: EvalContext) -> Verdict:
    """A discovery document naming another issuer is refused: no authorization request to the endpoints it names."""
    findings = acceptance_findings(trace, "control", "the provider's own discovery document")
    note = login_step(trace, "other_issuer")
    step = step_exchanges(trace, note, "idp") if note else []
    served = [e for e in step if e.details.get("fault") == "discovery_other_issuer"]
    if note is None or not served:
        findings.append(Missing("the software never read the discovery document naming another issuer",
                                exchange=note.seq if note else None, scenario=note.scenario if note else ""))
    for e in step:
        if served and e.seq > served[0].seq and e.local_path == "/authorize":
            findings.append(quote(e, f"the software sent an authorization request to an endpoint of a discovery "
                                     f"document naming issuer {served[0].details.get('issuer')!r} (exchange "
                                     f"{served[0].seq})", where="request.path", expected="no request",
                                  got=e.local_path))
    if note is not None and claims_session(note):
        findings.append(noted(note, "the software opened a session from a discovery document naming another issuer",
                              where="output.authenticated", expected=False, got=True))
    return judged(findings, "the discovery document naming another issuer was refused; the right one was used")
