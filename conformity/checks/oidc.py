"""Generic OpenID Connect relying-party rules, for any pack whose software logs users in with a provider.

The sandbox's provider is one core service that a pack configures (its URL name, its accounts, claims and
``acr`` values). These helpers read a trace of that provider, whatever its name: the authorization and token
requests, the tokens issued (as the hash prefixes the trace keeps), their later use, the refusal of a login
whose ID token the sandbox forged. Refusals are judged on what the provider and the services saw: a login is
refused when the software never used the access token delivered with the faulty answer (not at userinfo, not
at any service) and its driver does not claim a session either; and the control logins must succeed, since
software that refuses everything proves nothing.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Any

from conformity.checks.helpers import performed, quote, step_exchanges
from conformity.checks.model import Finding, Missing, Verdict, failed, passed
from conformity.checks.trace import Exchange, Note, RunView, TraceView, views

REDACTED = re.compile(r"\[redacted sha256:([0-9a-f]{16})\]")
ALPHABETS = (
    (string.digits, 10),
    (string.hexdigits.lower(), 16),
    (string.hexdigits.upper(), 16),
    (string.ascii_letters + string.digits, 62),
    (string.ascii_letters + string.digits + "-_", 64),
    (string.ascii_letters + string.digits + "+/=", 64),
)


@dataclass(frozen=True, slots=True)
class Provider:
    """Where a pack's login happens: the provider's service name, the driver action that logs in, its controls."""

    service: str
    login_action: str
    controls: tuple[str, ...] = ("control", "control_after")


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


def redacted_hash(value: Any) -> str | None:
    """The hash prefix of a secret the sandbox redacted in the trace (``[redacted sha256:…]``)."""
    match = REDACTED.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def authorizations(subject: TraceView | RunView, service: str) -> list[Exchange]:
    """The authorization requests the software sent (GET or POST /authorize), in every trace of ``subject``."""
    return [e for trace in views(subject) for e in trace.exchanges(service, path="/authorize")]


def token_requests(subject: TraceView | RunView, service: str) -> list[Exchange]:
    return [e for trace in views(subject) for e in trace.exchanges(service, method="POST", path="/token")]


def issued(trace: TraceView, service: str) -> list[Issued]:
    """Every successful token response (code or refresh grant), with the hashes of the tokens it carried."""
    out = []
    for e in token_requests(trace, service):
        body = e.response_json if isinstance(e.response_json, dict) else {}
        if e.outcome in ("token-issued", "token-refreshed"):
            out.append(
                Issued(
                    e,
                    redacted_hash(body.get("access_token")),
                    redacted_hash(body.get("id_token")),
                    redacted_hash(body.get("refresh_token")),
                )
            )
    return out


def bearer_uses(trace: TraceView, token_hash: str | None, after: int = 0) -> list[Exchange]:
    """Requests after seq ``after`` that presented the token with this hash prefix as a Bearer credential."""
    if not token_hash:
        return []
    return [
        e
        for e in trace.exchanges(after=after)
        if (e.auth or {}).get("scheme") == "Bearer" and (e.auth or {}).get("token_sha256") == token_hash
    ]


def refresh_uses(trace: TraceView, service: str, token_hash: str | None, after: int = 0) -> list[Exchange]:
    """Token requests after seq ``after`` that redeemed the refresh token with this hash prefix."""
    if not token_hash:
        return []
    return [e for e in token_requests(trace, service)
            if e.seq > after and redacted_hash(e.param("refresh_token")) == token_hash]


def entropy_bits(value: str) -> float:
    """A generous estimate of a random string's entropy: its length times log2 of its smallest alphabet."""
    for alphabet, size in ALPHABETS:
        if all(c in alphabet for c in value):
            return len(value) * math.log2(size)
    return len(value) * math.log2(95)


def login_step(trace: TraceView, provider: Provider, name: str) -> Note | None:
    notes = performed(trace, provider.login_action, name)
    return notes[-1] if notes else None


def claims_session(note: Note) -> bool:
    out = note.data.get("output")
    return isinstance(out, dict) and out.get("authenticated") is True


def issued_in(trace: TraceView, provider: Provider, note: Note) -> list[Issued]:
    """The tokens issued during one driver step."""
    seqs = {e.seq for e in step_exchanges(trace, note, provider.service)}
    return [i for i in issued(trace, provider.service) if i.exchange.seq in seqs]


def control_findings(trace: TraceView, provider: Provider) -> list[Finding]:
    """The scenario's valid logins must succeed: a token issued, used at userinfo, a session opened."""
    found: list[Finding] = []
    for name in provider.controls:
        note = login_step(trace, provider, name)
        if note is None:
            found.append(Missing(f"the control login {name!r} was not performed"))
            continue
        used = [
            e
            for i in issued_in(trace, provider, note)
            for e in bearer_uses(trace, i.access, i.exchange.seq)
            if e.local_path == "/userinfo" and e.outcome == "userinfo-served"
        ]
        if not used or not claims_session(note):
            found.append(
                Finding(
                    f"the control login {name!r} with valid answers did not succeed, so refusing the "
                    "faulty ones proves nothing",
                    exchange=note.seq,
                    scenario=note.scenario,
                    expected="token issued, userinfo called, authenticated",
                    got=note.data.get("output"),
                )
            )
    return found


def refusal_findings(trace: TraceView, provider: Provider, step: str, fault: str, what: str) -> list[Finding]:
    """The software must refuse the login of ``step``, whose answer the sandbox forged as ``fault``."""
    note = login_step(trace, provider, step)
    if note is None:
        return [Missing(f"the login with {what} (step {step!r}) was not performed")]
    forged = [i for i in issued_in(trace, provider, note) if i.fault == fault]
    if not forged:
        return [
            Missing(
                f"step {step!r}: the software never redeemed its code, so it never received the ID token "
                f"with {what}: its refusal is not shown",
                exchange=note.seq,
                scenario=note.scenario,
                got=note.data.get("output"),
            )
        ]
    found = []
    for i in forged:
        for e in bearer_uses(trace, i.access, i.exchange.seq):
            found.append(
                quote(
                    e,
                    f"step {step!r}: the software accepted the ID token with {what} (exchange "
                    f"{i.exchange.seq}) and used the access token it came with at "
                    f"{e.service} {e.method} {e.local_path}",
                    where="request.auth",
                    expected="token discarded",
                    got=e.auth,
                )
            )
        for e in refresh_uses(trace, provider.service, i.refresh, i.exchange.seq):
            found.append(
                quote(
                    e,
                    f"step {step!r}: the software kept the refresh token that came with the ID token "
                    f"with {what} (exchange {i.exchange.seq}) and redeemed it",
                    where="request.body.form",
                    expected="token discarded",
                    got=e.outcome,
                )
            )
    if claims_session(note):
        found.append(
            Finding(
                f"step {step!r}: the software opened a session with an ID token with {what}",
                exchange=note.seq,
                scenario=note.scenario,
                where="output.authenticated",
                expected=False,
                got=True,
            )
        )
    return found


def refusals(trace: TraceView, provider: Provider, steps: tuple[tuple[str, str], ...], what: str) -> list[Finding]:
    """The control logins' findings, then each (step, fault) login's: breaches, or Missing when not shown."""
    findings = control_findings(trace, provider)
    for step, fault in steps:
        findings += refusal_findings(trace, provider, step, fault, what)
    return findings


def refusal_verdict(trace: TraceView, provider: Provider, steps: tuple[tuple[str, str], ...], what: str) -> Verdict:
    """Pass when every (step, fault) login was refused and the control logins succeeded (a login not shown fails
    too: see :func:`refusals` and :func:`~conformity.checks.model.judged` for not-exercised instead)."""
    findings = refusals(trace, provider, steps, what)
    if findings:
        return failed(*findings)
    return passed(f"the software refused the ID token with {what} and accepted the valid ones")


def param_finding(e: Exchange, part: str, name: str, message: str, expected: Any, got: Any = None) -> Finding:
    """A finding about request parameter ``name`` of ``e``, in ``part`` (``query`` or ``body.form``); ``got``
    defaults to the parameter's value."""
    return quote(e, message, where=f"request.{part}.{name}", expected=expected,
                 got=e.param(name) if got is None else got)


def random_value_findings(
    subject: TraceView | RunView, service: str, name: str, *, min_bits: float = 0, min_length: int = 0
) -> list[Finding]:
    """Each authorization request carries parameter ``name``: at least ``min_length`` characters and ``min_bits``
    bits of entropy, never reused."""
    found: list[Finding] = []
    seen: dict[str, int] = {}
    requests = authorizations(subject, service)
    if not requests:
        return [Missing("the software sent no authorization request")]
    wanted = f"{min_length} characters" if min_length else f"{min_bits:g} bits"
    for e in requests:
        value = e.param(name)
        if not value:
            found.append(param_finding(e, "query", name, f"the authorization request carries no {name}",
                                       f"a random value of at least {wanted}"))
            continue
        bits = entropy_bits(value)
        if len(value) < min_length:
            found.append(param_finding(e, "query", name, f"the {name} is shorter than {min_length} characters",
                                       f">= {min_length} characters", f"{value!r} ({len(value)} characters)"))
        elif bits < min_bits:
            found.append(param_finding(e, "query", name, f"the {name} is too short to carry {min_bits:g} bits of "
                                       "entropy", f">= {min_bits:g} bits", f"{value!r} (~{bits:.0f} bits)"))
        if value in seen:
            found.append(param_finding(e, "query", name, f"the {name} of exchange {seen[value]} is reused",
                                       "a fresh value"))
        seen.setdefault(value, e.seq)
    return found


def code_flow_findings(subject: TraceView | RunView, service: str) -> list[Finding]:
    """Every authorization request asks for a code with the openid scope; every token request redeems a code or a
    refresh token."""
    found = []
    requests = authorizations(subject, service)
    if not requests:
        return [Finding("the software sent no authorization request")]
    for e in requests:
        if e.param("response_type") != "code":
            found.append(param_finding(e, "query", "response_type",
                                       "the authorization request does not use the code flow", "code"))
        if "openid" not in (e.param("scope") or "").split():
            found.append(param_finding(e, "query", "scope",
                                       "the authorization request does not ask for the openid scope", "openid …"))
    for e in token_requests(subject, service):
        if e.param("grant_type") not in ("authorization_code", "refresh_token"):
            found.append(param_finding(e, "body.form", "grant_type", "the token request uses another grant",
                                       "authorization_code"))
    return found


def pkce_findings(subject: TraceView | RunView, service: str) -> list[Finding]:
    """Each authorization request has an S256 code_challenge and each code is redeemed with its verifier."""
    found = []
    for e in authorizations(subject, service):
        if e.param("code_challenge_method") != "S256" or not e.param("code_challenge"):
            found.append(param_finding(e, "query", "code_challenge_method",
                                       "the authorization request has no S256 code_challenge (PKCE)", "S256"))
    for e in token_requests(subject, service):
        if e.param("grant_type") == "authorization_code" and not e.param("code_verifier"):
            found.append(quote(e, "the code is redeemed without its code_verifier",
                               where="request.body.form.code_verifier", expected="the PKCE verifier", got=None))
    return found
