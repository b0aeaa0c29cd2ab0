"""The faults a test session can inject into the sandbox's services, for robustness and security scenarios.

Set with ``PUT /admin/sessions/{id}/faults`` as ``{"<service>": {<fault>: <value>}}``; a service
set to ``null`` or ``{}`` is cleared. Each service reads its own with ``deps.fault``.

Every OpenID Connect provider (one per pack profile) has the provider faults below; every other service has
the network faults (:mod:`sandbox.network`) and 429/503 answers, plus those its pack declares in ``FAULTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import plugins

#: ID-token forgeries (the OpenID Foundation's RP certification tests, as faults a session sets); kid_absent is a
#: valid token without a kid in its header (the JWKS holds one key)
ID_TOKEN_FAULTS = ("bad_signature", "wrong_issuer", "wrong_audience", "expired", "wrong_nonce", "alg_none",
                   "unknown_kid", "wrong_acr", "stale_auth_time", "issued_in_future", "foreign_azp",
                   "hs256_public_key", "kid_absent", "nonce_missing", "several_audiences_no_azp", "nbf_in_future",
                   "iat_missing", "exp_missing", "sub_missing", "wrong_at_hash", "wrong_c_hash")
USERINFO_SIGNED = ("valid", "bad_signature")


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: what it does, and what its value must be (a rule returning the expectation when broken)."""

    doc: str
    rule: Callable[[Any], str | None]


def counted(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100
    return None if ok else "expected an integer 0..100"


def flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def seconds(limit: float) -> Callable[[Any], str | None]:
    def rule(value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= limit
        return None if ok else f"expected seconds 0..{limit:g}"
    return rule


def integer(low: int, high: int, unit: str = "an integer") -> Callable[[Any], str | None]:
    def rule(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"expected {unit} {low}..{high}"
    return rule


def one_of(*values: str) -> Callable[[Any], str | None]:
    def rule(value: Any) -> str | None:
        return None if value is None or value in values else f"{value!r} is not one of {', '.join(values)}"
    return rule


PROVIDER: dict[str, Fault] = {
    "id_token": Fault("one of " + ", ".join(ID_TOKEN_FAULTS) + ": the next ID tokens are forged that way",
                      one_of(*ID_TOKEN_FAULTS)),
    "state_not_echoed": Fault("true: the authorization redirect carries a state other than the one sent", flag),
    "userinfo_other_sub": Fault("true: userinfo answers with another account's claims (sub differs from the ID "
                                "token's)", flag),
    "userinfo_signed": Fault("valid or bad_signature: userinfo answers a JWT signed by the provider "
                             "(application/jwt), its signature corrupted for bad_signature", one_of(*USERINFO_SIGNED)),
    "rotate_keys": Fault("true: the provider has rotated its signing key: the JWKS publishes the new key only and it "
                         "signs the ID tokens", flag),
    "discovery_other_issuer": Fault("true: the discovery document names another issuer than the provider's", flag),
}

#: faults every service but the identity providers has: answers refused, and its connection failing (sandbox.network)
NETWORK: dict[str, Fault] = {
    "unavailable": Fault("n: the next n requests answer 503 with Retry-After", counted),
    "retry_after": Fault("seconds announced in Retry-After (default 1)", counted),
    "rate_limited": Fault("n: the next n requests answer 429 with Retry-After", counted),
    "omit_retry_after": Fault("true: 503 and 429 answers carry no Retry-After", flag),
    "reset": Fault("n: the connection of the next n requests is reset before they are processed", counted),
    "dropped_replies": Fault("n: the next n requests are processed, then their connection is closed without an answer",
                             counted),
    "stall": Fault("n: the next n requests are processed, then their answer is held until the software gives up "
                   "(or 32 s)", counted),
}


def catalogue() -> dict[str, dict[str, Fault]]:
    """Service → fault name → fault, for every installed pack's provider and services."""
    out: dict[str, dict[str, Fault]] = {name: dict(PROVIDER) for name in plugins.profiles()}
    for pack in plugins.packs().values():
        for service in pack.services:
            own = dict(pack.faults.get(service, {}))
            out[service] = {**own, **{k: v for k, v in NETWORK.items() if k not in own}}
    return out


def described() -> dict[str, dict[str, str]]:
    """The catalogue as documentation (``GET /admin/faults``): service → fault → what it does."""
    return {service: {name: f.doc for name, f in faults.items()} for service, faults in catalogue().items()}


def validate_faults(faults: Any) -> list[str]:
    """Every problem with a faults document (empty list: valid)."""
    if not isinstance(faults, dict):
        return ["faults must be an object keyed by service"]
    known = catalogue()
    errors = []
    for service, spec in faults.items():
        if service not in known:
            errors.append(f"unknown service {service!r} (services: {', '.join(known)})")
            continue
        if spec is None:
            continue
        if not isinstance(spec, dict):
            errors.append(f"{service}: faults must be an object")
            continue
        for name, value in spec.items():
            fault = known[service].get(name)
            if fault is None:
                errors.append(f"{service}: unknown fault {name!r} (known: {', '.join(known[service])})")
                continue
            why = fault.rule(value)
            if why is not None:
                errors.append(f"{service}.{name}: {why}")
    return errors
