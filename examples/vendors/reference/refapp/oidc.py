"""Practitioner login with OpenID Connect: code flow, PKCE S256, state, nonce, full ID token validation."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import MismatchingStateException, OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from refapp import defects
from refapp.context import Context

REDIRECT_URI = "http://127.0.0.1:8765/oidc/callback"
ALGORITHMS = ["ES256", "RS256"]
SKIP_NONCE = defects.register("skip-nonce-check", "does not compare the ID token nonce with the one it sent")
ACCEPT_ALG_NONE = defects.register("accept-alg-none", "accepts unsigned ID tokens (alg none)")


class LoginRefused(Exception):
    """The login must not open a session: why."""


@dataclass
class PractitionerSession:
    national_id: str
    access_token: str
    id_claims: dict[str, Any]
    userinfo: dict[str, Any]
    opened: float


class OIDCClient:
    """An OpenID Connect relying party for the session's identity provider."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.issuer = ctx.endpoints["idp"].rstrip("/")
        self._metadata: dict[str, Any] | None = None
        self._jwks: KeySet | None = None

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            with self.ctx.http() as http:
                r = http.get(f"{self.issuer}/.well-known/openid-configuration")
                r.raise_for_status()
                meta = r.json()
            if meta.get("issuer") != self.issuer:
                raise LoginRefused(f"discovery issuer {meta.get('issuer')!r} is not {self.issuer!r}")
            self._metadata = meta
        return self._metadata

    def jwks(self, refresh: bool = False) -> KeySet:
        if self._jwks is None or refresh:
            with self.ctx.http() as http:
                r = http.get(self.metadata()["jwks_uri"])
                r.raise_for_status()
                self._jwks = KeySet.import_key_set(r.json())
        return self._jwks

    def login(self, login_hint: str) -> PractitionerSession:
        meta = self.metadata()
        client = OAuth2Client(client_id=self.ctx.client_id, client_secret=self.ctx.client_secret,
                              scope="openid profile", redirect_uri=REDIRECT_URI, code_challenge_method="S256",
                              verify=self.ctx.verify, timeout=15)
        with client:
            nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
            url, state = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce,
                                                         login_hint=login_hint, code_verifier=verifier)
            r = client.request("GET", url, withhold_token=True, follow_redirects=False)
            if r.status_code not in (302, 303) or "location" not in r.headers:
                raise LoginRefused(f"authorization endpoint answered {r.status_code}, not a redirect")
            location = r.headers["location"]
            query = parse_qs(urlsplit(location).query)
            if "error" in query:
                raise LoginRefused(f"authorization refused: {query['error'][0]}")
            if query.get("iss", [self.issuer])[0] != self.issuer:
                raise LoginRefused("authorization response from another issuer")
            try:
                token = client.fetch_token(meta["token_endpoint"], authorization_response=location, state=state,
                                           code_verifier=verifier)
            except MismatchingStateException as exc:
                raise LoginRefused("state in the authorization response is not the one sent") from exc
            except OAuth2Error as exc:
                raise LoginRefused(f"token request refused: {exc.error}") from exc
        claims = self.validate_id_token(token.get("id_token", ""), nonce)
        with self.ctx.http() as http:
            r = http.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
            if r.status_code != 200:
                raise LoginRefused(f"userinfo answered {r.status_code}")
            userinfo = r.json()
        if userinfo.get("sub") != claims["sub"]:
            raise LoginRefused("userinfo subject differs from the ID token subject")
        return PractitionerSession(claims["sub"], token["access_token"], claims, userinfo, time.time())

    def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Signature (allowed algorithms, known key), issuer, audience, expiry and nonce."""
        if not id_token:
            raise LoginRefused("no ID token in the token response")
        algorithms = ALGORITHMS + (["none"] if defects.active(ACCEPT_ALG_NONE) else [])
        try:
            try:
                token = jwt.decode(id_token, self.jwks(), algorithms=algorithms)
            except (ValueError, JoseError) as exc:
                if "kid" not in str(exc).lower() and "key" not in str(exc).lower():
                    raise
                token = jwt.decode(id_token, self.jwks(refresh=True), algorithms=algorithms)
            rules: dict[str, Any] = {"iss": {"essential": True, "value": self.issuer},
                                     "aud": {"essential": True, "value": self.ctx.client_id},
                                     "exp": {"essential": True}, "sub": {"essential": True}}
            if not defects.active(SKIP_NONCE):
                rules["nonce"] = {"essential": True, "value": nonce}
            JWTClaimsRegistry(leeway=30, **rules).validate(token.claims)
        except (ValueError, JoseError) as exc:
            raise LoginRefused(f"ID token refused: {type(exc).__name__}: {exc}") from exc
        return dict(token.claims)
