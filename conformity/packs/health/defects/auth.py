"""Mutations of practitioner authentication and of where tokens and secrets go: PRACAUTH, SECURITY-004/005/006."""

from __future__ import annotations

import copy
import hashlib

from conformity.checks.oidc import REDACTED
from conformity.checks.trace import Exchange
from conformity.defects.edit import TraceEdit
from conformity.packs.health.defects.common import mutation

NOMINAL, FAULTS = "pracauth.login_nominal", "pracauth.login_faults"
ROTATION, DISCOVERY = "pracauth.key_rotation", "pracauth.discovery"
W2 = ("2027-W2",)


def issued_hash(token_exchange: Exchange, name: str) -> str:
    """The hash prefix of a token the provider issued, as the trace holds it (``[redacted sha256:…]``)."""
    match = REDACTED.fullmatch(token_exchange.response_json[name])
    assert match is not None
    return match.group(1)


def _lookup(t: TraceEdit) -> Exchange:
    return t.in_step("lookup", "insi", path="/lookup")[-1]


def _token(t: TraceEdit) -> Exchange:
    return t.exchanges("idp", "/token")[0]


def _authorize(t: TraceEdit) -> Exchange:
    return t.exchanges("idp", "/authorize")[0]


# ---------------------------------------------------------------------------------------------
# tokens kept to their audience


@mutation("id-token-as-bearer-at-userinfo", scenario=NOMINAL, breaks=["PRACAUTH-014"], where="request.auth")
def id_token_as_bearer_at_userinfo(t: TraceEdit) -> int:
    """Userinfo is called with the ID token instead of the access token (the provider then refuses it)."""
    e = t.in_step("login", "idp", path="/userinfo")[-1]
    e.raw["request"]["auth"] = {"scheme": "Bearer", "token_sha256": issued_hash(_token(t), "id_token"),
                                "kind": "unknown"}
    return e.seq


@mutation("id-token-as-bearer-at-service", scenario=NOMINAL, breaks=["PRACAUTH-014", "SECURITY-005"],
          where="request.auth")
def id_token_as_bearer_at_service(t: TraceEdit) -> int:
    """The identity service is called with the ID token as its Bearer credential."""
    e = _lookup(t)
    e.raw["request"]["auth"] = {"scheme": "Bearer", "token_sha256": issued_hash(_token(t), "id_token"),
                                "kind": "unknown"}
    return e.seq


@mutation("token-of-another-session", scenario=NOMINAL, breaks=["PRACAUTH-014", "SECURITY-005"], where="request.auth")
def token_of_another_session(t: TraceEdit) -> int:
    """A token cached from an earlier session, still valid at the provider, is presented."""
    e = _lookup(t)
    e.raw["request"]["auth"] |= {"token_sha256": "0123456789abcdef", "session": "other"}
    return e.seq


@mutation("bearer-sent-to-jwks", scenario=NOMINAL, breaks=["PRACAUTH-014", "SECURITY-005"], where="request.auth")
def bearer_sent_to_jwks(t: TraceEdit) -> int:
    """An HTTP client configured with the token for every request sends it to the provider's JWKS endpoint."""
    jwks = t.exchanges("idp", "/jwks")[0]
    jwks.raw["request"]["auth"] = copy.deepcopy(_lookup(t).raw["request"]["auth"])
    return jwks.seq


@mutation("refresh-token-forwarded", scenario=NOMINAL, breaks=["PRACAUTH-020", "SECURITY-005"],
          where="request.headers", waves=W2)
def refresh_token_forwarded(t: TraceEdit) -> int:
    """The refresh token travels in a header of a request to the identity service."""
    e = _lookup(t)
    e.raw["request"]["headers"]["x-refresh-token"] = f"[redacted sha256:{issued_hash(_token(t), 'refresh_token')}]"
    return e.seq


@mutation("refresh-token-as-bearer-at-userinfo", scenario=NOMINAL, breaks=["PRACAUTH-020"], where="request.auth",
          waves=W2)
def refresh_token_as_bearer_at_userinfo(t: TraceEdit) -> int:
    """Userinfo is called with the refresh token as Bearer credential."""
    e = t.in_step("login", "idp", path="/userinfo")[-1]
    e.raw["request"]["auth"] = {"scheme": "Bearer", "token_sha256": issued_hash(_token(t), "refresh_token"),
                                "kind": "refresh", "session": "same"}
    return e.seq


@mutation("access-token-in-header", scenario=NOMINAL, breaks=["SECURITY-005"], where="request.headers")
def access_token_in_header(t: TraceEdit) -> int:
    """The access token is also copied into a custom header of the look-up, as data the service receives."""
    e = _lookup(t)
    e.raw["request"]["headers"]["x-practitioner-token"] = \
        f"[redacted sha256:{issued_hash(_token(t), 'access_token')}]"
    return e.seq


# ---------------------------------------------------------------------------------------------
# URLs


@mutation("national-id-at-userinfo", scenario=NOMINAL, breaks=["SECURITY-006"], where="request.path/query")
def national_id_at_userinfo(t: TraceEdit) -> int:
    """Userinfo is asked with the practitioner's national id in its query string."""
    e = t.in_step("login", "idp", path="/userinfo")[-1]
    e.raw["request"]["query"] = {"sub": [t.output("login")["national_id"]]}
    return e.seq


@mutation("national-id-in-query", scenario=NOMINAL, breaks=["SECURITY-006", "PATIENTID-001", "ETHICS-003"],
          where="request.path/query")
def national_id_in_query(t: TraceEdit) -> int:
    """The practitioner on behalf of whom the look-up is made is named in its URL."""
    e = _lookup(t)
    e.raw["request"]["query"] = {"rpps": [t.output("login")["national_id"]]}
    return e.seq


@mutation("client-secret-in-query", scenario=NOMINAL, breaks=["SECURITY-006", "PRACAUTH-015"], where="request.query")
def client_secret_in_query(t: TraceEdit) -> int:
    """The token request repeats the client id and secret in its query string."""
    token = _token(t)
    token.raw["request"]["query"] = {"client_id": [t.doc["session"]["client_id"]],
                                     "client_secret": [f"[redacted sha256:{t.doc['session']['client_secret_sha256']}]"]}
    return token.seq


@mutation("access-token-in-query", scenario=NOMINAL,
          breaks=["SECURITY-006", "SECURITY-005", "PATIENTID-001", "ETHICS-003"], where="request.query")
def access_token_in_query(t: TraceEdit) -> int:
    """The access token is sent as ``?access_token=`` to the service it is for (RFC 6750 §2.3, not allowed here)."""
    e = _lookup(t)
    e.raw["request"]["query"] = {"access_token": [f"[redacted sha256:{issued_hash(_token(t), 'access_token')}]"]}
    return e.seq


# ---------------------------------------------------------------------------------------------
# the nominal login


@mutation("implicit-flow", scenario=NOMINAL, breaks=["PRACAUTH-001"], where="request.query.response_type")
def implicit_flow(t: TraceEdit) -> int:
    """The authorization request asks for the implicit flow."""
    authorize = _authorize(t)
    authorize.raw["request"]["query"]["response_type"] = ["id_token token"]
    return authorize.seq


@mutation("client-secret-post", scenario=NOMINAL, breaks=["PRACAUTH-015"], where="outcome_details.client_auth")
def client_secret_post(t: TraceEdit) -> int:
    """The client authenticates with client_secret_post (the secret in the form body)."""
    token = _token(t)
    token.raw["request"]["auth"] = None
    token.raw["request"]["body"]["form"] |= {
        "client_id": [t.doc["session"]["client_id"]],
        "client_secret": [f"[redacted sha256:{t.doc['session']['client_secret_sha256']}]"]}
    token.raw["outcome_details"]["client_auth"] = "client_secret_post"
    return token.seq


@mutation("fixed-endpoints", scenario=NOMINAL, breaks=["PRACAUTH-002"])
def fixed_endpoints(t: TraceEdit) -> int:
    """The endpoints come from fixed configuration: the discovery document is never read."""
    t.drop(lambda e: not (e["kind"] == "http" and e["request"]["path"].endswith("/.well-known/openid-configuration")))
    return _authorize(t).seq


@mutation("discovery-after-authorization", scenario=NOMINAL, breaks=["PRACAUTH-002"], where="")
def discovery_after_authorization(t: TraceEdit) -> int:
    """The authorization URL comes from fixed configuration: the discovery document is read only after it is sent
    (for the token endpoint and the keys)."""
    authorize = _authorize(t)
    discovery = [e for e in t.exchanges("idp", "/.well-known/openid-configuration") if e.seq < authorize.seq]
    gone = {e.seq for e in discovery}
    t.drop(lambda e: e["seq"] not in gone)
    for i, e in enumerate(discovery, 1):
        t.insert(copy.deepcopy(e.raw) | {"seq": authorize.seq + i / (len(discovery) + 1)})
    return authorize.seq


@mutation("plain-pkce", scenario=NOMINAL, breaks=["PRACAUTH-005"], where="request.query.code_challenge_method")
def plain_pkce(t: TraceEdit) -> int:
    """PKCE with the plain method."""
    authorize = _authorize(t)
    authorize.raw["request"]["query"]["code_challenge_method"] = ["plain"]
    return authorize.seq


@mutation("pkce-not-sent", scenario=NOMINAL, breaks=["PRACAUTH-005"], where="request.query.code_challenge_method")
def pkce_not_sent(t: TraceEdit) -> int:
    """The OIDC client library's PKCE option is left off: no code_challenge is sent, no code_verifier redeems the
    code (a provider not enforcing PKCE still issues the tokens)."""
    for e in t.exchanges("idp", "/authorize"):
        for name in ("code_challenge", "code_challenge_method"):
            e.raw["request"]["query"].pop(name, None)
    for e in t.exchanges("idp", "/token"):
        e.raw["request"]["body"]["form"].pop("code_verifier", None)
    return _authorize(t).seq


@mutation("no-code-verifier", scenario=NOMINAL, breaks=["PRACAUTH-005"], where="request.body.form.code_verifier")
def no_code_verifier(t: TraceEdit) -> int:
    """The code is redeemed without its PKCE verifier."""
    token = _token(t)
    del token.raw["request"]["body"]["form"]["code_verifier"]
    return token.seq


# ---------------------------------------------------------------------------------------------
# the faulty logins: the software accepts a forged answer


def accepts(step: str, breaks: list[str], waves: tuple[str, ...] = ("2026-W1", "2027-W2")) -> None:
    """Register a mutation: the software accepts the forged answer of step ``step``; it calls userinfo with the
    access token that came with it and opens a session, as the control login does."""

    def change(t: TraceEdit) -> float:
        note = t.step(step)
        forged = t.in_step(step, "idp", path="/token")[-1]
        use = copy.deepcopy(t.in_step("control", "idp", path="/userinfo")[-1].raw) | {"seq": note.seq - 0.5}
        use["request"]["auth"]["token_sha256"] = issued_hash(forged, "access_token")
        seq = t.insert(use)
        note.raw["data"]["output"] = copy.deepcopy(t.output("control"))
        return seq

    change.__doc__ = f"The software accepts the ID token of step {step!r} (forged by the provider) and opens a session."
    mutation(f"accepts-{step.replace('_', '-')}", scenario=FAULTS, breaks=breaks, waves=waves,
             where="request.auth")(change)


accepts("bad_signature", ["PRACAUTH-006"])
accepts("alg_none", ["PRACAUTH-007"])
accepts("unknown_kid", ["PRACAUTH-008"])
accepts("wrong_issuer", ["PRACAUTH-009"])
accepts("wrong_audience", ["PRACAUTH-010"])
accepts("foreign_azp", ["PRACAUTH-010"])
accepts("expired", ["PRACAUTH-011"])
accepts("issued_in_future", ["PRACAUTH-011"])
accepts("wrong_nonce", ["PRACAUTH-004"])
accepts("wrong_acr", ["SECURITY-004"])
accepts("stale_auth_time", ["PRACAUTH-017"], W2)
accepts("hs256_public_key", ["PRACAUTH-007"])
accepts("nonce_missing", ["PRACAUTH-004"])
accepts("several_audiences_no_azp", ["PRACAUTH-010"], W2)
accepts("nbf_in_future", ["PRACAUTH-011"], W2)
accepts("iat_missing", ["PRACAUTH-025"], W2)
accepts("exp_missing", ["PRACAUTH-025"], W2)
accepts("sub_missing", ["PRACAUTH-025"], W2)
accepts("wrong_at_hash", ["PRACAUTH-022"], W2)
accepts("wrong_c_hash", ["PRACAUTH-022"], W2)


def refuses(scenario: str, step: str, breaks: list[str], what: str) -> None:
    """Register a mutation: the software refuses the valid login of step ``step`` (``what``): it never calls
    userinfo with the token it received and opens no session."""

    def change(t: TraceEdit) -> int:
        note = t.step(step)
        gone = {e.seq for e in t.in_step(step, "idp", path="/userinfo")}
        t.drop(lambda e: e["seq"] not in gone)
        note.raw["data"]["output"] = {"authenticated": False, "error": f"ID token refused ({what})"}
        return note.seq

    change.__doc__ = f"The software refuses a valid login: {what}."
    mutation(f"refuses-{step.replace('_', '-')}", scenario=scenario, breaks=breaks, waves=W2,
             where="output.authenticated")(change)


refuses(FAULTS, "kid_absent", ["PRACAUTH-021"], "no kid in the header, though the JWKS holds one key")
refuses(FAULTS, "userinfo_signed", ["PRACAUTH-023"], "userinfo answered as a signed JWT")
refuses(ROTATION, "rotated", ["PRACAUTH-021"], "signed by the provider's new key, which its cached JWKS lacks")


@mutation("accepts-userinfo-bad-signature", scenario=FAULTS, breaks=["PRACAUTH-023"], where="output.authenticated",
          waves=W2)
def accepts_userinfo_bad_signature(t: TraceEdit) -> int:
    """The software takes the claims of a signed userinfo answer without verifying its signature."""
    return t.set_output("userinfo_bad_signature", copy.deepcopy(t.output("control")))


@mutation("authorizes-after-other-issuer", scenario=DISCOVERY, breaks=["PRACAUTH-024"], where="request.path",
          waves=W2)
def authorizes_after_other_issuer(t: TraceEdit) -> float:
    """The software uses a discovery document that names another issuer: it sends its authorization request."""
    note = t.step("other_issuer")
    authorize = copy.deepcopy(t.in_step("control", "idp", path="/authorize")[-1].raw) | {"seq": note.seq - 0.5}
    for name in ("state", "nonce"):  # fresh values, as the software draws for every request
        authorize["request"]["query"][name] = [hashlib.sha256(f"{name}{note.seq}".encode()).hexdigest()[:43]]
    return t.insert(authorize)


@mutation("acr-not-requested", scenario=FAULTS, breaks=["SECURITY-004"], where="request.query.acr_values")
def acr_not_requested(t: TraceEdit) -> int:
    """The authorization requests do not ask for acr_values=eidas1."""
    for e in t.exchanges("idp", "/authorize"):
        e.raw["request"]["query"].pop("acr_values")
    return t.exchanges("idp", "/authorize")[0].seq


@mutation("max-age-not-sent", scenario=FAULTS, breaks=["PRACAUTH-017"], where="request.query.max_age", waves=W2)
def max_age_not_sent(t: TraceEdit) -> int:
    """The authorization requests do not send max_age."""
    for e in t.exchanges("idp", "/authorize"):
        e.raw["request"]["query"].pop("max_age")
    return t.exchanges("idp", "/authorize")[0].seq


@mutation("state-reused", scenario=FAULTS, breaks=["PRACAUTH-003"], where="request.query.state")
def state_reused(t: TraceEdit) -> int:
    """Every authorization request carries the same state."""
    requests = t.exchanges("idp", "/authorize")
    for e in requests[1:]:
        e.raw["request"]["query"]["state"] = list(requests[0].raw["request"]["query"]["state"])
    return requests[1].seq


@mutation("short-nonce", scenario=FAULTS, breaks=["PRACAUTH-004"], where="request.query.nonce")
def short_nonce(t: TraceEdit) -> int:
    """The nonce is an 8-digit counter."""
    e = t.exchanges("idp", "/authorize")[0]
    e.raw["request"]["query"]["nonce"] = ["00000001"]
    return e.seq


@mutation("other-sub-accepted", scenario=FAULTS, breaks=["PRACAUTH-012"], where="output.authenticated")
def other_sub_accepted(t: TraceEdit) -> int:
    """The login goes on although userinfo answers another practitioner."""
    return t.set_output("userinfo_other_sub", copy.deepcopy(t.output("control")))


@mutation("rpps-recorded", scenario=FAULTS, breaks=["PRACAUTH-013"], where="output.national_id")
def rpps_recorded(t: TraceEdit) -> int:
    """The 11-digit RPPS number is recorded without its prefix 8."""
    out = t.output("control")
    out["national_id"] = out["national_id"][1:]
    return t.step("control").seq


@mutation("stale-national-id", scenario=FAULTS, breaks=["PRACAUTH-013"], where="output.national_id")
def stale_national_id(t: TraceEdit) -> int:
    """The next session keeps the national id of the practitioner of a refused login."""
    refused = t.in_step("userinfo_other_sub", "idp", path="/userinfo")[-1]
    t.output("control_after")["national_id"] = refused.details["served_sub"]
    return t.step("control_after").seq
