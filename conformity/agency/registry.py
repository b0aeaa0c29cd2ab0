"""The agency's registry (SQLite): submissions, labels, reviews, per-requirement results, and their history.

Every write is one ``BEGIN IMMEDIATE`` transaction (WAL, ``synchronous=FULL``, busy timeout), so several
deciders may write at once; the same bundle is one submission (``UNIQUE bundle_sha256``), so deciding it
twice never issues two labels. States: submitted → verified → labelled / refused, appended to ``history``
(never updated or deleted); a label may then be revoked (reason, date); "expired" is computed from the
label's dates at read time, not stored.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from conformity.agency.decision import Decision
from conformity.agency.migrations import migrate
from conformity.errors import InputError
from conformity.files import create_private, private_dir
from conformity.labels import SignedLabel

STATES = ("submitted", "verified", "labelled", "refused", "revoked", "expired")
_SUBMISSION_COLUMNS = ("s.id, s.bundle_sha256, s.bundle_name, s.vendor_id, s.vendor_name, s.software_id, s.software_name, "
                       "s.version, s.wave, s.category, s.state, s.received, s.decided, s.decision, l.label_id, "
                       "l.expires, l.revoked, l.revoked_reason")


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Submission:
    """One submitted bundle, its decision and (if labelled) its label's validity."""

    id: str
    bundle_sha256: str
    bundle_name: str
    vendor_id: str
    vendor_name: str
    software_id: str
    software_name: str
    version: str
    wave: str
    category: str
    state: str
    received: str
    decided: str | None
    decision: dict[str, Any]
    label_id: str | None
    expires: str | None
    revoked: str | None
    revoked_reason: str | None

    def effective_state(self, now: dt.datetime) -> str:
        """The stored state, or ``revoked`` / ``expired`` for a label no longer valid at ``now``."""
        if self.label_id is None:
            return self.state
        if self.revoked is not None and self.revoked <= iso(now):
            return "revoked"
        if self.expires is not None and now.date() > dt.date.fromisoformat(self.expires):
            return "expired"
        return self.state


@dataclass(frozen=True, slots=True)
class Recorded:
    """The submission a decision is recorded as; ``created`` False when the bundle was already decided."""

    submission: Submission
    label: dict[str, Any] | None
    created: bool


class Registry:
    """One registry database (use as a context manager)."""

    def __init__(self, path: Path, *, timeout: float = 60.0):
        self.path = path
        private_dir(path.parent)
        create_private(path)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=timeout)
        except sqlite3.Error as exc:
            raise InputError(f"cannot open the registry: {exc}", file=path) from exc
        try:
            self.db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(self.db, path)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise InputError(f"not a usable SQLite registry: {exc}", file=path) from exc
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``): committed whole or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ reads
    def _submissions(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Submission]:
        rows = self.db.execute(f"SELECT {_SUBMISSION_COLUMNS} FROM submissions s LEFT JOIN labels l ON l.submission = s.id "
                               f"{where} ORDER BY s.received, s.id", args).fetchall()
        return [Submission(*r[:13], json.loads(r[13] or "{}"), *r[14:])  # type: ignore[call-arg]
                for r in rows]

    def by_bundle(self, sha256: str) -> Submission | None:
        found = self._submissions("WHERE s.bundle_sha256 = ?", (sha256,))
        return found[0] if found else None

    def get(self, ident: str) -> Submission:
        """A submission by its id or by its label's id."""
        found = self._submissions("WHERE s.id = ? OR l.label_id = ?", (ident, ident))
        if not found:
            raise InputError(f"no submission or label {ident!r} in the registry", file=self.path)
        return found[0]

    def submissions(self, wave: str | None = None, state: str | None = None,
                    now: dt.datetime | None = None) -> list[Submission]:
        now = now or dt.datetime.now(dt.UTC)
        subs = self._submissions("WHERE s.wave = ?", (wave,)) if wave else self._submissions()
        return [s for s in subs if state is None or s.effective_state(now) == state]

    def label_doc(self, label_id: str) -> dict[str, Any]:
        """What a label says (its signed payload)."""
        row = self.db.execute("SELECT doc FROM labels WHERE label_id = ?", (label_id,)).fetchone()
        if row is None:
            raise InputError(f"no label {label_id!r} in the registry", file=self.path)
        doc: dict[str, Any] = json.loads(row[0])
        return doc

    def label_signed(self, label_id: str) -> dict[str, Any]:
        """The label as issued: the JWS the agency signed."""
        row = self.db.execute("SELECT signed FROM labels WHERE label_id = ?", (label_id,)).fetchone()
        if row is None:
            raise InputError(f"no label {label_id!r} in the registry", file=self.path)
        if row[0] is None:
            raise InputError(f"label {label_id} was signed in the old (pre-JWS) envelope; issue it again",
                             file=self.path)
        signed: dict[str, Any] = json.loads(row[0])
        return signed

    def labels(self, wave: str | None = None) -> list[tuple[dict[str, Any], str | None, str | None]]:
        """Every label issued (of a wave): what it says, its revocation time and reason, by label id."""
        sql = "SELECT doc, revoked, revoked_reason FROM labels" + (" WHERE wave = ?" if wave else "") + " ORDER BY label_id"
        return [(json.loads(d), r, why) for d, r, why in self.db.execute(sql, (wave,) if wave else ())]

    def history(self, *subjects: str) -> list[tuple[str, str, str, str]]:
        """(at, subject, state, detail) of the given subjects, in the order they were appended."""
        marks = ",".join("?" * len(subjects))
        return self.db.execute(f"SELECT at, subject, state, detail FROM history WHERE subject IN ({marks}) ORDER BY id",
                               subjects).fetchall()

    def reviews(self, label_id: str) -> list[tuple[str, str, str, str, str]]:
        return self.db.execute("SELECT requirement, level, method, state, evidence FROM reviews WHERE label_id = ? "
                               "ORDER BY requirement", (label_id,)).fetchall()

    def results(self, wave: str) -> list[tuple[str, str, str, str, str, str]]:
        """(category, submission, requirement, level, method, verdict) of every decided submission of a wave."""
        return self.db.execute("SELECT s.category, r.submission, r.requirement, r.level, r.method, r.verdict "
                               "FROM results r JOIN submissions s ON s.id = r.submission WHERE s.wave = ? "
                               "ORDER BY s.category, r.requirement", (wave,)).fetchall()

    # ------------------------------------------------------------------ writes
    def record(self, d: Decision, received: str, issue: Callable[[], SignedLabel]) -> Recorded:
        """Record a decision on a verified bundle once; ``issue`` signs the label (called only when labelling)."""
        v, m = d.verification, d.verification.manifest
        assert v.ok and m is not None
        with self.write() as db:
            existing = self.by_bundle(v.bundle_sha256)
            if existing is not None:
                label = self.label_doc(existing.label_id) if existing.label_id else None
                return Recorded(existing, label, False)
            issued = issue() if d.outcome == "labelled" else None
            label = issued.doc if issued else None
            decision = {"outcome": d.outcome, "reasons": [[p.file, p.where, p.message] for p in d.reasons],
                        "failed": list(d.failed), "warnings": list(d.warnings),
                        "requirements": [{"id": r["id"], "level": r["level"], "method": r["method"],
                                          "verdict": r["verdict"], **({"evidence": r["evidence"]} if "evidence" in r else {})}
                                         for r in v.rows],
                        "pending_reviews": list(d.pending) if label else [],
                        "label_id": label["label_id"] if label else None, "run_started": v.run_started}
            sw = m["software"]
            db.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (d.submission, v.bundle_sha256, v.bundle.name, m["vendor"]["id"], m["vendor"]["name"], sw["id"],
                        sw["name"], sw["version"], m["wave"], m["category"], d.outcome, received, d.decided,
                        json.dumps(decision, ensure_ascii=False, sort_keys=True)))
            self._history(d.submission, "submitted", received, f"bundle {v.bundle.name} sha256 {v.bundle_sha256}")
            self._history(d.submission, "verified", v.verified_at, f"{len(v.rows)} requirement verdicts re-derived")
            db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)",
                           [(d.submission, r["id"], r["level"], r["method"], r["verdict"]) for r in v.rows])
            if label is None:
                why = [f["id"] for f in d.failed] or [p.message for p in d.reasons]
                self._history(d.submission, "refused", d.decided, "; ".join(why))
            else:
                assert issued is not None
                db.execute("INSERT INTO labels (label_id, submission, wave, category, vendor_id, software_id, version, "
                           "issued, expires, doc, signed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (label["label_id"], d.submission, m["wave"], m["category"], m["vendor"]["id"], sw["id"],
                            sw["version"], label["issued"], label["expires"],
                            json.dumps(label, ensure_ascii=False, sort_keys=True), json.dumps(issued.signed)))
                db.executemany("INSERT INTO reviews (label_id, requirement, level, method, evidence) VALUES (?, ?, ?, ?, ?)",
                               [(label["label_id"], p["id"], p["level"], p["method"], p["evidence"]) for p in d.pending])
                self._history(d.submission, "labelled", d.decided, f"label {label['label_id']}")
                self._history(label["label_id"], "issued", label["issued"], f"expires {label['expires']}")
            created = self.by_bundle(v.bundle_sha256)
            assert created is not None
        return Recorded(created, label, True)

    def revoke(self, label_id: str, reason: str, when: dt.datetime) -> Submission:
        """Revoke a label (once): reason and time recorded, history appended."""
        if not reason.strip():
            raise InputError("a revocation needs a reason", where="--reason")
        with self.write() as db:
            row = db.execute("SELECT revoked FROM labels WHERE label_id = ?", (label_id,)).fetchone()
            if row is None:
                raise InputError(f"no label {label_id!r} in the registry", file=self.path)
            if row[0] is not None:
                raise InputError(f"label {label_id} was already revoked on {row[0]}", file=self.path)
            db.execute("UPDATE labels SET revoked = ?, revoked_reason = ? WHERE label_id = ?",
                       (iso(when), reason.strip(), label_id))
            self._history(label_id, "revoked", iso(when), reason.strip())
        return self.get(label_id)

    def _history(self, subject: str, state: str, at: str, detail: str) -> None:
        self.db.execute("INSERT INTO history (at, subject, state, detail) VALUES (?, ?, ?, ?)", (at, subject, state, detail))
