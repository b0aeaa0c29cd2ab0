"""The recording middleware: the only source of trace evidence.

A pure ASGI middleware. It bounds every request body, and for every request under
``/s/{session_id}/`` records the exchange (request, response, validation outcome, timing) in
that session's trace. Secrets never enter a trace: bearer tokens are recorded as their kind,
the session they belong to and a hash prefix; Basic credentials as the client id only; secret
form fields and JSON members (client_secret, code_verifier, issued tokens) as a hash prefix, and so
every JWT and the session client's Basic credential wherever else they appear.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformity.counting import KeyedCounts
from conformity.errors import SignatureError
from conformity.jsonio import MAX_DEPTH, depth
from conformity.signing import require_canonicalisable
from sandbox.clock import timestamp
from sandbox.credentials import SECRET_SHAPED, SHORTEST, candidates, secret_hash
from sandbox.deps import (
    REQUEST_BODY,
    REQUEST_JSON,
    REQUEST_SESSION,
    REQUEST_TOKEN,
    bearer_token,
    closure,
    expiry,
    store_call,
)
from sandbox.network import client_gone, drop, network_fault_pending, reset, take_network_fault, until_given_up
from sandbox.parsed import parse_body, parse_json
from sandbox.problems import MEDIA_TYPE, HTTPProblem, recording_full
from sandbox.store import SessionGone, Store

log = logging.getLogger("usine.sandbox.recording")

SESSION_PATH = re.compile(r"^/s/(?P<sid>[A-Za-z0-9_\-]+)/(?P<service>[a-z]+)")
REDACTED_HEADERS = {"authorization", "cookie", "proxy-authorization", "set-cookie"}
KEPT_RESPONSE_HEADERS = {"content-type", "location", "retry-after", "www-authenticate", "cache-control", "etag"}
#: members (JSON, form fields, query parameters) whose values are secrets wherever they appear
SECRET_FIELDS = {"client_secret", "access_token", "refresh_token", "session_token", "admin_token", "token",
                 "password", "code_verifier", "id_token"}


#: how deep a JSON body may nest to be recorded as JSON (deeper: as its text): its trace stays readable where the agency
#: reads it (:data:`conformity.jsonio.MAX_DEPTH`, the trace's own levels above a body included), and redacting it
#: (:func:`redact`, recursive) stays far from Python's recursion limit
BODY_MAX_DEPTH = MAX_DEPTH - 8


def encode_body(raw: bytes, content_type: str, parsed: tuple[bytes, Any] | None = None, *,
                sent: bool = False) -> dict[str, Any]:
    """A body as trace JSON: parsed JSON, form fields, text, or base64 for binary. ``parsed``: bytes and the value
    a service already parsed them to (used when they are these bytes). ``sent``: a body a client sent, whose JSON
    naming a member twice is recorded as its text (both values as sent), not as one of them
    (:func:`sandbox.parsed.parse_body`)."""
    if not raw:
        return {}
    ct = content_type.split(";")[0].strip().lower()
    if ct == "application/json" or ct.endswith("+json"):
        try:
            value = parsed[1] if parsed is not None and parsed[0] == raw else (parse_body if sent else parse_json)(raw)
            require_canonicalisable(value)  # a trace must stay signable: no NaN, no integer beyond 2**53, no lone surrogate
            if depth(value) <= BODY_MAX_DEPTH:
                return {"json": value}
        except (ValueError, UnicodeDecodeError, RecursionError, SignatureError):
            pass  # recorded as its text (below), as is JSON nested deeper than BODY_MAX_DEPTH
    if ct == "application/x-www-form-urlencoded":
        try:
            return {"form": parse_qs(raw.decode("utf-8"), keep_blank_values=True)}
        except UnicodeDecodeError:
            pass
    if ct.startswith("text/") or ct.endswith("xml") or ct in ("application/json", "application/jwt"):
        try:
            return {"text": raw.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"base64": base64.b64encode(raw).decode("ascii")}


def redacted(secret: str) -> str:
    return f"[redacted sha256:{secret_hash(secret)[:16]}]"


def redact(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret field masked and every known secret string replaced by its hash prefix."""
    if isinstance(value, dict):
        return {k: _mask(v) if isinstance(k, str) and k.lower() in SECRET_FIELDS else redact(v, secrets)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, redacted(secret))
    return value


def survey(value: Any) -> tuple[list[str], bool]:
    """One walk over an exchange for :func:`redact`: the strings (member names included, as :func:`_strings` gives
    them) long enough to hold a secret the sandbox issues, and whether a member is named as a secret
    (:data:`SECRET_FIELDS`)."""
    long: list[str] = []
    named = False
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) >= SHORTEST:
                long.append(node)
        elif isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str):
                    if len(k) >= SHORTEST:
                        long.append(k)
                    named = named or k.lower() in SECRET_FIELDS
                elif len(text := str(k)) >= SHORTEST:
                    long.append(text)
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
    return long, named


def unredacted_text(value: dict[str, Any], secrets: list[str]) -> str | None:
    """The JSON text :func:`sandbox.store.dump_own` writes of ``value`` when :func:`redact` has nothing to change in it
    (no member named as a secret: the caller knows, :func:`survey`; no secret in any string), else None.

    Each secret is looked for in the text itself: JSON escapes a string character by character, so a string that
    holds the secret is written with the secret's own escaped text inside it (a find in a key or across two strings
    only sends the exchange the slow way, :func:`redact`)."""
    try:
        text = orjson.dumps(value)
        if any(orjson.dumps(secret)[1:-1] in text for secret in secrets):
            return None
    except TypeError:  # what orjson cannot write (an integer beyond 64 bits, a lone surrogate): the slow way
        return None
    return text.decode("utf-8")


#: JWTs (the ID tokens the sandbox signs) and base64 runs (an ``Authorization: Basic`` credential)
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
BASE64_LIKE = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")


def basic_secret(candidate: str) -> str | None:
    """The secret of a Basic credential (base64 of ``client_id:secret``), or None when ``candidate`` is not one."""
    try:
        decoded = base64.b64decode(candidate, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    _, colon, secret = decoded.partition(":")
    return secret if colon else None


def redact_issued(value: Any, session: dict[str, Any], store: Store) -> Any:
    """``value`` (a harness note: what the software answered, wrote on its error output or in its logs) with every
    secret the sandbox issued replaced by its hash prefix: the session's client secret (also inside a Basic
    credential) and session token, every token and code of its store, any JWT (the ID tokens it signed).

    The sandbox keeps only hashes of what it issued, so a secret-shaped string is recognised by its hash.
    """
    own = {h for h in (session.get("client_secret_sha256"), session.get("session_token_sha256")) if h}
    strings = list(_strings(value))
    by_hash = {secret_hash(c): c for c in candidates(strings)}
    issued = {by_hash[h] for h in (own & by_hash.keys()) | (store.known_hashes(by_hash) if by_hash else set())}

    def basic(m: re.Match[str]) -> str:
        secret = basic_secret(m.group(0))
        return redacted(secret) if secret is not None and secret_hash(secret) in own else m.group(0)

    def text(t: str) -> str:
        t = JWT_LIKE.sub(lambda m: redacted(m.group(0)), t)
        t = BASE64_LIKE.sub(basic, t)
        return SECRET_SHAPED.sub(lambda m: redacted(m.group(0)) if m.group(0) in issued else m.group(0), t)

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return text(v) if isinstance(v, str) else v

    return walk(value)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return redacted(value)
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value if value is None else "[redacted]"


def describe_auth(header: str, store: Store, session_id: str,
                  known: tuple[str, dict[str, Any] | None] | None = None) -> dict[str, Any] | None:
    """What credential a request carried, without the secret itself; ``known``: a bearer token and its record as
    read when the request arrived (not read again)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if known is not None and known[0] == value:
            record = known[1]
        else:
            record = store.get_token(value) if value else None
        out: dict[str, Any] = {"scheme": "Bearer", "token_sha256": secret_hash(value)[:16]}
        if record is None:
            out["kind"] = "unknown"
        else:
            out["kind"] = record["kind"]
            out["session"] = "same" if record["scope"] == session_id else "other"
            out["expired"] = record["expired"]
        return out
    if scheme.lower() == "basic":
        try:
            client_id = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            client_id = None
        return {"scheme": "Basic", "client_id": client_id}
    return {"scheme": scheme or "unknown"}


def _headers(scope: Scope, *, first: bool) -> dict[str, str]:
    """A request's header fields by lowercase name, a repeated one as its ``first`` value (the one Starlette's
    ``request.headers`` gives the services) or as every value joined by ", " (RFC 9110 §5.3: as sent)."""
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        if name not in out:
            out[name] = value
        elif not first:
            out[name] += ", " + value
    return out


def _query(query_string: bytes) -> dict[str, list[str]]:
    """A request's query parameters as the trace records them (none: no parsing)."""
    return parse_qs(query_string.decode("latin-1"), keep_blank_values=True) if query_string else {}


def _service_outcome(state: dict[str, Any], status: int) -> str:
    """The outcome the service gave the exchange, or the one its status says (``accepted``, ``http-<status>``)."""
    return state.get("outcome") or ("accepted" if 200 <= status < 400 else f"http-{status}")


class InFlight(KeyedCounts):
    """The requests of each session this process is handling: arrived, not yet recorded in the trace.

    A harness note ends a driver step; it waits until none is left (:func:`sandbox.admin.post_note`), so that an
    exchange the software started during the step is recorded inside it, however late the sandbox is with it.
    Counted as the request reaches the middleware, before anything can yield to another request: a request the
    software sent before its driver returned reaches it before the note the harness posts afterwards. (One lock: the
    listeners of one app each run their own event loop, in their own thread.)
    """


class RecordingMiddleware:
    """Bounds request bodies and records session exchanges in the trace store."""

    def __init__(self, app: ASGIApp, *, store: Store, max_body_bytes: int, in_flight: InFlight | None = None,
                 max_session_bytes: int = 2**62, session_ttl: float = float("inf")):
        self.app, self.store, self.max_body, self.max_session_bytes = app, store, max_body_bytes, max_session_bytes
        self.session_ttl = session_ttl
        self.in_flight = in_flight if in_flight is not None else InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = SESSION_PATH.match(scope["path"])
        if match is None:
            await self._handle(scope, receive, send, None, lambda: None)
            return
        sid, counted = match["sid"], True
        self.in_flight.enter(sid)  # before the first await (see InFlight)

        def settled() -> None:
            """Recorded (or held, which the store tracks): a harness note no longer waits for it."""
            nonlocal counted
            if counted:
                counted = False
                self.in_flight.leave(sid)

        try:
            await self._handle(scope, receive, send, match, settled)
        finally:
            settled()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str] | None,
                      settled: Callable[[], None]) -> None:
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if len(headers) < len(scope.get("headers", ())):  # a field repeated: read its first value, as the services do
            headers = _headers(scope, first=True)
        token = bearer_token(headers.get("authorization", ""))
        # the session, the bearer token's record and what the session recorded so far, one read: the access-token
        # check and the trace use this one
        session, record, kept = (await store_call(self.store, self.store.arrival, match["sid"], token) if match
                                 else (None, None, 0))
        if session is not None and kept >= self.max_session_bytes:  # its trace is full: nothing more of it recorded
            await self._refuse(scope, send, recording_full(session["id"], self.max_session_bytes))
            return
        if session is not None and (expired := expiry(session, self.session_ttl)) is not None:
            # expired: refused before its body is read, unrecorded — its trace stays what it was at its expiry (what
            # the harness exported), and a request arriving then writes nothing for a session the sweep may delete
            await self._refuse(scope, send, expired)
            return
        if session is not None and (closed := closure(session)) is not None:
            # closed (by its harness, or as its run was finished): refused as expired is, unrecorded — its trace was
            # exported as it was closed, and nothing the software sends after joins it
            await self._refuse(scope, send, closed)
            return
        session_id = session["id"] if session else None
        if match and token:
            scope.setdefault("state", {})[REQUEST_TOKEN] = (token, record)

        read, too_large = await self._read_body(receive, headers)
        incomplete = read is None
        body = read or b""
        if not too_large and not incomplete:
            scope.setdefault("state", {})[REQUEST_BODY] = body
        response: dict[str, Any] = {"status": 0, "headers": {}, "body": b""}
        network = (await store_call(self.store, take_network_fault, self.store, session, match["service"], scope["method"])
                   if session and match and not incomplete
                   and network_fault_pending(session, match["service"], scope["method"]) else None)
        if session is not None and network is None:
            # the services of this request read the session from here: no second read (its faults as of now; a
            # fault they consume is taken atomically in the store, as before)
            scope.setdefault("state", {})[REQUEST_SESSION] = session
        held: list[Message] = []
        recorded = False
        request_body = body

        async def commit() -> None:
            """Write the exchange into its trace, once: before the software can see how it ended (its answer, a
            reset, a closed connection), so that whatever the software or its harness does next comes after it."""
            nonlocal recorded
            if session and match and not recorded:
                recorded = True
                await store_call(self.store, self._record, scope, headers, request_body, response, session,
                                 match["service"], started,
                                 "body-too-large" if too_large else "request-incomplete" if incomplete else None)
            settled()

        replayed = False

        async def replay() -> Message:
            """The body read on arrival, once; then the connection's own messages (its disconnect): a response that
            listens for the client going away while it streams (Starlette's file and streaming responses) waits for
            it there — given the empty body again and again, it spun and held the event loop, every request with it."""
            nonlocal body, replayed
            if replayed:
                return await receive()
            replayed = True
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = {k.decode("latin-1").lower(): v.decode("latin-1")
                                       for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body" and session_id:
                response["body"] += message.get("body", b"")
            if network:
                held.append(message)  # the answer the connection fault keeps from the software
                return
            if message["type"] == "http.response.start" and session_id and client_gone(receive):
                # gone before the first byte of the answer (once the headers left, an empty body is all read)
                self._gave_up(scope, message["status"], started)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._ended(scope, started)  # stamped as the answer leaves, not when the record is written
                await commit()
            await send(message)

        scope.setdefault("state", {})
        if too_large:
            await self._refuse_too_large(scope, capture)
        elif incomplete:  # the software left before its request was whole: nothing is done, nothing answered
            scope["state"]["outcome"] = "request-incomplete"
            self._ended(scope, started)
        elif network == "reset":
            scope["state"]["outcome"] = "connection-reset"
            scope["state"]["outcome_details"] = {"fault": "reset"}
            self._ended(scope, started)
            await commit()
            reset(receive)
            await until_given_up(receive, 1.0)  # the server sees the connection gone: it answers nothing
        else:
            await self.app(scope, replay, capture)
            if network:
                assert session is not None  # a network fault is only taken for a known session
                if network == "stall":
                    settled()  # held in the store until the software gives up (notes wait for it there)
                await self._withhold(scope, receive, send, network, held, started, commit, self.store, session["id"])
        await commit()

    @staticmethod
    def _ended(scope: Scope, started: float) -> None:
        """The exchange ends now (its time and duration), whatever the middleware still waits for."""
        scope["state"]["ended"] = (timestamp(), round((time.perf_counter() - started) * 1000, 3))

    @staticmethod
    def _gave_up(scope: Scope, status: int, started: float) -> None:
        """The software left before the answer was ready (it gave up on a slow sandbox): it never read it."""
        state = scope["state"]
        service_outcome = _service_outcome(state, status)
        state["outcome_details"] = dict(state.get("outcome_details") or {}) | {
            "service_outcome": service_outcome, "waited_s": round(time.perf_counter() - started, 3),
            "answered_after_client_left": True}
        state["outcome"] = "client-gave-up"

    @staticmethod
    async def _withhold(scope: Scope, receive: Receive, send: Send, network: str, held: list[Message],
                        started: float, commit: Callable[[], Awaitable[None]], store: Store, session_id: str) -> None:
        """A processed request's answer, dropped or held until the software gives up (:mod:`sandbox.network`);
        ``commit`` records the exchange (before the software can see its end)."""
        state = scope["state"]
        details = dict(state.get("outcome_details") or {}) | {"fault": network, "service_outcome": state.get("outcome")}
        if network == "dropped_replies":
            state["outcome"], state["outcome_details"] = "reply-dropped", details
            RecordingMiddleware._ended(scope, started)
            await commit()
            drop(receive)
            await until_given_up(receive, 1.0)
            return
        # until its end is known, the exchange is held in the store: a harness note waits for it (whichever worker
        # process the note reaches), so that the trace keeps the order in which things happened
        held_id = secrets.token_hex(8)
        store.hold(session_id, held_id)
        try:
            gave_up, waited = await until_given_up(receive)
        except BaseException:
            store.release(session_id, held_id)
            raise
        try:
            await RecordingMiddleware._held_end(scope, send, held, started, commit, details, gave_up, waited)
        finally:
            store.release(session_id, held_id)

    @staticmethod
    async def _held_end(scope: Scope, send: Send, held: list[Message], started: float,
                        commit: Callable[[], Awaitable[None]],
                        details: dict[str, Any], gave_up: bool, waited: float) -> None:
        state = scope["state"]
        if gave_up:
            state["outcome"], state["outcome_details"] = "client-gave-up", details | {"waited_s": waited}
            await commit()
            return
        state["outcome_details"] = details | {"late_by_s": waited}  # the software waited: the answer goes, late
        RecordingMiddleware._ended(scope, started)
        await commit()
        for message in held:
            await send(message)

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> tuple[bytes | None, bool]:
        """The request's body and whether it is over the limit; None for the body when the connection closed before
        the body ended (an incomplete request: never handed to the app as if it were whole)."""
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            return b"", True
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False

    async def _refuse_too_large(self, scope: Scope, send: Send) -> None:
        scope["state"]["outcome"] = "body-too-large"
        await self._refuse(scope, send, HTTPProblem(413, "body-too-large",
                                                    f"request bodies are limited to {self.max_body} bytes"))

    @staticmethod
    async def _refuse(scope: Scope, send: Send, problem: HTTPProblem) -> None:
        """Answer a problem document without handing the request to the app."""
        body = json.dumps(problem.body(scope["path"])).encode()
        await send({"type": "http.response.start", "status": problem.status,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, headers: dict[str, str], body: bytes, response: dict[str, Any],
                session: dict[str, Any], service: str, started: float, omitted: str | None) -> None:
        """Write one exchange into its session's trace; ``omitted``: why its request body is not recorded. A session
        swept while its request was served keeps nothing of it (:class:`sandbox.store.SessionGone`)."""
        try:
            self._append(scope, headers, body, response, session, service, started, omitted)
        except SessionGone:
            log.info("test session %s was swept while a request of it was served: the request is not recorded",
                     session["id"])

    def _append(self, scope: Scope, headers: dict[str, str], body: bytes, response: dict[str, Any],
                session: dict[str, Any], service: str, started: float, omitted: str | None) -> None:
        """:meth:`_record`'s work: the exchange written, its secrets redacted."""
        session_id = session["id"]
        state = scope.get("state", {})
        status = response["status"]
        outcome = _service_outcome(state, status)
        ended, duration = state.get("ended") or (timestamp(), round((time.perf_counter() - started) * 1000, 3))
        auth = describe_auth(headers.get("authorization", ""), self.store, session_id,
                             scope.get("state", {}).get(REQUEST_TOKEN))
        sent = headers
        if len(headers) < len(scope.get("headers", ())):  # a field repeated: recorded as sent, every value
            sent = _headers(scope, first=False)
            repeated = sum(1 for k, _ in scope["headers"] if k.lower() == b"authorization")
            if auth is not None and repeated > 1:
                auth["repeated"] = repeated  # the first is the one described, the one the services read
        exchange: dict[str, Any] = {
            "kind": "http",
            "time": ended,
            "service": service,
            "request": {
                "method": scope["method"],
                "path": scope["path"],
                "query": _query(scope.get("query_string", b"")),
                "headers": {k: v for k, v in sent.items() if k not in REDACTED_HEADERS},
                "auth": auth,
                "body": {"omitted": omitted} if omitted else encode_body(body, headers.get("content-type", ""),
                                                                                    state.get(REQUEST_JSON), sent=True),
            },
            "response": {
                "status": status,
                "headers": {k: v for k, v in response["headers"].items() if k in KEPT_RESPONSE_HEADERS},
                "body": {"omitted": "trace-export"} if service == "trace" and 200 <= status < 300
                else encode_body(b"" if scope["method"] == "HEAD" else response["body"],  # HEAD: no body sent
                                 response["headers"].get("content-type", "")),
            },
            "outcome": outcome,
            "duration_ms": duration,
        }
        if state.get("outcome_details"):
            exchange["outcome_details"] = state["outcome_details"]
        strings, named = survey(exchange)
        known, unresolved = self._secrets(scope, headers, session, strings)
        text = None if named else unredacted_text(exchange, known)
        # nothing to redact (the usual exchange): the text already written is stored, unless one of the secret-shaped
        # strings the sandbox does not know in clear is a token it issued — looked up in the append itself
        if text is not None and self.store.append_exchange_text_unless_issued(session_id, text, unresolved) is not None:
            return
        issued = [unresolved[h] for h in self.store.known_hashes(unresolved)] if unresolved else []
        secrets = _longest_first([*known, *issued])
        # checked: its bodies passed require_canonicalisable (or are text/base64), the rest the middleware built
        self.store.append_exchange(session_id, redact(exchange, secrets), checked=True)

    def _secrets(self, scope: Scope, headers: dict[str, str], session: dict[str, Any],
                 strings: list[str]) -> tuple[list[str], dict[str, str]]:
        """The secret strings in this exchange (``strings``: its strings long enough to hold one, :func:`survey`) that
        must never enter its trace: those known without the store's tokens (longest first), and the secret-shaped
        strings left to look up there, by their hash (what :meth:`sandbox.store.Store.known_hashes` takes).

        The admin token and the request's bearer credential are known in clear, the session's client secret and
        session token by the hashes the session keeps; every other secret the sandbox issued (access, refresh and
        harness tokens, codes) is stored only as a hash, so each secret-shaped string of the exchange is hashed and
        looked up.
        """
        config = getattr(getattr(scope.get("app"), "state", None), "config", None)
        bearer = headers.get("authorization", "").partition(" ")[2].strip()
        found = [getattr(config, "admin_token", None), bearer, *_jwts_and_basics(strings, session)]
        by_hash = {secret_hash(c): c for c in candidates(strings)}
        if by_hash:
            own = {h for h in (session.get("client_secret_sha256"), session.get("session_token_sha256"))
                   if isinstance(h, str)}
            found += [by_hash.pop(h) for h in own & by_hash.keys()]
        return _longest_first(found), by_hash


def _jwts_and_basics(strings: list[str], session: dict[str, Any]) -> list[str]:
    """Secrets of this exchange that are not runs of an issued length (:func:`sandbox.credentials.candidates`): every
    JWT (the access and ID tokens the provider signs), and a Basic credential of the session's client (base64 of
    ``client_id:client_secret``) — anywhere but the request's own Authorization header (a header of the software's, a
    JSON member or query parameter no rule names), as :func:`redact_issued` redacts them in notes."""
    client = session.get("client_id")
    secret_sha256 = session.get("client_secret_sha256")
    # the credential's base64 starts with its client id's, whole groups of three bytes: one substring test a string
    prefix = base64.b64encode(f"{client}:".encode())[:(len(client) + 1) // 3 * 4].decode() if client else None
    found: list[str] = []
    for text in strings:
        if "eyJ" in text:
            found += JWT_LIKE.findall(text)
        if prefix and secret_sha256 and prefix in text:
            for m in BASE64_LIKE.finditer(text):
                secret = basic_secret(m.group(0)) if m.group(0).startswith(prefix) else None
                if secret is not None and secret_hash(secret) == secret_sha256:
                    found.append(m.group(0))
    return found


def _longest_first(found: Iterable[str | None]) -> list[str]:
    """Secrets to replace: distinct, at least 8 characters, the longest first (one inside another is replaced whole)."""
    return sorted({s for s in found if isinstance(s, str) and len(s) >= 8}, key=len, reverse=True)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for k, v in node.items():
                yield str(k)
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)
