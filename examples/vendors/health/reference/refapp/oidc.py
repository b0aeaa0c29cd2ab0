"""Practitioner login with OpenID Connect: code flow, PKCE S256, state, nonce, full ID token validation.

What RefApp checks before it opens a session (PRACAUTH, SECURITY-004): the authorization response
carries the state it sent and comes from its issuer; the ID token is signed with an algorithm the
provider lists (never ``none``) by a key of the provider's JWKS (refetched at most once every 5
minutes for an unknown kid), and has the right iss, aud (azp when several), exp/iat (60 s skew),
nonce, acr ``eidas1`` and an auth_time at most 12 hours old; userinfo has the same sub.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import MismatchingStateException, OAuth2Error
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from refapp import defects, logs
from refapp.context import Context

REDIRECT_URI = "http://127.0.0.1:8765/oidc/callback"
ACR = "eidas1"
MAX_AUTH_AGE = 43200  # seconds (PRACAUTH-017)
SKEW = 60  # seconds of clock skew allowed (PRACAUTH-011)
JWKS_REFRESH_INTERVAL = 300  # seconds between two refetches for an unknown kid (PRACAUTH-008)
SKIP_NONCE = defects.register("skip-nonce-check", "does not compare the ID token nonce with the one it sent")
ACCEPT_ALG_NONE = defects.register("accept-alg-none", "accepts unsigned ID tokens (alg none)")
SKIP_STATE = defects.register("skip-state-check", "redeems the code without comparing the callback's state")
NO_REFETCH_LIMIT = defects.register("no-jwks-rate-limit",
                                    "fetches the JWKS again for every unknown kid (no 5-minute limit)")
NO_REFETCH = defects.register("no-jwks-refetch", "never fetches the JWKS again: a token signed by the provider's new "
                                                 "key after a rotation is refused")
SKIP_HASHES = defects.register("skip-token-hash-check", "does not compare the ID token's at_hash and c_hash with the "
                                                        "access token and code it received")
TRUST_DISCOVERY = defects.register("trust-discovery-issuer", "takes the issuer from the discovery document instead "
                                                             "of comparing it with the configured one")
JSON_USERINFO_ONLY = defects.register("json-userinfo-only", "reads userinfo as JSON only: a signed (application/jwt) "
                                                            "answer is refused")


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
        self._jwks_refetched_at: float | None = None

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once), whose issuer must be the configured one."""
        if self._metadata is None:
            with self.ctx.http() as http:
                r = http.get(f"{self.issuer}/.well-known/openid-configuration")
                r.raise_for_status()
                meta = r.json()
            if meta.get("issuer") != self.issuer and not defects.active(TRUST_DISCOVERY):
                raise LoginRefused(f"discovery issuer {meta.get('issuer')!r} is not {self.issuer!r}")
            self._metadata = meta
        return self._metadata

    def algorithms(self) -> list[str]:
        """The signing algorithms the provider lists, never ``none`` (unless the defect is on)."""
        listed = [a for a in self.metadata().get("id_token_signing_alg_values_supported", []) if a != "none"]
        return listed + (["none"] if defects.active(ACCEPT_ALG_NONE) else [])

    def jwks(self) -> KeySet:
        if self._jwks is None:
            self._jwks = self._fetch_jwks()
        return self._jwks

    def refetch_jwks(self) -> bool:
        """Fetch the JWKS again for an unknown kid, at most once every 5 minutes; whether it did."""
        now = time.monotonic()
        recent = self._jwks_refetched_at is not None and now - self._jwks_refetched_at < JWKS_REFRESH_INTERVAL
        if (recent and not defects.active(NO_REFETCH_LIMIT)) or defects.active(NO_REFETCH):
            return False
        self._jwks_refetched_at = now
        self._jwks = self._fetch_jwks()
        return True

    def _fetch_jwks(self) -> KeySet:
        with self.ctx.http() as http:
            r = http.get(self.metadata()["jwks_uri"])
            r.raise_for_status()
            return KeySet.import_key_set(r.json())

    def login(self, login_hint: str) -> PractitionerSession:
        meta = self.metadata()
        client = OAuth2Client(client_id=self.ctx.client_id, client_secret=self.ctx.client_secret,
                              scope="openid profile", redirect_uri=REDIRECT_URI, code_challenge_method="S256",
                              verify=self.ctx.verify, timeout=15,
                              event_hooks={"request": [logs.log_request], "response": [logs.log_response]})
        with client:
            nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
            url, state = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce,
                                                         login_hint=login_hint, code_verifier=verifier,
                                                         acr_values=ACR, max_age=str(MAX_AUTH_AGE))
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
                expected_state = None if defects.active(SKIP_STATE) else state
                token = client.fetch_token(meta["token_endpoint"], authorization_response=location,
                                           state=expected_state, code_verifier=verifier)
            except MismatchingStateException as exc:
                raise LoginRefused("state in the authorization response is not the one sent") from exc
            except OAuth2Error as exc:
                raise LoginRefused(f"token request refused: {exc.error}") from exc
        code = parse_qs(urlsplit(location).query).get("code", [""])[0]
        claims = self.validate_id_token(token.get("id_token", ""), nonce, token["access_token"], code)
        with self.ctx.http() as http:
            r = http.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
            if r.status_code != 200:
                raise LoginRefused(f"userinfo answered {r.status_code}")
            userinfo = self.userinfo(r)
        if userinfo.get("sub") != claims["sub"]:
            raise LoginRefused("userinfo subject differs from the ID token subject")
        national_id = userinfo.get("SubjectNameID") or userinfo["sub"]
        return PractitionerSession(national_id, token["access_token"], claims, userinfo, time.time())

    def decode(self, id_token: str) -> jwt.Token:
        """The ID token with its signature verified by a key of the JWKS (one refetch for an unknown kid)."""
        try:
            return jwt.decode(id_token, self.jwks(), algorithms=self.algorithms())
        except (ValueError, JoseError) as exc:
            if "kid" not in str(exc).lower() and "key" not in str(exc).lower():
                raise
            if not self.refetch_jwks():
                raise
            return jwt.decode(id_token, self.jwks(), algorithms=self.algorithms())

    def userinfo(self, r: httpx.Response) -> dict[str, Any]:
        """The userinfo claims: JSON, or a JWT signed by the provider (verified, its iss and aud checked)."""
        media = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/jwt":
            return dict(r.json())
        if defects.active(JSON_USERINFO_ONLY):
            raise LoginRefused("userinfo answer is not JSON")
        try:
            token = self.decode(r.text)
            JWTClaimsRegistry(iss={"essential": True, "value": self.issuer},
                              aud={"essential": True, "value": self.ctx.client_id}).validate(token.claims)
        except (ValueError, JoseError) as exc:
            raise LoginRefused(f"signed userinfo refused: {type(exc).__name__}: {exc}") from exc
        return dict(token.claims)

    def validate_id_token(self, id_token: str, nonce: str, access_token: str = "", code: str = "") -> dict[str, Any]:
        """Signature (listed algorithms, known key), iss, sub, aud/azp, exp/iat/nbf, nonce, acr, auth_time, and the
        at_hash and c_hash of the access token and code received with it."""
        if not id_token:
            raise LoginRefused("no ID token in the token response")
        try:
            token = self.decode(id_token)
            rules: dict[str, Any] = {"iss": {"essential": True, "value": self.issuer},
                                     "aud": {"essential": True, "value": self.ctx.client_id},
                                     "exp": {"essential": True}, "iat": {"essential": True},
                                     "sub": {"essential": True},
                                     "acr": {"essential": True, "value": ACR},
                                     "auth_time": {"essential": True}}
            if not defects.active(SKIP_NONCE):
                rules["nonce"] = {"essential": True, "value": nonce}
            JWTClaimsRegistry(leeway=SKEW, **rules).validate(token.claims)
        except (ValueError, JoseError) as exc:
            raise LoginRefused(f"ID token refused: {type(exc).__name__}: {exc}") from exc
        claims = dict(token.claims)
        now = time.time()
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.ctx.client_id:
            raise LoginRefused("ID token refused: several audiences and azp is not this client")
        if not isinstance(claims.get("iat"), (int, float)) or claims["iat"] > now + SKEW:
            raise LoginRefused("ID token refused: iat missing or in the future")
        if not isinstance(claims["auth_time"], (int, float)) or now - claims["auth_time"] > MAX_AUTH_AGE + SKEW:
            raise LoginRefused("ID token refused: the authentication is more than 12 hours old")
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + SKEW:
            raise LoginRefused("ID token refused: not valid before a time in the future (nbf)")
        alg = str(token.header.get("alg", ""))
        for name, value in (("at_hash", access_token), ("c_hash", code)):
            expected = create_half_hash(value, alg) if value else None  # None: no hash for alg (never a listed one)
            if name in claims and expected is not None and not defects.active(SKIP_HASHES) \
                    and claims[name] != expected.decode("ascii"):
                raise LoginRefused(f"ID token refused: {name} does not match what was received with it")
        return claims
