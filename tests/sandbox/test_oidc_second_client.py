"""The identity provider with a second client stack the reference vendor does not use: requests-oauthlib + PyJWT.

The reference relying party is Authlib's httpx client with joserfc; here the whole code flow (discovery,
authorization with PKCE, token with client_secret_basic, ID token and access token verified by PyJWT
against the JWKS, userinfo) runs with other libraries, for both algorithms a client may register.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from requests_oauthlib import OAuth2Session

from sandbox.oidc_keys import ALGS

REDIRECT = "http://127.0.0.1:8765/callback"


def half_hash(value: str) -> str:
    """OpenID Connect Core §3.1.3.6: the left half of SHA-256 (RS256 and ES256), base64url without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()[:16]).decode().rstrip("=")


def login(session: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """The code flow with requests-oauthlib: (discovery, nonce, code, token response)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the test sandbox serves plain HTTP on loopback
    discovery = httpx.get(session["endpoints"]["idp"] + "/.well-known/openid-configuration").json()
    creds = session["credentials"]
    oauth = OAuth2Session(creds["client_id"], redirect_uri=REDIRECT, scope=["openid", "profile"], pkce="S256")
    nonce = secrets.token_urlsafe(24)
    url, state = oauth.authorization_url(discovery["authorization_endpoint"], nonce=nonce,
                                         login_hint=session["fixtures"]["practitioners"][0]["national_id"])
    r = oauth.get(url, allow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert f"state={state}" in location
    code = location.split("code=", 1)[1].split("&", 1)[0]
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=location,
                              client_secret=creds["client_secret"])  # client_secret_basic; state checked by oauthlib
    userinfo = oauth.get(discovery["userinfo_endpoint"])
    assert userinfo.status_code == 200, userinfo.text
    return discovery, nonce, code, dict(token) | {"userinfo": userinfo.json()}


@pytest.mark.parametrize("alg", ALGS)
def test_code_flow_with_requests_oauthlib_and_pyjwt(alg: str, new_session: Callable[..., dict[str, Any]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    session = new_session(seed=21, id_token_signed_response_alg=alg)
    discovery, nonce, code, token = login(session, monkeypatch)
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]  # OpenID Connect Discovery §3
    keys = jwt.PyJWKClient(discovery["jwks_uri"])
    signing_key = keys.get_signing_key_from_jwt(token["id_token"])
    claims = jwt.decode(token["id_token"], signing_key.key, algorithms=discovery["id_token_signing_alg_values_supported"],
                        audience=session["credentials"]["client_id"], issuer=discovery["issuer"],
                        options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    assert jwt.get_unverified_header(token["id_token"])["alg"] == alg
    assert claims["nonce"] == nonce and claims["sub"] == token["userinfo"]["sub"]
    assert claims["at_hash"] == half_hash(token["access_token"]) and claims["c_hash"] == half_hash(code)
    access = jwt.decode(token["access_token"], keys.get_signing_key_from_jwt(token["access_token"]).key,
                        algorithms=[alg], audience=session["endpoints"]["insi"], issuer=discovery["issuer"])
    assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    assert session["endpoints"]["dmp"] in access["aud"] and access["client_id"] == session["credentials"]["client_id"]


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("forgery", ["bad_signature", "unknown_kid", "alg_none", "hs256_public_key", "wrong_audience",
                                     "expired", "kid_absent"])
def test_pyjwt_refuses_forgeries_of_both_algorithms(alg: str, forgery: str, new_session: Callable[..., dict[str, Any]],
                                                    admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    session = new_session(seed=22, id_token_signed_response_alg=alg)
    r = admin.put(f"/admin/sessions/{session['session_id']}/faults", json={"idp": {"id_token": forgery}})
    assert r.status_code == 200, r.text
    discovery, _, _, token = login(session, monkeypatch)
    published = jwt.PyJWKSet.from_json(httpx.get(discovery["jwks_uri"]).text)
    [key] = published.keys

    def verify() -> dict[str, Any]:
        return jwt.decode(token["id_token"], key.key, algorithms=discovery["id_token_signing_alg_values_supported"],
                          audience=session["credentials"]["client_id"], issuer=discovery["issuer"])

    header = jwt.get_unverified_header(token["id_token"])
    if forgery == "kid_absent":  # a valid token: the JWKS holds one key
        assert "kid" not in header and verify()["sub"]
        return
    if forgery == "unknown_kid":
        assert header["kid"] != key.key_id
        with pytest.raises(jwt.InvalidSignatureError):
            verify()
        return
    with pytest.raises(jwt.InvalidTokenError):
        verify()


SIGNATURE_FORGERIES = {"bad_signature", "unknown_kid", "alg_none", "hs256_public_key"}


@pytest.mark.parametrize("alg", ALGS)
def test_every_id_token_fault_works_with_both_algorithms(alg: str, tmp_path: Any) -> None:
    """Each forgery of the RP certification list, signed by the provider's key of either algorithm: signature
    forgeries do not verify against the published key, claim forgeries verify and carry the forged claims."""
    from sandbox.faults import ID_TOKEN_FAULTS
    from sandbox.oidc_keys import forge_claims, load_or_create, sign_id_token

    keys = load_or_create(tmp_path / "idp.json").for_alg(alg)
    published = jwt.PyJWKSet.from_dict(keys.public_jwks()).keys[0].key
    rotated = jwt.PyJWKSet.from_dict(keys.public_jwks(rotated=True)).keys[0].key
    claims = {"iss": "https://idp", "sub": "810000000001", "aud": "cli", "exp": 4102444800, "iat": 1700000000,
              "auth_time": 1700000000, "nonce": "n", "acr": "eidas1", "at_hash": "a", "c_hash": "c"}
    for forgery in ID_TOKEN_FAULTS:
        token = sign_id_token(keys, claims, forgery)
        header = jwt.get_unverified_header(token)
        assert header["alg"] == {"alg_none": "none", "hs256_public_key": "HS256"}.get(forgery, alg), forgery
        if forgery in SIGNATURE_FORGERIES:
            with pytest.raises(jwt.InvalidTokenError):
                jwt.decode(token, published, algorithms=[alg], options={"verify_aud": False, "verify_exp": False})
            continue
        got = jwt.decode(token, published, algorithms=[alg], options={"verify_signature": True, "verify_aud": False,
                                                                       "verify_exp": False, "verify_iat": False,
                                                                       "verify_nbf": False})
        assert got == forge_claims(claims, forgery), forgery
    after_rotation = sign_id_token(keys, claims, rotated=True)
    assert jwt.decode(after_rotation, rotated, algorithms=[alg], audience="cli")["sub"] == claims["sub"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(after_rotation, published, algorithms=[alg], audience="cli")
