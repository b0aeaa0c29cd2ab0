"""Scenarios: practitioner authentication (PRACAUTH, SECURITY-004/005/006).

The faulty answers are the OpenID Foundation's RP certification tests, served by the sandbox's
identity provider as faults a scenario sets.

* ``pracauth.login_nominal`` — a practitioner logs in, then the software uses its access token for a
  patient look-up: the flow, PKCE, discovery, where tokens go and what URLs carry.
* ``pracauth.login_faults`` — a valid login (the control), then one login per fault of the identity
  provider (every forged ID token, a state not echoed, userinfo of another practitioner, userinfo
  signed and with a bad signature), then a valid login again: the software must refuse each faulty
  one and accept the valid ones (an ID token without kid, a signed userinfo).
* ``pracauth.key_rotation`` — a valid login, then the provider rotates its signing key: the next
  login's ID token names a kid the software has not seen, which its refreshed JWKS holds.
* ``pracauth.discovery`` — the discovery document names another issuer: no authorization request
  may follow; then the right document again, and a valid login.
"""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, SetFaults, Step, scenario
from conformity.packs.health.scenarios import people

#: the ID-token forgeries of the sandbox, in the order the scenario tries them (unknown_kid twice:
#: the second, within 5 minutes of the first, must not make the software fetch the JWKS again)
ID_TOKEN_FAULT_STEPS = (
    ("bad_signature", "bad_signature"), ("alg_none", "alg_none"), ("hs256_public_key", "hs256_public_key"),
    ("kid_absent", "kid_absent"), ("unknown_kid", "unknown_kid"), ("unknown_kid", "unknown_kid_again"),
    ("wrong_issuer", "wrong_issuer"), ("wrong_audience", "wrong_audience"), ("foreign_azp", "foreign_azp"),
    ("several_audiences_no_azp", "several_audiences_no_azp"), ("expired", "expired"),
    ("issued_in_future", "issued_in_future"), ("nbf_in_future", "nbf_in_future"), ("wrong_nonce", "wrong_nonce"),
    ("nonce_missing", "nonce_missing"), ("iat_missing", "iat_missing"), ("exp_missing", "exp_missing"),
    ("sub_missing", "sub_missing"), ("wrong_at_hash", "wrong_at_hash"), ("wrong_c_hash", "wrong_c_hash"),
    ("wrong_acr", "wrong_acr"), ("stale_auth_time", "stale_auth_time"),
)


def login(ctx: ScenarioContext) -> dict[str, Any]:
    """The first test practitioner's login (national id as login_hint)."""
    return {"login_hint": people.practitioner(ctx, 0)["national_id"]}


def lookup(ctx: ScenarioContext) -> dict[str, Any]:
    """A look-up of a registered patient, as registered: a call to a service with the access token."""
    traits = people.patient(ctx, "match", 0)["registered_traits"]
    return {k: traits[k] for k in ("birth_name", "first_names", "birth_date", "sex", "birth_place_code")} | {
        "identity_document_checked": True}


def faulty_logins() -> list[Step]:
    steps: list[Step] = []
    for fault, name in ID_TOKEN_FAULT_STEPS:
        steps += [SetFaults({"idp": {"id_token": fault}}), Perform("practitioner.login", login, name=name)]
    steps += [SetFaults({"idp": {"state_not_echoed": True}}),
              Perform("practitioner.login", login, name="state_not_echoed")]
    steps += [SetFaults({"idp": {"userinfo_other_sub": True}}),
              Perform("practitioner.login", login, name="userinfo_other_sub")]
    steps += [SetFaults({"idp": {"userinfo_signed": "valid"}}),
              Perform("practitioner.login", login, name="userinfo_signed")]
    steps += [SetFaults({"idp": {"userinfo_signed": "bad_signature"}}),
              Perform("practitioner.login", login, name="userinfo_bad_signature")]
    return steps


NOMINAL = scenario(
    "pracauth.login_nominal",
    "A practitioner logs in; the access token is used at a national service",
    Perform("practitioner.login", login, name="login"),
    Perform("patient.lookup", lookup, name="lookup"),
)

FAULTS = scenario(
    "pracauth.login_faults",
    "Every identity-provider fault: forged ID tokens, state not echoed, userinfo of another practitioner",
    Perform("practitioner.login", login, name="control"),
    *faulty_logins(),
    SetFaults({"idp": None}),
    Perform("practitioner.login", login, name="control_after"),
    # no wait, but some 25 logins (60-odd exchanges, a token signed and verified each): among the longest of a wave,
    # and longer still on a loaded machine; started among the first
    expected_seconds=3.0,
)

KEY_ROTATION = scenario(
    "pracauth.key_rotation",
    "A valid login, then the provider rotates its signing key: the next ID token names a kid not seen yet",
    Perform("practitioner.login", login, name="control"),
    SetFaults({"idp": {"rotate_keys": True}}),
    Perform("practitioner.login", login, name="rotated"),
    SetFaults({"idp": None}),
)

DISCOVERY = scenario(
    "pracauth.discovery",
    "A discovery document naming another issuer, then the right one",
    SetFaults({"idp": {"discovery_other_issuer": True}}),
    Perform("practitioner.login", login, name="other_issuer"),
    SetFaults({"idp": None}),
    Perform("practitioner.login", login, name="control"),
)
