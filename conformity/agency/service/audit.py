"""The append-only audit log: who did what to which subject, when, from where (triggers forbid edits)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from conformity.agency.registry import iso
from conformity.db.connection import Connection


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    at: str
    actor: str
    role: str
    action: str
    subject: str
    detail: str
    client: str


def record(db: Connection, actor: str, role: str, action: str, subject: str, detail: str = "", client: str = "",
           when: dt.datetime | None = None) -> None:
    """Append one entry (in its own transaction unless the caller holds one)."""
    args = (iso(when or dt.datetime.now(dt.UTC)), actor, role, action, subject, detail[:4000], client)
    sql = "INSERT INTO audit (at, actor, role, action, subject, detail, client) VALUES (?, ?, ?, ?, ?, ?, ?)"
    if db.in_transaction:
        db.execute(sql, args)
    else:
        with db.write():
            db.execute(sql, args)


def entries(db: Connection, subject: str | None = None, limit: int = 200) -> list[Entry]:
    """The latest entries (of one subject), newest first."""
    where, args = ("WHERE subject = ?", (subject,)) if subject else ("", ())
    rows = db.execute(f"SELECT id, at, actor, role, action, subject, detail, client FROM audit {where} "
                      f"ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [Entry(*r) for r in rows]
