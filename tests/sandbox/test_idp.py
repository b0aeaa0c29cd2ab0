"""The practitioner identity provider, driven over real HTTP by a real OIDC client (Authlib) and checked with joserfc."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import MismatchingStateException
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from sandbox.config import SandboxConfig
from sandbox.oidc_keys import ALGS, load_or_create
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.services import idp
from sandbox.store import Store
from tests.sandbox.helpers import ADMIN_TOKEN, create_session, trace_payload

REDIRECT = "http://127.0.0.1:8765/callback"


# helpers ----------------------------------------------------------------------------------------------

def idp_url(session: dict[str, Any]) -> str:
    return session["endpoints"]["idp"]


def oidc_client(session: dict[str, Any], *, auth_method: str = "client_secret_basic",
                redirect_uri: str = REDIRECT, client_id: str | None = None,
                client_secret: str | None = None) -> OAuth2Client:
    creds = session["credentials"]
    return OAuth2Client(client_id=client_id or creds["client_id"], client_secret=client_secret or creds["client_secret"],
                        scope="openid profile", redirect_uri=redirect_uri, code_challenge_method="S256",
                        token_endpoint_auth_method=auth_method, timeout=30)


def practitioner(session: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return session["fixtures"]["practitioners"][index]


@dataclass
class Authorized:
    """What came back from the authorization endpoint."""

    client: OAuth2Client
    location: str
    params: dict[str, str]
    sent_state: str
    nonce: str
    verifier: str

    @property
    def code(self) -> str:
        return self.params["code"]


def authorize(session: dict[str, Any], *, client: OAuth2Client | None = None, state: str | None = None,
              nonce: str | None = None, login_hint: str | None = None, pkce: bool = True,
              **extra: str) -> Authorized:
    """Run the authorization request like a browser would, without following the redirect."""
    client = client or oidc_client(session)
    verifier = generate_token(48)
    nonce = nonce if nonce is not None else generate_token(20)
    url, sent_state = client.create_authorization_url(
        f"{idp_url(session)}/authorize", state=state, code_verifier=verifier if pkce else None, nonce=nonce,
        login_hint=login_hint or practitioner(session)["national_id"], **extra)
    r = client.request("GET", url, withhold_token=True, follow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}
    return Authorized(client, location, params, sent_state, nonce, verifier)


def login(session: dict[str, Any], **kw: Any) -> tuple[Authorized, dict[str, Any]]:
    """Authorize, then redeem the code with the real client (state checked by Authlib)."""
    auth = authorize(session, **kw)
    token = auth.client.fetch_token(f"{idp_url(session)}/token", authorization_response=auth.location,
                                    state=auth.sent_state, code_verifier=auth.verifier)
    return auth, dict(token)


def jwks_of(session: dict[str, Any], http: httpx.Client) -> KeySet:
    return KeySet.import_key_set(http.get(f"{idp_url(session)}/jwks").json())


def validate_id_token(id_token: str, *, keys: KeySet, issuer: str, client_id: str, nonce: str) -> dict[str, Any]:
    """What a relying party must do: signature (an algorithm discovery lists) against the JWKS, then iss, aud, exp,
    nonce."""
    token = jwt.decode(id_token, keys, algorithms=list(ALGS))
    JWTClaimsRegistry(iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
                      exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
                      nonce={"essential": True, "value": nonce}).validate(token.claims)
    return token.claims


def exchanges(admin: httpx.Client, session: dict[str, Any]) -> list[dict[str, Any]]:
    r = admin.get(f"/admin/sessions/{session['session_id']}/trace")
    assert r.status_code == 200, r.text
    return trace_payload(r)["exchanges"]


def last(admin: httpx.Client, session: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The last recorded exchange with the idp endpoint named (authorize, token, userinfo, …)."""
    found = [e for e in exchanges(admin, session)
             if e.get("kind") == "http" and e["request"]["path"].endswith(f"/idp/{endpoint}")]
    assert found, f"no {endpoint} exchange recorded"
    return found[-1]


def set_faults(admin: httpx.Client, session: dict[str, Any], faults: dict[str, Any]) -> None:
    r = admin.put(f"/admin/sessions/{session['session_id']}/faults", json={"idp": faults})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def shared_session(admin: httpx.Client) -> dict[str, Any]:
    """One session reused by the property-based test (function fixtures do not mix with @given)."""
    return create_session(admin, 7, label="idp-property")


# discovery and keys -----------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["RS256", "ES256", None])
def test_discovery_and_jwks(alg: str | None, new_session: Callable[..., dict[str, Any]], client: httpx.Client) -> None:
    """OpenID Connect Discovery §3: RS256 is listed; the session's JWKS publishes the key of the algorithm its
    client registered (RS256 when it named none)."""
    session = new_session(seed=3, **({"id_token_signed_response_alg": alg} if alg else {}))
    assert session["id_token_signed_response_alg"] == (alg or "RS256")
    base = idp_url(session)
    doc = client.get(f"{base}/.well-known/openid-configuration").json()
    assert doc["issuer"] == base
    assert doc["authorization_endpoint"] == f"{base}/authorize" and doc["token_endpoint"] == f"{base}/token"
    assert doc["userinfo_endpoint"] == f"{base}/userinfo" and doc["jwks_uri"] == session["trust_anchors"]["provider_jwks"]["idp"]
    assert doc["response_types_supported"] == ["code"] and doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"] and "openid" in doc["scopes_supported"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    assert "authorization_code" in doc["grant_types_supported"] and "nonce" in doc["claims_supported"]
    keys = client.get(doc["jwks_uri"]).json()["keys"]
    assert len(keys) == 1 and keys[0]["kid"] and keys[0]["alg"] == (alg or "RS256") and keys[0]["use"] == "sig"
    assert keys[0]["kty"] == ("EC" if alg == "ES256" else "RSA")
    assert not {"d", "p", "q"} & set(keys[0]), "the JWKS must not publish the private part"


def test_keys_persist_across_restarts(tmp_path: Path) -> None:
    config = SandboxConfig(data_dir=tmp_path, admin_token=ADMIN_TOKEN)
    first = load_or_create(config.idp_key_path)
    for path in config.idp_key_path.parent.glob("idp-signing*.json"):
        assert (path.stat().st_mode & 0o777) == 0o600, path
    published = {}
    with start_in_thread(config) as running:
        for alg in ALGS:
            r = httpx.post(f"{running.base_url}/admin/sessions", json={"seed": 1, "id_token_signed_response_alg": alg},
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            published[alg] = [k["kid"] for k in httpx.get(r.json()["trust_anchors"]["provider_jwks"]["idp"]).json()["keys"]]
    again = load_or_create(config.idp_key_path)
    for alg in ALGS:
        assert published[alg] == [first.for_alg(alg).kid] == [again.for_alg(alg).kid]
        assert first.for_alg(alg).unpublished.kid != first.for_alg(alg).kid != first.for_alg(alg).rotated.kid


def test_key_files_read_once_are_read_again_when_they_change(tmp_path: Path) -> None:
    """A process keeps the keys it loaded while their files stay the same (loading checks each RSA key), and
    reads them again once a file is replaced."""
    path = tmp_path / "idp.json"
    first = load_or_create(path)
    assert load_or_create(path) is first
    rsa = path.with_name("idp-rsa.json")
    rsa.unlink()  # another set of RSA keys, as an operator replacing the file would leave
    other = load_or_create(tmp_path / "other" / "idp.json")
    rsa.write_bytes((tmp_path / "other" / "idp-rsa.json").read_bytes())
    again = load_or_create(path)
    assert again is not first and again.for_alg("RS256").kid == other.for_alg("RS256").kid != first.for_alg("RS256").kid
    assert again.for_alg("ES256").kid == first.for_alg("ES256").kid


# the login flow ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("auth_method", "alg"), [("client_secret_basic", "RS256"), ("client_secret_post", "ES256")])
def test_login_flow_with_a_real_client(auth_method: str, alg: str, new_session: Callable[..., dict[str, Any]],
                                       client: httpx.Client, admin: httpx.Client,
                                       sandbox_server: RunningSandbox) -> None:
    session = new_session(seed=11, id_token_signed_response_alg=alg)
    who = practitioner(session, 1)
    auth, token = login(session, client=oidc_client(session, auth_method=auth_method), login_hint=who["national_id"])
    assert auth.params["state"] == auth.sent_state and auth.params["iss"] == idp_url(session)
    assert token["token_type"] == "Bearer" and token["expires_in"] == sandbox_server.config.access_token_ttl
    assert token["scope"] == "openid profile"

    claims = validate_id_token(token["id_token"], keys=jwks_of(session, client), issuer=idp_url(session),
                               client_id=session["credentials"]["client_id"], nonce=auth.nonce)
    assert json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))["alg"] == alg
    assert claims["sub"] == who["national_id"] and claims["auth_time"] <= claims["iat"] < claims["exp"]
    # the access token says its audience (RFC 9068): the session's services, to which alone it may be sent
    access = jwt.decode(token["access_token"], jwks_of(session, client), algorithms=[alg])
    assert access.header["typ"] == "at+jwt" and access.claims["sub"] == who["national_id"]
    assert set(access.claims["aud"]) == {session["endpoints"][s] for s in ("insi", "dmp", "mss", "directory")} | {
        f"{idp_url(session)}/userinfo"}
    assert claims["given_name"] == who["given_name"] and claims["family_name"] == who["family_name"]
    assert claims["profession"] == {"code": who["profession_code"], "label": who["profession"]}
    left_half = hashlib.sha256(token["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(left_half).decode().rstrip("=")

    r = auth.client.get(f"{idp_url(session)}/userinfo")  # Authlib sends the Bearer token
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["sub"] == info["SubjectNameID"] == who["national_id"]
    assert info["SubjectRefPro"]["exercices"][0]["codeProfession"] == who["profession_code"]
    assert info["SubjectRefPro"]["exercices"][0]["codeSavoirFaire"] == who["specialty_code"]
    assert auth.client.post(f"{idp_url(session)}/userinfo").json() == info

    # the access token is the store record every session service accepts through require_access_token
    record = sandbox_server.server.config.app.state.store.get_token(token["access_token"])
    assert record["kind"] == "access" and record["scope"] == session["session_id"] and not record["expired"]
    assert record["sub"] == who["national_id"] and record["client_id"] == session["credentials"]["client_id"]
    assert record["account"]["rpps"] == who["rpps"] and "openid" in record["scopes"]

    assert last(admin, session, "authorize")["outcome"] == "authorization-code-issued"
    assert last(admin, session, "authorize")["outcome_details"] == {"sub": who["national_id"], "pkce": True}
    issued = last(admin, session, "token")
    assert issued["outcome"] == "token-issued" and issued["outcome_details"]["client_auth"] == auth_method
    assert "fault" not in issued["outcome_details"]
    seen = last(admin, session, "userinfo")
    assert seen["outcome"] == "userinfo-served"
    assert seen["request"]["auth"] == {"scheme": "Bearer", "token_sha256": seen["request"]["auth"]["token_sha256"],
                                       "kind": "access", "session": "same", "expired": False}


def test_loopback_redirects_on_any_port_keep_their_query(new_session: Callable[..., dict[str, Any]]) -> None:
    session = new_session()
    for uri in ("http://localhost:51000/cb?tab=1", "http://[::1]:1234/", "http://127.0.0.1/x"):
        auth = authorize(session, client=oidc_client(session, redirect_uri=uri))
        assert auth.location.startswith(uri) and auth.params["code"]
        if "tab=1" in uri:
            assert auth.params["tab"] == "1"


def test_registered_redirect_uri_is_matched_exactly(new_session: Callable[..., dict[str, Any]],
                                                    client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session(redirect_uris=["https://app.example/cb"])
    assert authorize(session, client=oidc_client(session, redirect_uri="https://app.example/cb")).params["code"]
    for uri in ("https://app.example/cb/", REDIRECT):
        url, _ = oidc_client(session, redirect_uri=uri).create_authorization_url(
            f"{idp_url(session)}/authorize", nonce="n", login_hint=practitioner(session)["national_id"])
        r = client.get(url)
        assert r.status_code == 400 and r.json()["code"] == "redirect-uri-unregistered"
        assert last(admin, session, "authorize")["outcome"] == "redirect-uri-unregistered"


def test_pkce_is_optional_but_noted(new_session: Callable[..., dict[str, Any]], admin: httpx.Client) -> None:
    session = new_session()
    auth = authorize(session, pkce=False)
    assert last(admin, session, "authorize")["outcome_details"]["pkce"] is False
    token = auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code)
    assert token["access_token"]
    assert last(admin, session, "token")["outcome_details"]["pkce"] is False


# injected faults ----------------------------------------------------------------------------------------

FAULTS = {
    "bad_signature": BadSignatureError,
    "alg_none": UnsupportedAlgorithmError,
    "unknown_kid": InvalidKeyIdError,
    "wrong_issuer": InvalidClaimError,
    "wrong_audience": InvalidClaimError,
    "wrong_nonce": InvalidClaimError,
    "expired": ExpiredTokenError,
}
CLAIM_OF_FAULT = {"wrong_issuer": "iss", "wrong_audience": "aud", "wrong_nonce": "nonce"}


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("forgery", sorted(FAULTS))
def test_forged_id_tokens_fail_validation(forgery: str, alg: str, new_session: Callable[..., dict[str, Any]],
                                          client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session(seed=5, id_token_signed_response_alg=alg)
    set_faults(admin, session, {"id_token": forgery})
    auth, token = login(session)
    with pytest.raises(FAULTS[forgery]) as caught:
        validate_id_token(token["id_token"], keys=jwks_of(session, client), issuer=idp_url(session),
                          client_id=session["credentials"]["client_id"], nonce=auth.nonce)
    if forgery in CLAIM_OF_FAULT:
        assert caught.value.claim == CLAIM_OF_FAULT[forgery]
    header = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))
    if forgery == "alg_none":
        assert header["alg"] == "none" and token["id_token"].endswith(".")
    elif forgery == "unknown_kid":
        assert header["kid"] not in {k.kid for k in jwks_of(session, client)}
    issued = last(admin, session, "token")
    assert issued["outcome"] == "token-issued" and issued["outcome_details"]["fault"] == forgery

    set_faults(admin, session, {})  # cleared: honest again
    auth, token = login(session)
    validate_id_token(token["id_token"], keys=jwks_of(session, client), issuer=idp_url(session),
                      client_id=session["credentials"]["client_id"], nonce=auth.nonce)


def test_state_not_echoed(new_session: Callable[..., dict[str, Any]], admin: httpx.Client) -> None:
    session = new_session()
    set_faults(admin, session, {"state_not_echoed": True})
    auth = authorize(session, state="the-state-i-sent")
    assert auth.params["state"] != "the-state-i-sent" and auth.params["code"]
    with pytest.raises(MismatchingStateException):
        auth.client.fetch_token(f"{idp_url(session)}/token", authorization_response=auth.location,
                                state=auth.sent_state, code_verifier=auth.verifier)
    recorded = last(admin, session, "authorize")
    assert recorded["outcome"] == "authorization-code-issued"
    assert recorded["outcome_details"]["fault"] == "state_not_echoed"


@settings(derandomize=True, max_examples=25, deadline=None)
@given(state=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
       nonce=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_state_and_nonce_come_back_exactly(shared_session: dict[str, Any], state: str, nonce: str) -> None:
    session = shared_session
    auth = authorize(session, state=state, nonce=nonce)
    assert auth.params["state"] == state
    token = auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code, code_verifier=auth.verifier)
    header, payload, _ = token["id_token"].split(".")
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["nonce"] == nonce


# refusals ---------------------------------------------------------------------------------------------

def authorize_raw(http: httpx.Client, session: dict[str, Any], **changes: str | None) -> httpx.Response:
    """GET /authorize with a valid request changed as told (None removes a parameter)."""
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": session["credentials"]["client_id"], "redirect_uri": REDIRECT,
        "scope": "openid", "state": "s1", "nonce": "n1", "login_hint": practitioner(session)["national_id"],
        "code_challenge": create_s256_code_challenge("v" * 43), "code_challenge_method": "S256",
    } | changes
    return http.get(f"{idp_url(session)}/authorize", params={k: v for k, v in params.items() if v is not None})


@pytest.mark.parametrize(("changes", "code"), [
    ({"client_id": "cli_not-mine"}, "client-unknown"),
    ({"client_id": None}, "client-id-missing"),
    ({"redirect_uri": None}, "redirect-uri-missing"),
    ({"redirect_uri": "https://evil.example/cb"}, "redirect-uri-unregistered"),
    ({"redirect_uri": "http://192.168.1.10:8080/cb"}, "redirect-uri-unregistered"),
])
def test_authorize_problems_before_a_trusted_redirect(changes: dict[str, str | None], code: str,
                                                      new_session: Callable[..., dict[str, Any]],
                                                      client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session()
    r = authorize_raw(client, session, **changes)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code and "location" not in r.headers
    assert last(admin, session, "authorize")["outcome"] == code


@pytest.mark.parametrize(("changes", "error", "code"), [
    ({"scope": "profile"}, "invalid_scope", "scope-openid-missing"),
    ({"response_type": "token"}, "unsupported_response_type", "response-type-unsupported"),
    ({"nonce": None}, "invalid_request", "nonce-missing"),
    ({"code_challenge_method": "plain"}, "invalid_request", "pkce-method-unsupported"),
    ({"code_challenge": "short"}, "invalid_request", "pkce-challenge-invalid"),
    ({"login_hint": "899999999999"}, "access_denied", "login-hint-unknown"),
    ({"login_hint": None}, "invalid_request", "login-hint-missing"),
])
def test_authorize_errors_go_back_to_the_client(changes: dict[str, str | None], error: str, code: str,
                                                new_session: Callable[..., dict[str, Any]],
                                                client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session()
    r = authorize_raw(client, session, **changes)
    assert r.status_code == 302 and r.headers["location"].startswith(REDIRECT + "?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
    assert params["error"] == error and params["state"] == "s1" and "code" not in params
    recorded = last(admin, session, "authorize")
    assert recorded["outcome"] == code and recorded["outcome_details"]["error"] == error


def test_authorization_request_as_a_form_post(new_session: Callable[..., dict[str, Any]],
                                              client: httpx.Client) -> None:
    session = new_session()
    params = {"response_type": "code", "client_id": session["credentials"]["client_id"], "redirect_uri": REDIRECT,
              "scope": "openid", "state": "s1", "nonce": "n1", "login_hint": practitioner(session)["national_id"]}
    r = client.post(f"{idp_url(session)}/authorize", data=params)
    assert r.status_code == 302 and "code=" in r.headers["location"] and "state=s1" in r.headers["location"]


def test_a_checks_reads_a_form_posts_parameters_from_its_form_as_the_provider_does(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client, admin: httpx.Client) -> None:
    """The provider reads a POSTed authorization or token request from its form only; the checks read a parameter
    from the recorded query first. A software doing no PKCE put ``code_challenge_method=S256&code_challenge=…`` in the
    query of its POST /authorize (form without them: the provider issued a code bound to no challenge) and
    ``code_verifier=…`` in the query of its POST /token (redeemed without one): the PKCE check saw S256 and a
    verifier, and passed. A check reads what the provider acted on."""
    from conformity.checks.oidc import pkce_findings
    from conformity.checks.trace import Exchange, TraceView

    session = new_session()
    creds = session["credentials"]
    form = {"response_type": "code", "client_id": creds["client_id"], "redirect_uri": REDIRECT, "scope": "openid",
            "state": "s1", "nonce": "n1", "login_hint": practitioner(session)["national_id"]}
    decoy = {"code_challenge_method": "S256", "code_challenge": create_s256_code_challenge("v" * 43)}
    r = client.post(f"{idp_url(session)}/authorize", params=decoy, data=form)
    assert r.status_code == 302, r.text
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = client.post(f"{idp_url(session)}/token", params={"code_verifier": "v" * 43},
                    data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
                    auth=(creds["client_id"], creds["client_secret"]))
    assert r.status_code == 200, r.text  # the provider redeemed it without a verifier: the code had no challenge
    trace = admin.get(f"/admin/sessions/{session['session_id']}/trace")
    found = pkce_findings(TraceView(trace_payload(trace)), "idp")
    assert any("S256" in f.message for f in found), found
    assert any("code_verifier" in f.message for f in found), found
    # a GET's form body is not read (the provider reads a GET's query): nor by a check
    sent = {"method": "GET", "path": "/s/x/idp/authorize", "query": {"code_challenge_method": ["S256"]},
            "body": {"form": {"code_challenge_method": ["plain"]}}}
    assert Exchange({"seq": 1, "request": sent}).param("code_challenge_method") == "S256"


def test_repeated_parameters_are_refused(new_session: Callable[..., dict[str, Any]], client: httpx.Client,
                                         admin: httpx.Client) -> None:
    session = new_session()
    url = f"{idp_url(session)}/authorize"
    cid = session["credentials"]["client_id"]
    r = client.get(url, params=[("client_id", cid), ("client_id", cid), ("redirect_uri", REDIRECT)])
    assert r.status_code == 400 and r.json()["code"] == "request-param-repeated"
    r = client.get(url, params=[("client_id", cid), ("redirect_uri", REDIRECT), ("response_type", "code"),
                                ("scope", "openid"), ("scope", "openid profile"), ("state", "s"), ("nonce", "é")])
    assert r.status_code == 302
    params = parse_qs(urlsplit(r.headers["location"]).query)
    assert params["error"] == ["invalid_request"] and params["state"] == ["s"]
    assert last(admin, session, "authorize")["outcome"] == "request-param-repeated"


def test_two_authorization_headers_get_an_oauth_error(new_session: Callable[..., dict[str, Any]],
                                                      client: httpx.Client) -> None:
    """Two ``Authorization`` headers at the token endpoint: which client authenticated? Refused 400 before anything is
    redeemed, as every route refuses a single-valued header given twice (``header-repeated``), and in the shape an
    OAuth client reads (RFC 6749 §5.2: ``error`` ``invalid_request``), as a repeated parameter is."""
    session = new_session()
    auth = authorize(session)
    creds = base64.b64encode(f"{session['credentials']['client_id']}:{session['credentials']['client_secret']}"
                             .encode()).decode()
    body = {"grant_type": "authorization_code", "code": auth.code, "redirect_uri": REDIRECT,
            "code_verifier": auth.verifier}
    twice = [("Authorization", f"Basic {creds}"), ("Authorization", "Basic b3RoZXI6b3RoZXI=")]
    r = client.post(f"{idp_url(session)}/token", headers=twice, data=body)
    assert r.status_code == 400, r.text
    assert (r.json()["code"], r.json()["error"]) == ("header-repeated", "invalid_request")
    assert "Authorization" in r.json()["error_description"]
    r = client.post(f"{idp_url(session)}/token", headers={"Authorization": f"Basic {creds}"}, data=body)
    assert r.status_code == 200, r.text  # the code was not used up by the refused request


def token_error(exc: pytest.ExceptionInfo[OAuthError]) -> str:
    return str(exc.value.error)


def test_wrong_pkce_verifier_is_refused_and_uses_up_the_code(new_session: Callable[..., dict[str, Any]],
                                                              client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session()
    auth = authorize(session)
    creds = (session["credentials"]["client_id"], session["credentials"]["client_secret"])
    body = {"grant_type": "authorization_code", "code": auth.code, "redirect_uri": REDIRECT}
    r = client.post(f"{idp_url(session)}/token", auth=creds, data=body | {"code_verifier": generate_token(48)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.headers["cache-control"] == "no-store"
    assert last(admin, session, "token")["outcome"] == "pkce-verifier-mismatch"
    r = client.post(f"{idp_url(session)}/token", auth=creds, data=body | {"code_verifier": auth.verifier})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert last(admin, session, "token")["outcome"] == "code-reused"


def test_missing_pkce_verifier_is_refused(new_session: Callable[..., dict[str, Any]], admin: httpx.Client) -> None:
    session = new_session()
    auth = authorize(session)
    with pytest.raises(OAuthError) as caught:
        auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code)
    assert token_error(caught) == "invalid_grant"
    assert last(admin, session, "token")["outcome"] == "pkce-verifier-missing"


def test_code_reuse_is_refused_and_revokes_the_token(new_session: Callable[..., dict[str, Any]],
                                                     client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session()
    auth, token = login(session)
    assert client.get(f"{idp_url(session)}/userinfo",
                      headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 200
    with pytest.raises(OAuthError) as caught:
        auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code, code_verifier=auth.verifier)
    assert token_error(caught) == "invalid_grant"
    assert last(admin, session, "token")["outcome"] == "code-reused"
    r = client.get(f"{idp_url(session)}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 401 and r.json()["code"] == "token-invalid"


def test_code_reuse_revokes_the_refresh_token_it_gave_too(new_session: Callable[..., dict[str, Any]],
                                                          client: httpx.Client) -> None:
    """RFC 6749 §4.1.2: a code used twice revokes *all* tokens issued on it. The refresh token outlived the reuse,
    and minted fresh access tokens after it."""
    session = new_session()
    auth, token = login(session)
    creds = (session["credentials"]["client_id"], session["credentials"]["client_secret"])
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    assert client.post(f"{idp_url(session)}/token", auth=creds, data=refresh).status_code == 200
    with pytest.raises(OAuthError):
        auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code, code_verifier=auth.verifier)
    r = client.post(f"{idp_url(session)}/token", auth=creds, data=refresh)
    assert r.status_code == 400 and r.json()["code"] == "refresh-token-invalid", r.text


def test_code_reuse_revokes_the_access_tokens_its_refresh_token_minted(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client) -> None:
    """RFC 6749 §4.1.2, *all* tokens issued on the code: an access token minted by the code's refresh token before
    the reuse lived on until it expired (tokens carried no origin to revoke by)."""
    session = new_session()
    auth, token = login(session)
    creds = (session["credentials"]["client_id"], session["credentials"]["client_secret"])
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    minted = [client.post(f"{idp_url(session)}/token", auth=creds, data=refresh).json()["access_token"]
              for _ in range(2)]
    for access in minted:
        assert client.get(f"{idp_url(session)}/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    with pytest.raises(OAuthError):
        auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code, code_verifier=auth.verifier)
    for access in [token["access_token"], *minted]:
        r = client.get(f"{idp_url(session)}/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert r.status_code == 401 and r.json()["code"] == "token-invalid", r.text


def test_a_refresh_racing_the_code_reuse_mints_nothing(new_session: Callable[..., dict[str, Any]],
                                                       client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh that read its refresh token just before the code was presented again (another worker) finds the
    code reused when it lists its new access token: refused, nothing minted lives."""
    session = new_session()
    auth, token = login(session)
    creds = (session["credentials"]["client_id"], session["credentials"]["client_secret"])
    get_token = Store.get_token
    reused: list[str] = []

    def reading(store: Store, value: str) -> dict[str, Any] | None:
        found = get_token(store, value)
        if value == token["refresh_token"] and not reused:  # the code presented again right after this read
            request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(store=store)))
            with pytest.raises(idp.OAuthError) as caught:
                idp._take_code(request, {"id": session["session_id"]}, auth.code, [])  # type: ignore[arg-type]
            reused.append(caught.value.code)
        return found

    monkeypatch.setattr(Store, "get_token", reading)
    r = client.post(f"{idp_url(session)}/token", auth=creds,
                    data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    monkeypatch.undo()
    assert reused == ["code-reused"]
    assert r.status_code == 400 and r.json()["code"] == "refresh-token-invalid", r.text
    again = client.post(f"{idp_url(session)}/token", auth=creds,
                        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert again.status_code == 400 and again.json()["code"] == "refresh-token-invalid"


def test_a_code_presented_again_while_it_is_redeemed_leaves_no_living_token(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window stop 38 noticed: the code marked used, its tokens not stored yet — a second presentation then (by
    another worker) found nothing to revoke, and the first redemption went on to store and hand out tokens that
    outlived the reuse. Played here by presenting the code again at the very moment the access token is stored."""
    session = new_session()
    auth = authorize(session)
    put_token = Store.put_token
    reused: list[str] = []

    def racing(store: Store, token: str, kind: str, *args: Any, **kwargs: Any) -> None:
        if kind == "access" and not reused:  # another worker presents the code now, before the tokens exist
            request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(store=store)))
            with pytest.raises(idp.OAuthError) as caught:
                idp._take_code(request, {"id": session["session_id"]}, auth.code, [])  # type: ignore[arg-type]
            reused.append(caught.value.code)
        put_token(store, token, kind, *args, **kwargs)

    monkeypatch.setattr(Store, "put_token", racing)
    creds = (session["credentials"]["client_id"], session["credentials"]["client_secret"])
    r = client.post(f"{idp_url(session)}/token", auth=creds, data={
        "grant_type": "authorization_code", "code": auth.code, "redirect_uri": REDIRECT,
        "code_verifier": auth.verifier})
    monkeypatch.undo()
    assert reused == ["code-reused"]
    assert r.status_code == 400 and r.json()["code"] == "code-reused", r.text


def test_a_presentation_losing_the_take_to_the_redemption_leaves_no_living_token(
        new_session: Callable[..., dict[str, Any]], client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: two presentations of one code at once (two workers, two threads) both read it unused; the one whose
    take came second was refused "being redeemed by another request" but marked nothing, so the winner stored and
    handed out tokens that outlived the reuse. Played with two threads: the other presentation reads the code just
    before the redemption takes it (when nothing keeps it from reading then), and takes it just after."""
    session = new_session()
    auth = authorize(session)
    take_token, get_token = Store.take_token, Store.get_token
    other_read, redemption_took = threading.Event(), threading.Event()
    refused: list[str] = []

    def other(store: Store) -> None:
        request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(store=store)))
        try:
            idp._take_code(request, {"id": session["session_id"]}, auth.code, [])  # type: ignore[arg-type]
        except idp.OAuthError as exc:
            refused.append(exc.code)

    def reading(store: Store, token: str) -> dict[str, Any] | None:
        found = get_token(store, token)
        if token == auth.code and threading.current_thread().name == "other-presentation":
            other_read.set()
            redemption_took.wait(2)
        return found

    presenter: list[threading.Thread] = []

    def taking(store: Store, token: str) -> dict[str, Any] | None:
        if token == auth.code and not presenter:
            presenter.append(threading.Thread(target=other, args=(store,), name="other-presentation"))
            presenter[0].start()
            other_read.wait(1)  # the other presentation reads now, if it may
            taken = take_token(store, token)
            redemption_took.set()
            return taken
        return take_token(store, token)

    monkeypatch.setattr(Store, "get_token", reading)
    monkeypatch.setattr(Store, "take_token", taking)
    creds = (session["credentials"]["client_id"], session["credentials"]["client_secret"])
    r = client.post(f"{idp_url(session)}/token", auth=creds, data={
        "grant_type": "authorization_code", "code": auth.code, "redirect_uri": REDIRECT,
        "code_verifier": auth.verifier})
    presenter[0].join(5)
    monkeypatch.undo()
    assert refused == ["code-reused"]
    if r.status_code == 200:  # the redemption answered first: its tokens are revoked since
        tokens = r.json()
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        assert client.post(f"{idp_url(session)}/token", auth=creds, data=refresh).status_code == 400
        found = client.get(f"{idp_url(session)}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert found.status_code == 401, found.text
    else:
        assert r.status_code == 400 and r.json()["code"] == "code-reused", r.text


@pytest.mark.parametrize(("auth_method", "code"), [("client_secret_basic", "client-secret-invalid"),
                                                   ("client_secret_post", "client-secret-invalid")])
def test_wrong_client_secret_is_refused(auth_method: str, code: str, new_session: Callable[..., dict[str, Any]],
                                        admin: httpx.Client) -> None:
    session = new_session()
    auth = authorize(session)
    wrong = oidc_client(session, auth_method=auth_method, client_secret="not-the-secret")
    with pytest.raises(OAuthError) as caught:
        wrong.fetch_token(f"{idp_url(session)}/token", code=auth.code, code_verifier=auth.verifier)
    assert token_error(caught) == "invalid_client"
    recorded = last(admin, session, "token")
    assert recorded["outcome"] == code and recorded["response"]["status"] == 401
    assert recorded["response"]["headers"]["www-authenticate"].startswith("Basic")
    # the code was not used up by an unauthenticated attempt
    assert auth.client.fetch_token(f"{idp_url(session)}/token", code=auth.code, code_verifier=auth.verifier)


def test_client_of_another_session_is_refused(new_session: Callable[..., dict[str, Any]], admin: httpx.Client) -> None:
    mine, other = new_session(), new_session()
    auth = authorize(mine)
    stranger = oidc_client(mine, client_id=other["credentials"]["client_id"],
                           client_secret=other["credentials"]["client_secret"])
    with pytest.raises(OAuthError) as caught:
        stranger.fetch_token(f"{idp_url(mine)}/token", code=auth.code, code_verifier=auth.verifier)
    assert token_error(caught) == "invalid_client"
    assert last(admin, mine, "token")["outcome"] == "client-unknown"
    # and a code of one session cannot be redeemed at another session's endpoint, even by its own client
    with pytest.raises(OAuthError) as caught:
        oidc_client(other).fetch_token(f"{idp_url(other)}/token", code=auth.code, code_verifier=auth.verifier)
    assert token_error(caught) == "invalid_grant"
    assert last(admin, other, "token")["outcome"] == "code-other-session"


@pytest.mark.parametrize(("form", "status", "error", "code"), [
    ({"grant_type": "password"}, 400, "unsupported_grant_type", "grant-type-unsupported"),
    ({"code": "forged-code"}, 400, "invalid_grant", "code-unknown"),
    ({"redirect_uri": "http://127.0.0.1:9/other"}, 400, "invalid_grant", "redirect-uri-mismatch"),
])
def test_token_request_refusals(form: dict[str, str], status: int, error: str, code: str,
                                new_session: Callable[..., dict[str, Any]], client: httpx.Client,
                                admin: httpx.Client) -> None:
    session = new_session()
    auth = authorize(session)
    body = {"grant_type": "authorization_code", "code": auth.code, "redirect_uri": REDIRECT,
            "code_verifier": auth.verifier} | form
    creds = session["credentials"]
    r = client.post(f"{idp_url(session)}/token", data=body, auth=(creds["client_id"], creds["client_secret"]))
    assert r.status_code == status and r.json()["error"] == error and r.json()["code"] == code
    assert last(admin, session, "token")["outcome"] == code


def test_token_request_without_client_authentication(new_session: Callable[..., dict[str, Any]],
                                                     client: httpx.Client, admin: httpx.Client) -> None:
    session = new_session()
    r = client.post(f"{idp_url(session)}/token", data={"grant_type": "authorization_code", "code": "x",
                                                       "client_id": session["credentials"]["client_id"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert last(admin, session, "token")["outcome"] == "client-auth-missing"
    r = client.post(f"{idp_url(session)}/token", json={"grant_type": "authorization_code"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert last(admin, session, "token")["outcome"] == "token-request-not-form"


# userinfo refusals --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def expiring_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A second sandbox whose access tokens expire as soon as issued."""
    config = SandboxConfig(data_dir=tmp_path_factory.mktemp("expiring"), admin_token=ADMIN_TOKEN, access_token_ttl=0)
    with start_in_thread(config) as running:
        yield running


def test_userinfo_refusals(new_session: Callable[..., dict[str, Any]], client: httpx.Client,
                           admin: httpx.Client, expiring_sandbox: RunningSandbox) -> None:
    session, other = new_session(), new_session()
    _, other_token = login(other)
    url = f"{idp_url(session)}/userinfo"
    cases = [
        ({}, 401, "token-missing"),
        ({"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}, 401, "token-invalid"),
        ({"Authorization": f"Bearer {other_token['access_token']}"}, 403, "token-other-session"),
        ({"Authorization": f"Bearer {session['credentials']['session_token']}"}, 401, "token-wrong-kind"),
    ]
    for headers, status, code in cases:
        r = client.get(url, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code)
        assert "Bearer" in r.headers.get("www-authenticate", "") or status == 403
        assert last(admin, session, "userinfo")["outcome"] == code

    with httpx.Client(base_url=expiring_sandbox.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as adm:
        expiring = adm.post("/admin/sessions", json={"seed": 2}).json()
        _, token = login(expiring)
        assert token["expires_in"] == 0
        r = httpx.get(f"{idp_url(expiring)}/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert r.status_code == 401 and r.json()["code"] == "token-expired"
        assert last(adm, expiring, "userinfo")["outcome"] == "token-expired"
