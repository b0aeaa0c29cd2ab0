"""Who is asking: a vendor's API token, a signed-in person's session (with its CSRF token), the client address."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.routing import APIRoute

from conformity import jsonio
from conformity.agency.registry import Registry
from conformity.agency.service import accounts
from conformity.agency.service.accounts import Account, Session
from conformity.agency.service.config import ServiceConfig
from conformity.agency.service.problems import HTTPProblem
from conformity.db.connection import Connection
from conformity.errors import InputError

SESSION_COOKIE = "usine_session"
LOGIN_CSRF_COOKIE = "usine_login_csrf"
#: RFC 6265bis §4.1.3.2: a browser keeps a ``__Host-`` cookie only when set Secure, with Path=/ and no Domain, so a
#: sibling host (``evil.agency.example``) cannot plant or shadow it (a planted session or sign-in token: session
#: fixation, sign-in CSRF)
HOST_PREFIX = "__Host-"


def cookie_name(config: ServiceConfig, name: str) -> str:
    """The name a cookie has on this service: ``__Host-`` + name over HTTPS (secure cookies), the name alone for a
    service on plain HTTP (``--insecure-cookies``: a browser refuses a ``__Host-`` cookie that is not Secure)."""
    return HOST_PREFIX + name if config.secure_cookies else name


class LoginRequired(Exception):
    """A page needs a signed-in person (answered with a redirect to the sign-in page, or 401 for JSON)."""

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


class PasswordChangeRequired(Exception):
    """The signed-in person's password was set by someone else: every page but changing it (and signing out)
    answers with a redirect to ``/password`` (403 for JSON), nothing done."""


class _StrictJSONRequest(Request):
    """A request whose JSON body is read by :func:`conformity.jsonio.loads` (a name twice in one object, NaN, nesting
    past its limit: refused), where Starlette's ``json.loads`` keeps the last of two values a reader may take the
    first of."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = jsonio.loads(await self.body(), source="the request body")
            except InputError as exc:  # FastAPI answers a JSONDecodeError as a body that is not JSON (400)
                raise json.JSONDecodeError(exc.what(), "", 0) from exc
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed strictly (``APIRouter(route_class=StrictJSONRoute)``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))
        return strict


def config_of(request: Request) -> ServiceConfig:
    cfg: ServiceConfig = request.app.state.config
    return cfg


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def vendor(request: Request, scope: str) -> Account:
    """The vendor account of the request's ``Authorization: Bearer`` token, with ``scope``; 401/403 otherwise."""
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="usine-agency"'}
    if kind.lower() != "bearer" or not token.strip():
        session = current_session(request)
        if session is not None and session.account.role == "vendor":
            if request.method in ("GET", "HEAD"):
                if session.password_change_due:  # like every page: such a session only changes its password
                    raise PasswordChangeRequired()
                return session.account  # the vendor's own pages read the same API with their session
            # a change through the API with only the session cookie: any page of the same site could make the
            # browser send it (an upload, a witnessed run) — the pages change things through their forms (CSRF token)
            raise HTTPProblem(401, "unauthenticated", "a change through the API needs a vendor API token "
                                                      "(Authorization: Bearer usn_…), not the browser's session; the "
                                                      "web pages have their own forms", headers=challenge)
        raise HTTPProblem(401, "unauthenticated", "send a vendor API token: Authorization: Bearer usn_…", headers=challenge)
    with Registry(config_of(request).database) as reg:
        found = accounts.token_account(reg.db, token.strip())
    if found is None:
        raise HTTPProblem(401, "invalid-token", "this API token is unknown, revoked or expired",
                      headers={"WWW-Authenticate": 'Bearer realm="usine-agency", error="invalid_token"'})
    acct, scopes = found
    if acct.role != "vendor":
        raise HTTPProblem(403, "forbidden", f"a {acct.role}'s token acts through /api/v1/staff, not on vendors' submissions")
    if scope not in scopes:
        raise HTTPProblem(403, "insufficient-scope", f"this token may {', '.join(sorted(scopes))}, not {scope}",
                      headers={"WWW-Authenticate": f'Bearer realm="usine-agency", error="insufficient_scope", '
                                                   f'scope="{scope}"'})
    return acct


def current_session(request: Request) -> Session | None:
    """The live session of the request's cookie, if any (cached on the request)."""
    if hasattr(request.state, "session"):
        cached: Session | None = request.state.session
        return cached
    cfg = config_of(request)
    sid = request.cookies.get(cookie_name(cfg, SESSION_COOKIE), "")
    found = None
    if sid:
        with Registry(cfg.database) as reg:
            found = accounts.session(reg.db, sid, cfg.session_idle, cfg.session_max)
    request.state.session = found
    request.state.session_expired = bool(sid) and found is None
    return found


def signed_in(request: Request, action: accounts.Action | None = None, *, changing_password: bool = False) -> Session:
    """The session of a signed-in person allowed to ``action`` (review, decide, admin, submit); whose password is
    their own (else only ``changing_password`` pages take it)."""
    session = current_session(request)
    if session is None:
        raise LoginRequired("your session has expired: sign in again" if request.state.session_expired else "")
    if session.password_change_due and not changing_password:
        raise PasswordChangeRequired()
    if action is not None and not session.account.can(action):
        raise HTTPProblem(403, "forbidden", f"{session.account.role} accounts may not {action}")
    return session


def signed_in_again(request: Request, action: accounts.Action | None = None) -> Session:
    """:func:`signed_in` read again from the registry, not from the request's cache: what the account may do now,
    once a long body (an upload) is in (its account disabled, its session ended meanwhile: refused)."""
    for cached in ("session", "session_expired"):
        if hasattr(request.state, cached):
            delattr(request.state, cached)
    return signed_in(request, action)


def check_csrf(session: Session, form: Any) -> None:
    """A form that changes something carries the session's CSRF token; a replayed or forged one is refused."""
    if not accounts.same_secret(str(form.get("csrf", "")), session.csrf):
        raise HTTPProblem(403, "csrf", "this form's CSRF token is missing or not this session's: reload the page and "
                                   "submit again (nothing was changed)")


#: the longest message a page shows after an action (what the action did: a login, a requirement list, a verdict)
FLASH_MAX = 180


def _flash_mac(session: Session, text: str) -> str:
    return hmac.new(session.csrf.encode(), b"usine-flash\0" + text.encode(), hashlib.sha256).hexdigest()[:32]


def flash_query(session: Session, text: str) -> str:
    """The query string of a redirect after an action, showing ``text`` on the next page of this session: the text
    and its MAC under the session's secret, so that a link from elsewhere cannot make an agency page say what it
    wants (``?done=label issued``)."""
    text = text[:FLASH_MAX]
    return urlencode({"done": text, "mac": _flash_mac(session, text)})


def flash_text(session: Session, done: str, mac: str) -> str:
    """``done`` when this session's action put it in the URL (its MAC matches), else nothing."""
    return done if done and len(done) <= FLASH_MAX and hmac.compare_digest(mac, _flash_mac(session, done)) else ""


def staff_token(request: Request, action: accounts.Action) -> Account:
    """The staff account of the request's Bearer token, allowed to ``action`` by its role and the token's scopes.

    401 without a valid token; 403 when the role may not (a reviewer deciding) or the token was not given
    that scope. Tokens are not cookies: no CSRF token is needed.
    """
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = f'Bearer realm="usine-agency-staff", scope="{action}"'
    if kind.lower() != "bearer" or not token.strip():
        raise HTTPProblem(401, "unauthenticated", "send a staff API token: Authorization: Bearer usn_…",
                      headers={"WWW-Authenticate": challenge})
    with Registry(config_of(request).database) as reg:
        found = accounts.token_account(reg.db, token.strip())
    if found is None:
        raise HTTPProblem(401, "invalid-token", "this API token is unknown, revoked or expired",
                      headers={"WWW-Authenticate": challenge + ', error="invalid_token"'})
    acct, scopes = found
    if not acct.can(action):
        raise HTTPProblem(403, "forbidden", f"{acct.role} accounts may not {action}")
    if action not in scopes:
        raise HTTPProblem(403, "insufficient-scope", f"this token may {', '.join(sorted(scopes))}, not {action}",
                      headers={"WWW-Authenticate": challenge + ', error="insufficient_scope"'})
    return acct


def still_allowed(acct: Account) -> Callable[[Connection], None]:
    """A registry guard (:class:`Registry`): inside an action's (or an upload's) own write transaction, the account that was
    authenticated when the request came in is still active with the same role, its session or token still live
    (:func:`accounts.still_signed_in`) — one disabled, or whose password was reset, while its request waited for the
    lock acts on nothing (403)."""
    def check(db: Connection) -> None:
        if not accounts.still_signed_in(db, acct):
            raise HTTPProblem(403, "no-longer-signed-in",
                              f"the account {acct.login} was disabled, its password reset or its session or token "
                              "ended while this request was under way: nothing was done")
    return check
