"""Professional login with the ProConnect-like provider: code flow, PKCE S256, state and nonce of 43 characters,
the ID token verified (signature, issuer, audience, expiry, nonce, eIDAS level) before userinfo is read."""

from __future__ import annotations

import secrets
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import MismatchingStateException, OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from homeapp import defects
from homeapp.context import App, ServiceError

REDIRECT_URI = "http://127.0.0.1:8766/proconnect/callback"
ACR_ACCEPTED = ("eidas1", "eidas2", "eidas3")
SKEW = 60
SHORT_STATE = defects.register("short-state", "sends a 16-character state 'to keep URLs short'")
SKIP_NONCE = defects.register("skip-nonce-check", "does not compare the ID token's nonce with the one it sent")
NO_PKCE = defects.register("no-pkce", "does not use PKCE ('a confidential client does not need it')")
SKIP_ACR = defects.register("skip-acr-check", "does not check the ID token's acr (eIDAS level)")
LOGS_TOKEN = defects.register("logs-access-token", "writes the access token on its error output for debugging")


class LoginRefused(Exception):
    """The login must not open a session: why."""


def login(app: App, login_hint: str) -> dict[str, Any]:
    issuer = app.endpoints["proconnect"].rstrip("/")
    try:
        with app.http() as http:
            meta = http.get(f"{issuer}/.well-known/openid-configuration").raise_for_status().json()
            if meta.get("issuer") != issuer:
                raise LoginRefused("discovery names another issuer")
            keys = KeySet.import_key_set(http.get(meta["jwks_uri"]).raise_for_status().json())
        state = secrets.token_urlsafe(12) if defects.active(SHORT_STATE) else secrets.token_urlsafe(32)
        nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        pkce: dict[str, Any] = {} if defects.active(NO_PKCE) else {"code_verifier": verifier}
        client = OAuth2Client(
            client_id=app.client_id,
            client_secret=app.client_secret,
            scope="openid given_name usual_name email uid siret",
            redirect_uri=REDIRECT_URI,
            code_challenge_method=None if defects.active(NO_PKCE) else "S256",
            verify=app.verify,
            timeout=15,
            headers={"User-Agent": app.user_agent},
        )
        with client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"],
                state=state,
                nonce=nonce,
                login_hint=login_hint,
                acr_values="eidas1",
                **pkce,
            )
            r = client.request("GET", url, withhold_token=True, follow_redirects=False)
            location = r.headers.get("location", "")
            query = parse_qs(urlsplit(location).query)
            if r.status_code not in (302, 303) or "error" in query:
                raise LoginRefused(f"authorization refused: {query.get('error', [r.status_code])[0]}")
            try:
                token = client.fetch_token(meta["token_endpoint"], authorization_response=location, state=state, **pkce)
            except MismatchingStateException as exc:
                raise LoginRefused("the callback's state is not the one sent") from exc
            except OAuth2Error as exc:
                raise LoginRefused(f"token request refused: {exc.error}") from exc
        claims = verify_id_token(app, token.get("id_token", ""), keys, meta, issuer, nonce)
        if defects.active(LOGS_TOKEN):
            print(f"debug: access token {token['access_token']}", file=sys.stderr)
        with app.http() as http:
            r = http.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
            if r.status_code != 200:
                raise LoginRefused(f"userinfo answered {r.status_code}")
            userinfo = r.json()
    except LoginRefused as exc:
        app.access_token, app.professional = "", None
        return {"authenticated": False, "error": str(exc)}
    except (httpx.HTTPError, ServiceError) as exc:
        app.access_token, app.professional = "", None
        return {"authenticated": False, "error": f"{type(exc).__name__}: {exc}"}
    if userinfo.get("sub") != claims["sub"]:
        return {"authenticated": False, "error": "userinfo's subject differs from the ID token's"}
    known: dict[str, Any] = next((p for p in app.fixtures.get("professionals", []) if p.get("email") == login_hint), {})
    app.access_token = token["access_token"]
    app.professional = dict(known) | {"uid": userinfo.get("uid"), "siret": userinfo.get("siret")}
    return {"authenticated": True, "uid": userinfo.get("uid"), "siret": userinfo.get("siret")}


def verify_id_token(
    app: App, id_token: str, keys: KeySet, meta: dict[str, Any], issuer: str, nonce: str
) -> dict[str, Any]:
    if not id_token:
        raise LoginRefused("no ID token")
    algorithms = [a for a in meta.get("id_token_signing_alg_values_supported", []) if a != "none"]
    rules: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": app.client_id},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
    }
    if not defects.active(SKIP_NONCE):
        rules["nonce"] = {"essential": True, "value": nonce}
    if not defects.active(SKIP_ACR):
        rules["acr"] = {"essential": True, "values": list(ACR_ACCEPTED)}
    try:
        token = jwt.decode(id_token, keys, algorithms=algorithms)
        JWTClaimsRegistry(leeway=SKEW, **rules).validate(token.claims)
    except (ValueError, JoseError) as exc:
        raise LoginRefused(f"ID token refused: {type(exc).__name__}: {exc}") from exc
    return dict(token.claims)
