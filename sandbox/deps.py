"""Request dependencies: which session a request belongs to, and whether its token may act there."""

from __future__ import annotations

import functools
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from conformity.catalog import Catalog, load_catalog
from conformity.errors import InputError
from conformity.http_problems import require_json_media, utf8_problem
from conformity.paths import default_catalog_root
from sandbox.auth_first import authenticated
from sandbox.credentials import secret_hash
from sandbox.parsed import DuplicateMember, parse_body, require_unique_members
from sandbox.problems import HTTPProblem
from sandbox.store import Store, bounds_binding

R = TypeVar("R")


def store_of(request: Request) -> Store:
    return request.app.state.store


#: base URLs as Starlette writes them, by what it writes them from (see :func:`base_url`); emptied when it fills
_BASE_URLS: dict[tuple[Any, ...], str] = {}
_BASE_URLS_AT_MOST = 256


def base_url(request: Request) -> str:
    """``str(request.base_url)`` without its trailing slash. Starlette builds it from the scheme, the server address,
    the root path and the Host header only, parsing them anew for every request (a tenth of a document submission's
    framework time): kept here by those four."""
    scope = request.scope
    server = scope.get("server")
    host = next((value for key, value in scope["headers"] if key == b"host"), None)
    key = (scope.get("scheme", "http"), tuple(server) if server is not None else None,
           scope.get("app_root_path", scope.get("root_path", "")), host)
    found = _BASE_URLS.get(key)
    if found is None:
        if len(_BASE_URLS) >= _BASE_URLS_AT_MOST:
            _BASE_URLS.clear()
        found = _BASE_URLS[key] = str(request.base_url).rstrip("/")
    return found


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def bearer(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization", ""))



@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls the admin API: the sandbox's operator (admin token) or a vendor's harness (harness token)."""

    kind: str  # "admin" | "harness"
    vendor: dict[str, str] | None = None
    #: a harness token the operator minted for a run it drives itself (the agency's witnessed run): its bounds are
    #: counted apart from the tokens issued to the vendor (:func:`sandbox.store.bounds_binding`)
    witnessed: bool = False

    def bounds_key(self) -> str | None:
        """The key this caller's bounds are counted under; None for the admin token (not bounded)."""
        return None if self.vendor is None else bounds_binding(self.vendor, self.witnessed)


#: The dependencies below are ``async``: FastAPI runs a plain function dependency in its thread pool, and the hop
#: (handing the request to a thread and back, a GIL hand-over each way) costs more than their one indexed read of
#: the store. Code calling them directly uses their plain twins (``principal_of``, ``access_token_caller``…).


async def store_call(store: Store, work: Callable[..., R], *args: Any) -> R:
    """``work(*args)`` (store calls): on the event loop for SQLite, in a thread for PostgreSQL's round trips."""
    return work(*args) if store.on_loop else await run_in_threadpool(work, *args)


async def require_principal(request: Request) -> Principal:
    """The admin token, or a harness token the admin issued to one vendor's software (dependency; as the admin
    router's :func:`sandbox.auth_first.auth_first` check found it, when it ran)."""
    known, principal = authenticated(request, require_principal)
    return principal if known else await store_call(store_of(request), principal_of, request)


def principal_of(request: Request) -> Principal:
    """The admin token, or a harness token the admin issued to one vendor's software (sessions bound to it)."""
    token = bearer(request)
    if token is None:
        raise HTTPProblem(401, "admin-token-missing", "the admin API needs 'Authorization: Bearer <admin or harness token>'",
                      headers={"WWW-Authenticate": "Bearer"})
    if hmac.compare_digest(token, request.app.state.config.admin_token):
        return Principal("admin")
    record = token_record(request, token)
    if record is not None and record["kind"] == "harness":
        if record["expired"]:
            raise HTTPProblem(401, "harness-token-expired", "this harness token has expired; ask the agency for a new one",
                          headers={"WWW-Authenticate": "Bearer"})
        return Principal("harness", dict(record["vendor"]), witnessed=record.get("witnessed") is True)
    raise HTTPProblem(403, "admin-token-invalid", "neither the sandbox's admin token nor a harness token it issued")


async def require_admin(request: Request) -> Principal:
    """The sandbox operator only (installations, events, harness tokens, every session)."""
    principal = await require_principal(request)
    if principal.kind != "admin":
        raise HTTPProblem(403, "admin-only", "a harness token manages its own test sessions only")
    return principal


def owned_session(request: Request, session_id: str, principal: Principal, *, open_only: bool = True) -> dict[str, Any]:
    """A session the caller may manage: any for the admin; for a harness, only those bound to its vendor."""
    if open_only:
        session = get_session(request, session_id)
    else:
        stored = store_of(request).get_session(session_id)
        if stored is None:
            raise HTTPProblem(404, "session-unknown", f"no test session {session_id!r}")
        session = stored
    if principal.kind == "harness" and session.get("bound_to") != principal.vendor:
        raise HTTPProblem(403, "session-other-vendor", "this test session is not bound to your harness token's vendor")
    if not reaches(principal, session):
        raise HTTPProblem(403, "session-other-vendor", "this test session is of a witnessed run, created by the token "
                                                       "the sandbox's operator minted for it: another harness token of "
                                                       "the same software does not manage it (nor the other way round)")
    return session


def reaches(principal: Principal, record: dict[str, Any]) -> bool:
    """Whether ``principal`` may manage ``record`` (a session, a run) as far as witnessing goes: the admin token every
    one; a harness token only those made by a token like itself — the operator's witnessed token (the agency's
    witnessed run) its own, the vendor's tokens theirs. Both are bound to the same software (``bound_to``): without
    this the vendor, whose driver learns the witnessed session's id, could read its fixtures, clear its faults, close
    it, claim its run's scenarios or finish the run before the agency."""
    return principal.kind != "harness" or (record.get("witnessed") is True) == principal.witnessed


#: where the recording middleware leaves the session it read for a request (request.state), when no fault it consumed
#: changed it since: the request's services read it from there instead of the store
REQUEST_SESSION = "usine_session"


#: where the recording middleware leaves the record of the request's bearer token, read with its session in one
#: statement (as of the request's arrival): ``(token, record or None)``; the access-token check reads it from there
REQUEST_TOKEN = "usine_token"


#: where the recording middleware leaves the request's body it read whole (the bytes the app's ``receive`` replays):
#: :func:`read_json` takes it from there instead of reading the replay again
REQUEST_BODY = "usine_body"


#: where :func:`read_json` leaves the body it parsed, ``(raw bytes, value)``: the recording middleware records that
#: value when the bytes are the ones it read (the services never change the parsed value)
REQUEST_JSON = "usine_json"


def token_record(request: Request, token: str) -> dict[str, Any] | None:
    """The record of ``token`` as this request read it on arrival (the recording middleware's read), else from the
    store."""
    cached = request.scope.get("state", {}).get(REQUEST_TOKEN)
    if cached is not None and cached[0] == token:
        return cached[1]
    return store_of(request).get_token(token)


def session_of_request(request: Request, session_id: str) -> dict[str, Any] | None:
    """The session as this request read it (the recording middleware's read), else from the store."""
    cached = request.scope.get("state", {}).get(REQUEST_SESSION)
    if cached is not None and cached.get("id") == session_id:
        return cached
    return store_of(request).get_session(session_id)


#: the service a request's path names (``/s/{session_id}/<service>/…``)
REQUEST_SERVICE = re.compile(r"^/s/[^/]+/([a-z]+)(?:/|$)")


@functools.cache
def _services(pack: str | None) -> frozenset[str]:
    """The services of a session of ``pack`` (every installed pack's when None)."""
    from sandbox.sessions import services

    return frozenset(services(pack))


def refuse_other_packs(session: dict[str, Any], service: str) -> None:
    """404 ``service-not-in-pack`` for a service of another pack than the session's: its endpoints list its pack's
    services only (a session of one pack was served every other pack's services too)."""
    pack = session.get("pack")
    if pack and service not in _services(pack) and service in _services(None):
        raise HTTPProblem(404, "service-not-in-pack", f"test session {session['id']} is a session of the {pack} pack, "
                                                      f"whose services are {', '.join(sorted(_services(pack)))}: not "
                                                      f"{service}")


def refuse_repeated_query(query: bytes) -> None:
    """400 ``query-param-repeated`` for a query naming a parameter twice: every service reads one value of each
    (Starlette's ``query_params`` the first, FastAPI's parameters the last), so ``?kind=dpe&kind=quote`` let a service
    and a check reading the recorded query act on different values. (The identity providers answer it their own way,
    an OAuth ``invalid_request``: :class:`sandbox.app.SessionRoutes` leaves their queries to them.)"""
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            raise HTTPProblem(400, "query-param-repeated", f"query parameter {name!r} is given more than once: a "
                                                           "service reads one value of each", parameter=name)
        seen.add(name)


#: the header fields a service reads one value of (Starlette's ``request.headers`` gives the first): the credential,
#: the consent a data access relies on, the body's media type. A field RFC 9110 defines as a list (``If-None-Match``,
#: ``Accept``) may be repeated: its values are read together.
SINGLE_VALUED_HEADERS = {b"authorization": "Authorization", b"consent-id": "Consent-Id", b"content-type": "Content-Type"}


def refuse_repeated_headers(headers: list[tuple[bytes, bytes]], oauth: bool = False) -> None:
    """400 ``header-repeated`` for a request giving a single-valued header field (:data:`SINGLE_VALUED_HEADERS`)
    twice: a service reads the first, the trace records both joined, so two ``Consent-Id`` (which consent was
    relied on?) or two ``Authorization`` (which credential authenticated?) let a service and a check act on different
    values. ``oauth``: an identity provider's endpoint, whose clients read an OAuth error (RFC 6749 §5.2): the answer
    carries ``error`` ``invalid_request`` and its ``error_description`` too."""
    seen: set[bytes] = set()
    for raw, _ in headers:
        name = raw.lower()
        if name in SINGLE_VALUED_HEADERS:
            if name in seen:
                detail = f"header {SINGLE_VALUED_HEADERS[name]} is given more than once: a service reads one value of it"
                oauth_members: dict[str, Any] = {"error": "invalid_request", "error_description": detail} if oauth else {}
                raise HTTPProblem(400, "header-repeated", detail, header=name.decode("latin-1"), **oauth_members)
            seen.add(name)


def expiry(session: dict[str, Any], ttl: float) -> HTTPProblem | None:
    """410 ``session-expired`` when the session was created more than ``ttl`` seconds ago (one of an earlier sandbox,
    without ``created_ts``, is not expired by this); None while it is served."""
    created = session.get("created_ts")
    if created is not None and created + ttl < time.time():
        return HTTPProblem(410, "session-expired", f"test session {session['id']} has expired (sessions are served "
                                                   f"{ttl:g} s): create a new one")
    return None


def closure(session: dict[str, Any]) -> HTTPProblem | None:
    """410 ``session-closed`` when the session was closed (by its harness, or as its run was finished); None while it
    is open."""
    if session["state"] != "open":
        return HTTPProblem(410, "session-closed", f"test session {session['id']} is closed")
    return None


def get_session(request: Request, session_id: str) -> dict[str, Any]:
    """The open session named in the URL, or a 404 problem (404 too for a service of another pack than the
    session's: :func:`refuse_other_packs`)."""
    session = session_of_request(request, session_id)
    if session is None:
        raise HTTPProblem(404, "session-unknown", f"no test session {session_id!r}")
    if (closed := closure(session)) is not None:
        raise closed
    # the session the recording read was checked already — its expiry by the recording middleware, its pack by the
    # session index (sandbox.app.SessionRoutes); one read from the store here is checked now
    if session is not request.scope.get("state", {}).get(REQUEST_SESSION):
        if (expired := expiry(session, request.app.state.config.session_ttl)) is not None:
            raise expired
        named = REQUEST_SERVICE.match(request.url.path)
        if named:
            refuse_other_packs(session, named[1])
    return session


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a session service: the session, the token's record."""

    session: dict[str, Any]
    token: dict[str, Any]


async def require_access_token(request: Request, session_id: str) -> Caller:
    """A valid, unexpired access token issued to this very session, or a 401/403 problem (dependency). When the
    recording middleware read the session and the token's record on arrival, nothing is read again: checked on the
    event loop (on PostgreSQL, a thread hop saved: CPU of its own, for no round trip)."""
    if read_on_arrival(request, session_id):
        return access_token_caller(request, session_id)
    return await store_call(store_of(request), access_token_caller, request, session_id)


def read_on_arrival(request: Request, session_id: str) -> bool:
    """Whether the recording middleware read this session and the request's bearer token's record (so that checking
    them reads nothing from the store)."""
    state = request.scope.get("state", {})
    session, token = state.get(REQUEST_SESSION), state.get(REQUEST_TOKEN)
    return (session is not None and session.get("id") == session_id and token is not None
            and token[0] == bearer(request))


def access_token_caller(request: Request, session_id: str) -> Caller:
    """A valid, unexpired access token issued to this very session, or a 401/403 problem."""
    session = get_session(request, session_id)
    token = bearer(request)
    if token is None:
        raise HTTPProblem(401, "token-missing", "this service needs 'Authorization: Bearer <access token>'",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_request"'})
    record = token_record(request, token)
    if record is None:
        raise HTTPProblem(401, "token-invalid", "unknown or forged access token",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if record["scope"] != session_id:
        raise HTTPProblem(403, "token-other-session", "this token belongs to another test session")
    if record["kind"] != "access":
        raise HTTPProblem(401, "token-wrong-kind", f"a {record['kind']} token is not an access token for this service",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if record["expired"]:
        raise HTTPProblem(401, "token-expired", "the access token has expired",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return Caller(session, record)


def require_session_token(request: Request, session_id: str) -> dict[str, Any]:
    """The session's own session token (for reading its trace), or a 401/403 problem."""
    session = get_session(request, session_id)
    token = bearer(request)
    if token is None:
        raise HTTPProblem(401, "token-missing", "reading a trace needs the session token",
                      headers={"WWW-Authenticate": "Bearer"})
    record = token_record(request, token)
    if record is None or record["kind"] != "session":
        raise HTTPProblem(401, "token-invalid", "not a session token")
    if record["scope"] != session_id:
        raise HTTPProblem(403, "token-other-session", "this session token belongs to another test session")
    if record["expired"]:
        raise HTTPProblem(401, "token-expired", "the session token has expired",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return session


async def require_installation(request: Request) -> dict[str, Any]:
    """The installed software calling the production services, from its installation token (dependency; as a
    production router's :func:`sandbox.auth_first.auth_first` check found it, when it ran)."""
    known, installation = authenticated(request, require_installation)
    return installation if known else await store_call(store_of(request), installation_of, request)


def installation_of(request: Request) -> dict[str, Any]:
    """The installed software calling the production services, from its installation token."""
    token = bearer(request)
    if token is None:
        raise HTTPProblem(401, "installation-token-missing", "production services need the installation's token",
                      headers={"WWW-Authenticate": "Bearer"})
    inst = store_of(request).installation_by_token_hash(secret_hash(token))
    if inst is None:
        raise HTTPProblem(401, "installation-token-invalid", "unknown installation token",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if inst.get("state") == "revoked":
        raise HTTPProblem(401, "installation-token-revoked", f"the token of installation {inst['id']} was revoked",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if inst.get("state", "active") != "active":
        raise HTTPProblem(403, "installation-inactive", f"installation {inst['id']} is {inst.get('state')}")
    return inst


@functools.cache
def _catalog(root: str) -> Catalog:
    return load_catalog(root)


def waves_catalog(purpose: str) -> Catalog:
    """The catalog of waves the sandbox serves; 503 ``catalog-unavailable`` (said, not a 500; loaded again at the next
    request) when it cannot be read, saying what it was needed for."""
    try:
        return _catalog(str(default_catalog_root()))
    except InputError as exc:
        raise HTTPProblem(503, "catalog-unavailable", f"the sandbox cannot read its catalog of waves to {purpose}: "
                                                      f"{str(exc)[:500]}") from exc


def require_labellable(wave_id: str, category: str) -> None:
    """422 unless the catalog has the wave and the wave has the category: an installation is registered under a label
    that can exist (``wave-unknown``, ``category-unknown``), never under an invented wave nor category whose data
    every production service would then refuse."""
    catalog = waves_catalog("check the installation's wave")
    wave = catalog.waves.get(wave_id)
    if wave is None:
        raise HTTPProblem(422, "wave-unknown", f"wave {wave_id} is not a wave of the catalog "
                                               f"(waves: {', '.join(sorted(catalog.waves))})", where="wave")
    if category not in wave.categories:
        raise HTTPProblem(422, "category-unknown", f"category {category} is not a category of wave {wave_id} "
                                                   f"(categories: {', '.join(wave.categories)})", where="category")


def require_covered(installation: dict[str, Any], kind: str) -> None:
    """403 ``kind-not-covered`` unless the installation's label covers data of ``kind``: its wave pins, for its
    category, one of the referentials its pack names as covering that kind (pack.toml ``data_kinds.<kind>.
    referentials``). The infrastructure accepts from installed software only what its category is labelled for: an
    installation is never paid for data it was never tested on."""
    catalog = waves_catalog("know what installations may send")
    wave = catalog.waves.get(installation["wave"])
    if wave is None:
        why = f"wave {installation['wave']} is not a wave of the catalog"
    else:
        why = wave.uncovered(catalog.packs[wave.pack], installation["category"], kind) or ""
    if why:
        raise HTTPProblem(403, "kind-not-covered", f"installation {installation['id']} (category "
                                                   f"{installation['category']}, wave {installation['wave']}) may not "
                                                   f"send {kind} data: {why}", kind=kind)


def fault(session: dict[str, Any], service: str) -> dict[str, Any]:
    """The faults currently injected into one service of a session (empty dict: none)."""
    return dict(session.get("faults", {}).get(service) or {})


def take_fault(store: Store, session: dict[str, Any], service: str, name: str) -> bool:
    """Consume one count of the counted fault ``<service>.<name>`` atomically; True when one was left.

    ``session`` is the session as read for this request: when it shows none left, nothing is written.
    """
    if not fault(session, service).get(name):
        return False
    hit = False

    def change(current: dict[str, Any]) -> None:
        nonlocal hit
        spec = current.get("faults", {}).get(service)
        if not spec or not isinstance(spec.get(name), int) or spec[name] <= 0:
            return
        hit = True
        spec[name] -= 1

    store.update_session(session["id"], change)
    return hit


def take_unavailable(store: Store, session: dict[str, Any], service: str) -> bool:
    """Consume one injected ``<service>.unavailable`` failure; True when this call must answer 503."""
    return take_fault(store, session, service, "unavailable")


def retry_after(request: Request, spec: dict[str, Any]) -> int:
    """Seconds an injected 429/503 announces: the fault ``retry_after``, else the sandbox's ``--retry-after`` (1 s).

    A test session's wait only has to prove the software waits as announced: one second proves what five would.
    """
    value = spec.get("retry_after")
    return int(value) if value is not None else int(request.app.state.config.retry_after)


def raise_if_unavailable(request: Request, session: dict[str, Any], service: str, what: str) -> None:
    """Answer 429 (fault ``rate_limited``) or 503 (fault ``unavailable``) while an injected failure is left, with
    Retry-After (fault ``retry_after``, else the sandbox's default) unless the fault ``omit_retry_after`` is on."""
    spec = fault(session, service)
    retry = retry_after(request, spec)
    headers = {} if spec.get("omit_retry_after") else {"Retry-After": str(retry)}
    extra: dict[str, Any] = {} if spec.get("omit_retry_after") else {"retry_after": retry}
    if take_fault(store_of(request), session, service, "rate_limited"):
        raise HTTPProblem(429, "rate-limited", f"{what} limits this client's requests (injected fault)", headers=headers,
                      **extra)
    if take_unavailable(store_of(request), session, service):
        raise HTTPProblem(503, "service-unavailable", f"{what} is temporarily unavailable (injected fault)",
                      headers=headers, **extra)


M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request) -> None:
    """415 ``unsupported-media-type`` unless the body is declared as JSON, 400 ``json-malformed`` when it is not UTF-8
    (FastAPI parsed it with ``json.loads``, which takes UTF-16 too) (dependency, on the event loop)."""
    require_json_media(request)
    raw = await request.body()
    problem = utf8_problem(raw)
    if problem is not None:
        raise HTTPProblem(400, "json-malformed", problem)
    try:
        value = await request.json()  # the value FastAPI parsed, kept by the request: no second parse
    except ValueError:
        return  # no body, or none FastAPI could read: its own answer (400 json-malformed, 422) follows
    try:
        require_unique_members(raw, value)
    except DuplicateMember as exc:
        raise duplicate_member(exc) from None


def duplicate_member(exc: DuplicateMember) -> HTTPProblem:
    """400 ``duplicate-member``: a body naming a member twice in one object is refused, not read last-one-wins (the
    service and a check reading the recorded body could read different values)."""
    return HTTPProblem(400, "duplicate-member", f"the body is ambiguous JSON: {exc}", member=exc.name)


class FastJSONResponse(JSONResponse):
    """Starlette's ``JSONResponse`` (compact UTF-8 JSON), written by orjson (the services' default response class);
    what orjson cannot write (a non-string key, an integer beyond 64 bits) Starlette writes as before."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


#: a service's lean route: the request and its session id → the response (what the endpoint it stands for answers)
LeanHandler = Callable[[Request, str], Awaitable[Response]]


def lean_json(endpoint: Callable[..., Awaitable[Any]],
              dependency: Callable[[Request, str], Awaitable[Any]] | None = None) -> LeanHandler:
    """A lean route's handler (``LEAN_ROUTES``: :class:`sandbox.app.SessionRoutes` calls it without FastAPI's routing,
    dependency solving and exit stacks) for ``endpoint(request, session_id[, what dependency gives])``, whose returned
    value it writes as FastAPI writes a route's here: the services' default response class, 200."""
    async def handler(request: Request, session_id: str) -> Response:
        if dependency is None:
            return FastJSONResponse(await endpoint(request, session_id))
        return FastJSONResponse(await endpoint(request, session_id, await dependency(request, session_id)))
    return handler


async def read_json(request: Request, model: type[M]) -> M:
    """The body as ``model``: 415 ``unsupported-media-type``, 400 ``json-malformed``, 422 ``invalid-request``."""
    require_json_media(request)
    raw = request.scope.get("state", {}).get(REQUEST_BODY)
    if raw is None:
        raw = await request.body()
    try:
        data = parse_body(raw)
        request.scope.setdefault("state", {})[REQUEST_JSON] = (raw, data)  # the trace records this value, not parsed again
    except DuplicateMember as exc:
        raise duplicate_member(exc) from None
    except (ValueError, UnicodeDecodeError) as exc:
        not_utf8 = utf8_problem(raw) if isinstance(raw, bytes) else None  # UTF-16 read as UTF-8: why, not where
        raise HTTPProblem(400, "json-malformed", not_utf8 or f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise HTTPProblem(400, "json-malformed", "the body is JSON nested too deeply") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                  for e in exc.errors()]
        raise HTTPProblem(422, "invalid-request", "the body does not match the API", errors=errors) from None
