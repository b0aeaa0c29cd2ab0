"""Label events for the payment agency: CloudEvents 1.0 (JSON format), appended with the registry change itself.

Two event types, appended in the very transaction that issues or revokes a label (so the feed never
misses or invents one, whichever front end — command line or service — made the change):

``org.usine.label.issued``   ``data.label`` is the signed label (JWS) exactly as issued;
``org.usine.label.revoked``  ``data`` names the label and what it revokes (software version, wave, time, reason).

What a reader relies on is signed: the label inside an issued event is verified with the agency's key
like a label file, and revocations are taken from the agency's current signed revocation list (with
its ``next_update``), of which a revoked event is the prompt, not the proof. Events are read in order
with a cursor (their sequence number, ``seq``) and delivered to webhooks (``conformity.agency.service``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from conformity.db.connection import Connection
from conformity.labels import LabelDoc
from conformity.signing import canonical_json, sha256_hex

ISSUED = "org.usine.label.issued"
REVOKED = "org.usine.label.revoked"
TYPES = (ISSUED, REVOKED)
SPECVERSION = "1.0"


def _source(key_id: str | None) -> str:
    """The agency that signs the labels: a URN naming its key (RFC 7638 thumbprint)."""
    return f"urn:usine:agency:{key_id}" if key_id else "urn:usine:agency"


def _event(kind: str, scope: dict[str, Any], key_id: str | None, time: str, data: dict[str, Any]) -> dict[str, Any]:
    ident = "evt_" + sha256_hex(canonical_json([kind, scope["label_id"], time]))[:24]
    return {"specversion": SPECVERSION, "id": ident, "source": _source(key_id), "type": kind,
            "subject": scope["label_id"], "time": time, "datacontenttype": "application/json",
            "data": {**scope, **data}}


def _scope(doc: LabelDoc) -> dict[str, Any]:
    return {"label_id": doc["label_id"], "vendor_id": doc["vendor"]["id"], "software_id": doc["software"]["id"],
            "versions": list(doc["versions"]), "wave": doc["wave"], "category": doc["category"]}


def issued_event(doc: LabelDoc, signed: dict[str, Any]) -> dict[str, Any]:
    """The event of a label issued: the signed label, and (unverified, for routing) what it covers."""
    return _event(ISSUED, _scope(doc), doc["issuer"]["key_id"], doc["issued"], {"label": signed})


def revoked_event(conn: Connection, label_id: str, revoked: str, reason: str) -> dict[str, Any]:
    """The event of a label revoked (its software version in its wave gets no label until reinstated).

    What it covers is read from the registry's columns, so that labels of any format are announced.
    """
    row = conn.execute("SELECT label_id, vendor_id, software_id, version, wave, category, doc FROM labels "
                       "WHERE label_id = ?", (label_id,)).fetchone()
    scope = {"label_id": row[0], "vendor_id": row[1], "software_id": row[2], "versions": [row[3]], "wave": row[4],
             "category": row[5]}
    key_id = (json.loads(row[6]).get("issuer") or {}).get("key_id")
    return _event(REVOKED, scope, key_id, revoked, {"revoked": revoked, "reason": reason})


def append_event(conn: Connection, event: dict[str, Any], *, webhooks: bool = True) -> int:
    """Append an event (inside the caller's write transaction) and queue it for every active webhook; its seq."""
    assert conn.in_transaction
    seq = conn.execute("INSERT INTO events (id, type, subject, time, data) VALUES (?, ?, ?, ?, ?) RETURNING seq",
                       (event["id"], event["type"], event["subject"], event["time"],
                        json.dumps(event, ensure_ascii=False, sort_keys=True))).fetchone()[0]
    if webhooks:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        conn.execute("INSERT INTO deliveries (webhook, event, attempts, next_attempt) "
                     "SELECT id, ?, 0, ? FROM webhooks WHERE disabled IS NULL", (seq, now))
    return int(seq)


def read_events(conn: Connection, after: int = 0, limit: int = 100,
                types: tuple[str, ...] = TYPES) -> list[tuple[int, dict[str, Any]]]:
    """(seq, event) of the events after ``after``, oldest first, at most ``limit``."""
    marks = ",".join("?" * len(types))
    rows = conn.execute(f"SELECT seq, data FROM events WHERE seq > ? AND type IN ({marks}) ORDER BY seq LIMIT ?",
                        (after, *types, limit)).fetchall()
    return [(int(seq), json.loads(data)) for seq, data in rows]


def last_seq(conn: Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
