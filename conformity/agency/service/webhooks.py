"""Webhooks for the payment agency: each label event POSTed, signed, retried with backoff until delivered.

Deliveries follow the Standard Webhooks convention: the body is the CloudEvent (JSON), with headers
``webhook-id`` (the event id), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,`` + base64 of HMAC-SHA256 over ``id.timestamp.body`` with the webhook's secret), so a receiver
checks origin, integrity and freshness with any Standard Webhooks library. A 2xx answer delivers; any
other answer, a network error or no answer within the deadline (10 s in all: the answer's body is never
read) is retried after 30 s, 1 min, 2 min, … (at most ``MAX_ATTEMPTS``), then the delivery is marked failed
(the pull feed ``/api/v1/events`` still has the event). The due deliveries are sent at once: a slow receiver
delays no other. A delivery is
claimed inside a write transaction, so several workers never send it twice at once: the claim leases it (not due
again for ``LEASE``), and its outcome is recorded only while that lease is still the delivery's (the attempts and
next attempt the claim wrote, neither delivered nor failed since). A worker that paused past its lease, the delivery
claimed again meanwhile, records nothing (logged): never a delivered delivery turned back into a retry, nor an
attempt counted twice. A delivery is thus sent at least once, and may be sent again: a receiver drops a repeated
``webhook-id``. No receiver is on a cloud metadata, link-local, unspecified or multicast address (refused when
registered, and not called if its name resolves there later).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from conformity.agency.registry import iso
from conformity.db.connection import Connection, Database
from conformity.errors import InputError

log = logging.getLogger("usine.agency.webhooks")
MAX_ATTEMPTS = 8
BASE_DELAY = dt.timedelta(seconds=30)
LEASE = dt.timedelta(minutes=2)  # a claimed delivery is retried by another worker if not settled by then


#: the cloud metadata services' addresses that are not link-local (AWS's IPv6 one is a unique local address)
METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254")})


def refused_address(host: str | None) -> str | None:
    """Why the agency does not POST to a webhook on ``host`` (the address given, or any the name resolves to now): a
    cloud metadata service, a link-local, unspecified, multicast or reserved address; None otherwise (a name that
    does not resolve now is left to the delivery, which says so)."""
    if not host:
        return "the URL names no host: not a receiver the agency calls"
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            addresses = {ipaddress.ip_address(str(i[4][0])) for i in socket.getaddrinfo(host, None,
                                                                                         type=socket.SOCK_STREAM)}
        except (OSError, UnicodeError, ValueError):
            return None
    for address in sorted(addresses, key=str):
        seen = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
        if seen in METADATA or seen.is_link_local or seen.is_unspecified or seen.is_multicast or seen.is_reserved:
            return (f"{host} is the address {seen} (cloud metadata, link-local, unspecified, multicast or reserved): "
                    "not a receiver the agency calls")
    return None


def add_webhook(db: Connection, url: str) -> tuple[int, str]:
    """Register a receiver (https, or http on loopback; never on a cloud metadata, link-local, unspecified or
    multicast address); its id and secret (shown once, ``whsec_`` + base64)."""
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        why = refused_address(parts.hostname)
        raise InputError(f"a webhook URL is https:// (http:// only on loopback, for tests){'; ' + why if why else ''}",
                         where="URL")
    why = refused_address(parts.hostname)
    if why is not None:
        raise InputError(why, where="URL")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with db.write():
        ident = db.execute("INSERT INTO webhooks (url, secret, created) VALUES (?, ?, ?) RETURNING id",
                           (url, secret, iso(dt.datetime.now(dt.UTC)))).fetchone()[0]
    return int(ident), secret


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@dataclass(frozen=True, slots=True)
class Attempt:
    webhook: int
    event: int
    ok: bool
    detail: str
    #: False: its lease had passed and another worker had claimed the delivery again; this outcome was not recorded
    recorded: bool = True


def _claim(db: Connection, now: dt.datetime, limit: int) -> list[tuple[Any, ...]]:
    """The due deliveries (at most ``limit``), each leased until ``now + LEASE`` (what :func:`_settle` checks)."""
    with db.write():
        rows: list[tuple[Any, ...]] = db.execute(
            "SELECT d.webhook, d.event, d.attempts, w.url, w.secret, e.data FROM deliveries d "
            "JOIN webhooks w ON w.id = d.webhook JOIN events e ON e.seq = d.event "
            "WHERE d.delivered IS NULL AND d.failed IS NULL AND d.next_attempt <= ? AND w.disabled IS NULL "
            "ORDER BY d.event LIMIT ?", (iso(now), limit)).fetchall()
        for r in rows:  # leased: not due again until settled or the lease passes
            db.execute("UPDATE deliveries SET next_attempt = ? WHERE webhook = ? AND event = ?",
                       (iso(now + LEASE), r[0], r[1]))
    return rows


async def _post(client: Any, url: str, body: bytes, headers: dict[str, str], deadline: float) -> tuple[bool, str]:
    """One delivery within ``deadline`` seconds in all (connect, send, the answer's status line and headers); the
    answer's body is never read: a receiver that answers slowly, or at length, costs its own delivery only."""
    import httpx

    try:
        async with asyncio.timeout(deadline):
            async with client.stream("POST", url, content=body, headers=headers) as r:
                return 200 <= r.status_code < 300, f"HTTP {r.status_code}"
    except TimeoutError:
        return False, f"no answer within {deadline:g} s"
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]


async def _post_all(sends: list[tuple[str, bytes, dict[str, str]]], timeout: float) -> list[tuple[bool, str]]:
    """Every delivery at once (each webhook's receiver answers for its own), each within ``timeout``."""
    import httpx

    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        return list(await asyncio.gather(*(_post(client, url, body, headers, timeout) for url, body, headers in sends)))


def deliver_due(database: Database, *, now: dt.datetime | None = None, limit: int = 50,
                timeout: float = 10.0) -> list[Attempt]:
    """Send every delivery that is due, at once, each within ``timeout`` seconds in all; record each outcome
    (delivered, or the next attempt, or failed)."""
    now = now or dt.datetime.now(dt.UTC)
    conn = database.connect()
    out = []
    try:
        rows = _claim(conn, now, limit)
        ts = int(now.timestamp())
        sends, refused = [], {}
        for n, (_, _, _, url, secret, data) in enumerate(rows):
            why = refused_address(urlsplit(url).hostname)  # registered before the rule, or a name moved there since
            if why is not None:
                refused[n] = (False, why)
                continue
            body, msg_id = data.encode(), json.loads(data)["id"]
            sends.append((url, body, {"content-type": "application/cloudevents+json", "webhook-id": msg_id,
                                      "webhook-timestamp": str(ts), "webhook-signature": signature(secret, msg_id, ts,
                                                                                                   body)}))
        posted = iter(asyncio.run(_post_all(sends, timeout)) if sends else [])
        outcomes = [refused[n] if n in refused else next(posted) for n in range(len(rows))]
        for (webhook, event, attempts, *_), (ok, detail) in zip(rows, outcomes, strict=True):
            recorded = _settle(conn, webhook, event, attempts, now, ok, detail)
            out.append(Attempt(webhook, event, ok, detail, recorded))
    finally:
        conn.close()
    return out


def _settle(db: Connection, webhook: int, event: int, attempts: int, now: dt.datetime, ok: bool, detail: str) -> bool:
    """Record an attempt claimed at ``now`` (delivered, the next attempt, or failed) if its lease is still the
    delivery's: what the claim wrote (``attempts``, next attempt ``now + LEASE``), neither delivered nor failed since.
    False, logged and nothing written, when the lease had passed and another worker claimed it again."""
    tries = attempts + 1
    values: tuple[str, ...]
    if ok:
        change, values = "delivered = ?, last_error = NULL", (iso(now),)
    elif tries >= MAX_ATTEMPTS:
        change, values = "failed = ?, last_error = ?", (iso(now), detail)
    else:
        change, values = "next_attempt = ?, last_error = ?", (iso(now + BASE_DELAY * (2 ** (tries - 1))), detail)
    with db.write():
        held: int = db.execute(f"UPDATE deliveries SET attempts = ?, {change} WHERE webhook = ? AND event = ? AND "
                               "attempts = ? AND next_attempt = ? AND delivered IS NULL AND failed IS NULL",
                               (tries, *values, webhook, event, attempts, iso(now + LEASE))).rowcount
    if held != 1:
        log.warning("delivery of event %s to webhook %s: its lease (until %s) passed before its outcome (%s) was "
                    "recorded, and another worker claimed it again; this outcome is not recorded", event, webhook,
                    iso(now + LEASE), detail)
    return held == 1


class Deliverer:
    """A background thread of a service worker that sends due deliveries every few seconds."""

    def __init__(self, database: Database, every: float = 5.0):
        self.database, self.every = database, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="usine-webhooks", daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.every):
            try:
                deliver_due(self.database)
            except Exception:
                log.exception("webhook deliveries failed; retried later")

    def start(self) -> Deliverer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
