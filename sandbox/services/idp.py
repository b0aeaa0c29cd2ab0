"""The OpenID Connect provider: a compact provider (code flow, PKCE S256), per session, configured by packs.

Each pack's :class:`~sandbox.oidc_profile.OidcProfile` mounts it once, under its own name (``<service>``): issuer
``{base_url}/s/{session_id}/<service>``. The login is automated: ``login_hint`` names an account of the session
fixtures (the profile says which list and which field); the profile also gives the account's claims, the ``acr``
values and scopes, and the services an access token may be sent to. Authorization codes are one-time, short-lived
and bound to the client, redirect URI, nonce and code challenge; a code presented twice revokes every token it gave
(the access and refresh tokens, and the access tokens its refresh token minted). Each token response also carries a
refresh token (kind ``refresh``), redeemable at the token endpoint (``grant_type=refresh_token``, outcome
``token-refreshed``) and nowhere else. Access tokens are JWTs (RFC 9068, ``typ`` ``at+jwt``, signed like the session's ID
tokens) whose ``aud`` claim lists the base URLs of the services they may be sent to (the pack's services and
userinfo), so software can keep a token to its audience; the services still accept them only as records in the
store (kind ``access``, scope = session id), through ``deps.require_access_token``; their data is::

    {"sub": "…", "client_id": "cli_…", "scopes": ["openid", …], "auth_time": 1700000000,
     "account": {<the account of the fixtures>}, "userinfo": {<the claims /userinfo answers>},
     "code_sha256": "<the hash of the code it came from, to revoke it by>"}

Faults (``faults["<service>"]``): ``id_token`` forges the next ID tokens (see ``sandbox.oidc_keys``);
``state_not_echoed`` makes the authorization redirect carry another state; ``userinfo_other_sub``
makes userinfo answer another account's claims; ``userinfo_signed`` answers userinfo as a signed
JWT (valid or with a corrupted signature); ``rotate_keys`` rotates the signing key (JWKS and ID tokens);
``discovery_other_issuer`` serves a discovery document naming another issuer. The outcome details of
the exchange say which fault was injected. Every ID token carries ``at_hash`` and ``c_hash``.

ID tokens, signed userinfo and access tokens are signed with the algorithm the session's client registered
(``id_token_signed_response_alg``: RS256 by default, or ES256); discovery lists both, the session's JWKS
publishes that algorithm's key (``sandbox.oidc_keys``).

The automated login authenticates at the profile's first level: every ID token carries that ``acr``
(``acr_values_supported`` lists the profile's), and ``auth_time`` is the time of the authorization request.

Errors: before the redirect URI is known good, problems (RFC 9457); after it, OAuth errors in the
redirect; at the token endpoint, OAuth error JSON (RFC 6749 §5.2). Every one has a stable ``code``.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from base64 import b64decode
from binascii import Error as Base64Error
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt

from conformity.http_problems import media_type
from sandbox.credentials import secret_hash
from sandbox.deps import access_token_caller, fault, get_session, lean_json, store_of
from sandbox.oidc_keys import ALGS, IdpKeys, load_or_create, sign_id_token
from sandbox.oidc_profile import OidcProfile
from sandbox.problems import HTTPProblem, set_outcome
from sandbox.store import Store

router = APIRouter(tags=["OpenID Connect provider"])

CODE_TTL = 60
USED_CODE_TTL = 3600
ID_TOKEN_TTL = 300
REFRESH_TOKEN_TTL = 8 * 3600
MAX_PARAM_CHARS = 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
NOT_IN_DESCRIPTIONS = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: the ID token's own claims (the profile adds those of its accounts)
TOKEN_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "at_hash")


def setup(app: FastAPI) -> None:
    """Load (or create on first start) the provider's signing keys."""
    app.state.idp_keys = load_or_create(app.state.config.idp_key_path)


class OAuthError(Exception):
    """An OAuth error: the ``error`` value, our stable code, a description, and the HTTP status (token endpoint)."""

    def __init__(self, error: str, code: str, description: str, status: int = 400):
        description = NOT_IN_DESCRIPTIONS.sub("?", description)  # RFC 6749: %x20-21 / %x23-5B / %x5D-7E only
        super().__init__(f"{error} ({code}): {description}")
        self.error, self.code, self.description, self.status = error, code, description, status


def profile_of(request: Request) -> OidcProfile:
    """The profile of the provider this request reached (``/s/{sid}/<service>/…``)."""
    service = request.scope["path"].split("/")[3]
    profile: OidcProfile = request.app.state.oidc_profiles[service]
    return profile


def issuer(session: dict[str, Any], profile: OidcProfile) -> str:
    return f"{session['base_url']}/s/{session['id']}/{profile.service}"


def _keys(request: Request, session: dict[str, Any]) -> IdpKeys:
    """The keys of the algorithm the session's client registered (RS256 unless it asked for ES256)."""
    keys: IdpKeys = request.app.state.idp_keys.for_alg(session.get("id_token_signed_response_alg"))
    return keys


def access_token_jwt(request: Request, session: dict[str, Any], sub: str, client_id: str, scopes: list[str],
                     ttl: int) -> str:
    """An access token as a JWT (RFC 9068): its ``aud`` lists the services it may be sent to, nowhere else."""
    profile = profile_of(request)
    base = f"{session['base_url']}/s/{session['id']}"
    now = int(time.time())
    claims = {"iss": issuer(session, profile), "sub": sub, "client_id": client_id, "scope": " ".join(scopes),
              "aud": [f"{base}/{name}" for name in profile.audience] + [f"{issuer(session, profile)}/userinfo"],
              "iat": now, "exp": now + ttl, "jti": secrets.token_urlsafe(16)}
    keys = _keys(request, session)
    return jwt.encode({"alg": keys.alg, "kid": keys.kid, "typ": "at+jwt"}, claims, keys.signing,
                      algorithms=[keys.alg])


# discovery ------------------------------------------------------------------------------------------

@router.get("/.well-known/openid-configuration", summary="OpenID Connect discovery document")
async def discovery(request: Request, session_id: str) -> dict[str, Any]:
    session = get_session(request, session_id)
    base = issuer(session, profile_of(request))
    named = base
    if fault(session, profile_of(request).service).get("discovery_other_issuer"):
        named = f"{base}-other"  # the document of another provider (OpenID Connect Discovery §4.3)
        set_outcome(request, "discovery-served", fault="discovery_other_issuer", issuer=named)
    else:
        set_outcome(request, "discovery-served")
    return {
        "issuer": named, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo", "jwks_uri": f"{base}/jwks",
        "response_types_supported": ["code"], "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"], "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": list(ALGS),
        "userinfo_signing_alg_values_supported": list(ALGS),
        "acr_values_supported": list(profile_of(request).acr_values),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(profile_of(request).scopes),
        "claims_supported": list(TOKEN_CLAIMS + profile_of(request).id_token_claims),
        "claims_parameter_supported": False, "request_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


@router.get("/jwks", summary="The provider's public signing keys (JWKS)")
async def jwks(request: Request, session_id: str) -> dict[str, Any]:
    session = get_session(request, session_id)
    rotated = bool(fault(session, profile_of(request).service).get("rotate_keys"))
    set_outcome(request, "jwks-served", **({"fault": "rotate_keys"} if rotated else {}))
    return _keys(request, session).public_jwks(rotated)


#: the routes served lean under each profile's service (:func:`sandbox.app.lean_routes`): (method, path) → (the
#: endpoint it stands for, handler); every login fetches the discovery document and the keys
LEAN_ROUTES = {("GET", "/.well-known/openid-configuration"): (discovery, lean_json(discovery)),
               ("GET", "/jwks"): (jwks, lean_json(jwks))}


# authorization endpoint -----------------------------------------------------------------------------

def redirect_uri_allowed(session: dict[str, Any], uri: str) -> bool:
    """Registered exactly, or (none registered) a loopback http URL on any port (RFC 8252 §7.3)."""
    if session.get("redirect_uris"):
        return uri in session["redirect_uris"]
    try:
        parts = urlsplit(uri)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return False
    return (parts.scheme == "http" and host in LOOPBACK_HOSTS and not parts.username and not parts.password
            and not parts.fragment)


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    """302 to ``uri`` with ``params`` added to its query (its own query is kept as is)."""
    query = urlsplit(uri).query
    target = uri + ("&" if query else "?") + urlencode(params)
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


def _one(params: Any, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", "request-param-repeated", f"parameter {name!r} is repeated")
    return values[0] if values else None


AUTHORIZE_PARAMS = {"parameters": [
    {"name": name, "in": "query", "required": required, "schema": {"type": "string"}, "description": text}
    for name, required, text in (
        ("response_type", True, "code"), ("client_id", True, "the session's client_id"),
        ("redirect_uri", True, "registered, or an http loopback URL when none is registered"),
        ("scope", True, "must contain openid"), ("state", True, "echoed in the redirect"),
        ("nonce", True, "copied into the ID token"), ("code_challenge", False, "PKCE: BASE64URL(SHA256(verifier))"),
        ("code_challenge_method", False, "S256"),
        ("login_hint", True, "the account to log in (the pack's profile says which identifier)"))]}


@router.get("/authorize", summary="Authorization endpoint (code flow; automated login by login_hint)",
            response_class=RedirectResponse, status_code=302, openapi_extra=AUTHORIZE_PARAMS)
def authorize(request: Request, session_id: str) -> RedirectResponse:
    return _authorization(request, get_session(request, session_id), request.query_params)


@router.post("/authorize", summary="Authorization endpoint, parameters as a form (OIDC Core §3.1.2.1)",
             response_class=RedirectResponse, status_code=302)
async def authorize_form(request: Request, session_id: str) -> RedirectResponse:
    session = get_session(request, session_id)
    media = media_type(request)
    if media != "application/x-www-form-urlencoded":
        raise HTTPProblem(415, "authorize-request-not-form", "POST the authorization request as a urlencoded form")
    return _authorization(request, session, await request.form())


def _authorization(request: Request, session: dict[str, Any], params: Any) -> RedirectResponse:
    """Answer an authorization request: problems until the redirect URI is trusted, then redirects."""
    try:
        client_id, redirect_uri = _one(params, "client_id"), _one(params, "redirect_uri")
    except OAuthError as exc:
        raise HTTPProblem(400, exc.code, exc.description) from exc
    if not client_id:
        raise HTTPProblem(400, "client-id-missing", "the authorization request needs client_id")
    if client_id != session["client_id"]:
        raise HTTPProblem(400, "client-unknown", f"client {client_id!r} is not this session's client")
    if not redirect_uri:
        raise HTTPProblem(400, "redirect-uri-missing", "the authorization request needs redirect_uri")
    if not redirect_uri_allowed(session, redirect_uri):
        allowed = ("registered: " + ", ".join(session["redirect_uris"]) if session.get("redirect_uris")
                   else "none registered, so an http loopback URL (127.0.0.1, localhost, [::1]) on any port")
        raise HTTPProblem(400, "redirect-uri-unregistered", f"redirect_uri {redirect_uri!r} is not allowed ({allowed})")

    state = params.get("state")
    try:
        issued = _authorize(request, session, params, client_id, redirect_uri)
    except OAuthError as exc:
        set_outcome(request, exc.code, error=exc.error, detail=exc.description)
        answer = {"error": exc.error, "error_description": exc.description}
        if state is not None and len(params.getlist("state")) == 1:
            answer["state"] = state
        return _redirect(redirect_uri, answer | {"iss": issuer(session, profile_of(request))})
    return _redirect(redirect_uri, issued)


def _authorize(request: Request, session: dict[str, Any], params: Any, client_id: str,
               redirect_uri: str) -> dict[str, str]:
    """Check the rest of an authorization request, store the code; the redirect's parameters."""
    for name, value in params.multi_items():
        _one(params, name)
        if len(value) > MAX_PARAM_CHARS:
            raise OAuthError("invalid_request", "param-too-long", f"{name} is longer than {MAX_PARAM_CHARS} characters")
    response_type = params.get("response_type")
    if not response_type:
        raise OAuthError("invalid_request", "response-type-missing", "response_type is required (code)")
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "response-type-unsupported",
                         f"response_type {response_type!r} is not supported (only code)")
    scopes = (params.get("scope") or "").split()
    if "openid" not in scopes:
        raise OAuthError("invalid_scope", "scope-openid-missing", "scope must contain openid")
    state, nonce = params.get("state"), params.get("nonce")
    if not state:
        raise OAuthError("invalid_request", "state-missing", "state is required")
    if not nonce:
        raise OAuthError("invalid_request", "nonce-missing", "nonce is required")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None and method is not None:
        raise OAuthError("invalid_request", "pkce-challenge-missing", "code_challenge_method without code_challenge")
    if challenge is not None:
        if method != "S256":
            raise OAuthError("invalid_request", "pkce-method-unsupported",
                             f"code_challenge_method {method or 'plain (absent)'!r} is not supported (only S256)")
        if not PKCE_CHALLENGE.match(challenge):
            raise OAuthError("invalid_request", "pkce-challenge-invalid",
                             "an S256 code_challenge is 43 base64url characters")
    login_hint = params.get("login_hint")
    if not login_hint:
        raise OAuthError("invalid_request", "login-hint-missing",
                         f"the sandbox logs in the account named by login_hint ({profile_of(request).login_hint})")
    account = profile_of(request).account(session, login_hint)
    if account is None:
        raise OAuthError("access_denied", "login-hint-unknown",
                         f"no account {login_hint!r} in this session's fixtures")

    code = secrets.token_urlsafe(32)
    granted = [s for s in profile_of(request).scopes if s in scopes]
    store_of(request).put_token(code, "code", session["id"], {
        "client_id": client_id, "redirect_uri": redirect_uri, "nonce": nonce, "code_challenge": challenge,
        "scopes": granted, "sub": account[profile_of(request).subject_key], "auth_time": int(time.time()),
    }, ttl=CODE_TTL)
    details: dict[str, Any] = {"sub": account[profile_of(request).subject_key], "pkce": challenge is not None}
    echoed = state
    if fault(session, profile_of(request).service).get("state_not_echoed"):
        echoed = secrets.token_urlsafe(16)
        details["fault"] = "state_not_echoed"
    set_outcome(request, "authorization-code-issued", **details)
    return {"code": code, "state": echoed, "iss": issuer(session, profile_of(request))}


# token endpoint -------------------------------------------------------------------------------------

TOKEN_FORM = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type", "code", "redirect_uri"],
    "properties": {name: {"type": "string"} for name in
                   ("grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret")}}}}}}


@router.post("/token", summary="Token endpoint (authorization_code; client_secret_basic or client_secret_post)",
             openapi_extra=TOKEN_FORM)
async def token(request: Request, session_id: str) -> JSONResponse:
    session = get_session(request, session_id)
    try:
        form = await _form(request)
        client_auth = _authenticate(request, session, form)
        return _redeem(request, session, form, client_auth)
    except OAuthError as exc:
        set_outcome(request, exc.code, error=exc.error, detail=exc.description)
        headers = dict(NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="{profile_of(request).service}"'
        return JSONResponse({"error": exc.error, "error_description": exc.description, "code": exc.code},
                            status_code=exc.status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of a token request; a parameter given twice is refused (RFC 6749 §3.2)."""
    media = media_type(request)
    if media != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "token-request-not-form",
                         "the token request must be application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "token-request-not-form", "the form is not UTF-8") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", "request-param-repeated", f"parameter {name!r} is repeated")
        form[name] = value
    return form


def _authenticate(request: Request, session: dict[str, Any], form: dict[str, str]) -> str:
    """Check the client's credentials; the method it used."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if header and scheme.lower() != "basic":
        raise OAuthError("invalid_client", "client-auth-unsupported",
                         f"{scheme} is not a client authentication method here", 401)
    if header:
        if "client_secret" in form:
            raise OAuthError("invalid_request", "client-auth-multiple", "use one client authentication method, not two")
        try:
            user, sep, password = b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (Base64Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise OAuthError("invalid_client", "client-auth-malformed", "malformed Basic credentials", 401)
        client_id, secret, method = unquote_plus(user), unquote_plus(password), "client_secret_basic"
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_client", "client-unknown", "client_id differs from the authenticated client", 401)
    elif "client_secret" in form:
        client_id, secret, method = form.get("client_id", ""), form["client_secret"], "client_secret_post"
    else:
        raise OAuthError("invalid_client", "client-auth-missing",
                         "authenticate with client_secret_basic or client_secret_post", 401)
    if not hmac.compare_digest(client_id.encode(), session["client_id"].encode()):
        raise OAuthError("invalid_client", "client-unknown", f"client {client_id!r} is not this session's client", 401)
    if not hmac.compare_digest(secret_hash(secret), str(session.get("client_secret_sha256", ""))):
        raise OAuthError("invalid_client", "client-secret-invalid", "wrong client secret", 401)
    return method


def _take_code(request: Request, session: dict[str, Any], code: str, issued: list[str]) -> dict[str, Any]:
    """Consume a code (any redemption attempt uses it up), to give the tokens ``issued``. A code presented again is
    refused and revokes every token it gave (RFC 6749 §4.1.2: the access and the refresh token), and is marked
    reused, so that a redemption still storing its tokens revokes them itself (:func:`_revoke_if_reused`). Read,
    taken and marked under the code's lock: a presentation at the same time reads it before it is taken (and is the
    redemption) or once it is marked used (and is the reuse) — read unused and taken second, it marked nothing and the
    other's tokens outlived it."""
    store = store_of(request)
    with store.lock(f"idp-code\n{secret_hash(code)}"):
        return _take_code_locked(store, session, code, issued)


def _take_code_locked(store: Store, session: dict[str, Any], code: str, issued: list[str]) -> dict[str, Any]:
    record = store.get_token(code)
    if record is None or record["kind"] not in ("code", "code-used", "code-reused"):
        raise OAuthError("invalid_grant", "code-unknown", "unknown authorization code")
    if record["scope"] != session["id"]:
        raise OAuthError("invalid_grant", "code-other-session", "this code was issued in another test session")
    if record["kind"] in ("code-used", "code-reused"):
        gave = _gave(record)
        store.put_token(code, "code-reused", session["id"], {"issued_sha256": gave}, ttl=USED_CODE_TTL)
        revoked = [h for h in gave if store.take_token_by_hash(h) is not None]
        raise OAuthError("invalid_grant", "code-reused", "this code was already presented"
                         + ("; the tokens it gave are now revoked" if revoked else ""))
    taken = store.take_token(code)
    if taken is None or taken["kind"] != "code":
        raise OAuthError("invalid_grant", "code-reused", "this code is being redeemed by another request")
    store.put_token(code, "code-used", session["id"], {"issued_sha256": [secret_hash(t) for t in issued]},
                    ttl=USED_CODE_TTL)
    if taken["expired"]:
        raise OAuthError("invalid_grant", "code-expired", f"authorization codes live {CODE_TTL} seconds")
    return taken


def _gave(record: dict[str, Any]) -> list[str]:
    """The hashes of the tokens a used code gave (a record written before refresh tokens were listed: its access
    token's)."""
    if isinstance(record.get("issued_sha256"), list):
        return [h for h in record["issued_sha256"] if isinstance(h, str)]
    return [record["access_token_sha256"]] if isinstance(record.get("access_token_sha256"), str) else []


def _revoke_if_reused(request: Request, code: str, issued: list[str]) -> None:
    """After a redemption stored its tokens: if the code was presented again meanwhile (another worker, before the
    tokens were there to revoke), revoke them now and refuse — either way a reused code's tokens do not live."""
    store = store_of(request)
    record = store.get_token(code)
    if record is not None and record["kind"] == "code-reused":
        for token in issued:
            store.take_token(token)
        raise OAuthError("invalid_grant", "code-reused",
                         "this code was presented again while it was redeemed; the tokens it gave are revoked")


def _check_pkce(record: dict[str, Any], verifier: str | None) -> None:
    challenge = record.get("code_challenge")
    if challenge is None:
        if verifier is not None:
            raise OAuthError("invalid_grant", "pkce-verifier-unexpected",
                             "code_verifier sent but the authorization request had no code_challenge")
        return
    if verifier is None:
        raise OAuthError("invalid_grant", "pkce-verifier-missing", "the authorization request used PKCE: send code_verifier")
    if not PKCE_VERIFIER.match(verifier):
        raise OAuthError("invalid_request", "pkce-verifier-malformed", "a code_verifier is 43-128 unreserved characters")
    if not hmac.compare_digest(create_s256_code_challenge(verifier), challenge):
        raise OAuthError("invalid_grant", "pkce-verifier-mismatch", "code_verifier does not match the code_challenge")


def _redeem(request: Request, session: dict[str, Any], form: dict[str, str], client_auth: str) -> JSONResponse:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant-type-missing", "grant_type is required")
    if grant_type == "refresh_token":
        return _refresh(request, session, form, client_auth)
    if grant_type != "authorization_code":
        raise OAuthError("unsupported_grant_type", "grant-type-unsupported", f"grant_type {grant_type!r} is not supported")
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "code-missing", "code is required")
    pending = store_of(request).get_token(code)
    ttl = request.app.state.config.access_token_ttl
    access_token = access_token_jwt(request, session, str((pending or {}).get("sub", "")), session["client_id"],
                                    list((pending or {}).get("scopes", [])), ttl)
    refresh_token = secrets.token_urlsafe(32)
    record = _take_code(request, session, code, [access_token, refresh_token])
    if record["client_id"] != session["client_id"]:
        raise OAuthError("invalid_grant", "code-client-mismatch", "this code was issued to another client")
    if form.get("redirect_uri") != record["redirect_uri"]:
        raise OAuthError("invalid_grant", "redirect-uri-mismatch",
                         "redirect_uri must be the one of the authorization request")
    _check_pkce(record, form.get("code_verifier"))
    profile = profile_of(request)
    account = profile.by_subject(session, record["sub"])
    if account is None:  # pragma: no cover - fixtures do not change within a session
        raise OAuthError("invalid_grant", "login-hint-unknown", "the account is no longer in the fixtures")

    userinfo = profile.claims(account)
    grant = {"sub": record["sub"], "client_id": record["client_id"], "scopes": record["scopes"],
             "auth_time": record["auth_time"], "account": account, "userinfo": userinfo, "code_sha256": secret_hash(code)}
    store_of(request).put_token(access_token, "access", session["id"], grant, ttl=ttl)
    store_of(request).put_token(refresh_token, "refresh", session["id"], grant, ttl=REFRESH_TOKEN_TTL)
    _revoke_if_reused(request, code, [access_token, refresh_token])
    now = int(time.time())
    keys = _keys(request, session)
    claims = {"iss": issuer(session, profile_of(request)), "sub": record["sub"], "aud": record["client_id"], "exp": now + ID_TOKEN_TTL,
              "iat": now, "auth_time": record["auth_time"], "acr": profile.acr, "nonce": record["nonce"],
              "at_hash": create_half_hash(access_token, keys.alg).decode("ascii"),
              "c_hash": create_half_hash(code, keys.alg).decode("ascii")}
    claims |= {k: userinfo[k] for k in profile.id_token_claims
               if k in userinfo}
    forgery = fault(session, profile_of(request).service).get("id_token")
    rotated = bool(fault(session, profile_of(request).service).get("rotate_keys"))
    details: dict[str, Any] = {"sub": record["sub"], "client_auth": client_auth,
                               "pkce": record.get("code_challenge") is not None}
    if forgery:
        details["fault"] = forgery
    if rotated:
        details["signed_by"] = "rotated key"
    details["alg"] = keys.alg
    set_outcome(request, "token-issued", **details)
    return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl,
                         "id_token": sign_id_token(keys, claims, forgery, rotated=rotated),
                         "refresh_token": refresh_token, "scope": " ".join(record["scopes"])}, headers=NO_STORE)


def _refresh(request: Request, session: dict[str, Any], form: dict[str, str], client_auth: str) -> JSONResponse:
    """A new access token for a refresh token of this session and client (RFC 6749 §6; no rotation)."""
    token = form.get("refresh_token")
    if not token:
        raise OAuthError("invalid_request", "refresh-token-missing", "refresh_token is required")
    record = store_of(request).get_token(token)
    if record is None or record["kind"] != "refresh" or record["scope"] != session["id"] or record["expired"]:
        raise OAuthError("invalid_grant", "refresh-token-invalid", "unknown, expired or foreign refresh token")
    if record["client_id"] != session["client_id"]:
        raise OAuthError("invalid_grant", "refresh-token-client-mismatch", "this refresh token was issued to another client")
    ttl = request.app.state.config.access_token_ttl
    access_token = access_token_jwt(request, session, record["sub"], record["client_id"], record["scopes"], ttl)
    kept = ("sub", "client_id", "scopes", "auth_time", "account", "userinfo", "code_sha256")
    grant: dict[str, Any] = {k: record[k] for k in kept if k in record}
    _store_refreshed(store_of(request), session, token, access_token, grant, ttl)
    set_outcome(request, "token-refreshed", sub=record["sub"], client_auth=client_auth)
    return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl,
                         "scope": " ".join(record["scopes"])}, headers=NO_STORE)


def _store_refreshed(store: Store, session: dict[str, Any], refresh_token: str, access_token: str,
                     grant: dict[str, Any], ttl: float) -> None:
    """Store an access token minted by a refresh token and list it among the tokens its code gave, so that the code
    presented again revokes it too (RFC 6749 §4.1.2: *all* tokens issued on the code; a refreshed access token
    outlived the reuse). Under the code's lock: a reuse at the same time either sees it listed or is seen here (the
    refresh token then revoked, the refresh refused)."""
    code_sha256 = grant.get("code_sha256")
    if not isinstance(code_sha256, str):  # a refresh token stored before its code was kept: nothing to list it on
        store.put_token(access_token, "access", session["id"], grant, ttl=ttl)
        return
    with store.lock(f"idp-code\n{code_sha256}"):
        code = store.get_token_by_hash(code_sha256)
        if code is not None and code["kind"] == "code-reused":
            store.take_token(refresh_token)
            raise OAuthError("invalid_grant", "refresh-token-invalid",
                             "the code this refresh token came from was presented again: its tokens are revoked")
        store.put_token(access_token, "access", session["id"], grant, ttl=ttl)
        if code is not None and code["kind"] == "code-used":
            data = {k: v for k, v in code.items() if k not in ("kind", "scope", "expired")}
            data["issued_sha256"] = [*_gave(code), secret_hash(access_token)]
            store.update_token_data(code_sha256, data)


# userinfo -------------------------------------------------------------------------------------------

@router.get("/userinfo", summary="Claims about the logged-in account (Bearer)")
@router.post("/userinfo", summary="Claims about the logged-in account (Bearer)")
def userinfo(request: Request, session_id: str) -> Response:
    caller = access_token_caller(request, session_id)
    if "openid" not in caller.token.get("scopes", []) or "userinfo" not in caller.token:
        raise HTTPProblem(403, "token-scope-insufficient", "this access token was not issued for openid",
                      headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'})
    claims = caller.token["userinfo"]
    details: dict[str, Any] = {"sub": caller.token["sub"]}
    faults = fault(caller.session, profile_of(request).service)
    if faults.get("userinfo_other_sub"):
        others = profile_of(request).others(caller.session, caller.token["sub"])
        if others:
            claims = profile_of(request).claims(others[0])
            details |= {"fault": "userinfo_other_sub", "served_sub": claims["sub"]}
    signed = faults.get("userinfo_signed")
    if signed:  # OpenID Connect Core §5.3.2: a signed userinfo answer, with iss and aud
        details |= {"fault": f"userinfo_signed_{signed}"}
        set_outcome(request, "userinfo-served", **details)
        document = claims | {"iss": issuer(caller.session, profile_of(request)), "aud": caller.token["client_id"]}
        token = sign_id_token(_keys(request, caller.session), document,
                              "bad_signature" if signed == "bad_signature" else None,
                              rotated=bool(faults.get("rotate_keys")))
        return Response(token, media_type="application/jwt", headers=NO_STORE)
    set_outcome(request, "userinfo-served", **details)
    return JSONResponse(claims, headers=NO_STORE)
