"""The agency's registry (SQLite): submissions, labels, evidence, reviews, per-requirement results, history.

A submission is a run: its id is derived from (vendor, software, version, wave, category, run id), which
the sandbox-signed traces bind, so the same run in any packaging is the same submission (``UNIQUE``
on the identity; the bundle's SHA-256 is kept, only as information). Every write is one
``BEGIN IMMEDIATE`` transaction (WAL, ``synchronous=FULL``, busy timeout), so several deciders and
reviewers may work at once: what a decision reads and what it writes are one transaction.

States of a submission: pending (waits for reviews) → labelled / refused, each change appended to
``history`` (never updated or deleted; a refusal is final). Reviews are appended (the latest review of
a requirement counts, earlier ones stay). A label may be revoked (reason, date): revocation applies to
the software version in the wave, so every label in force for it is revoked and none is issued again
until the agency reinstates the version (``reinstatements``, appended); the revoked label stays
revoked. "expired" is computed from the label's dates at read time, not stored.

The operations here are the agency's vocabulary (record a decision, review, revoke, reinstate), used
by the CLI and by the service (``usine agency serve``) alike. The registry is a SQLite file (the
embedded default) or a PostgreSQL database (``postgresql://…``): the same code and migration steps on
both (``conformity.db``). Issuing or revoking a label appends its CloudEvent to the feed
(``conformity.agency.feed``) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from conformity.agency.decision import Decision, Facts, Review, Waiver, confirmations, iso, latest_reviews
from conformity.agency.feed import append_event, issued_event, revoked_event
from conformity.agency.migrations import migrate
from conformity.agency.persons import SAME_PERSON_PERIOD, PasswordSet, Persons, person_name
from conformity.agency.records import DecisionRecord, RecordedRow, Revocation
from conformity.agency.verify import RunIdentity
from conformity.bundle.evidence import EvidenceFile
from conformity.db.connection import Connection, Database
from conformity.errors import InputError, Problem
from conformity.labels import LabelDoc, SignedLabel

STATES = ("submitted", "verified", "pending", "labelled", "refused", "revoked", "expired")
_SUBMISSION_COLUMNS = ("s.id, s.bundle_sha256, s.bundle_name, s.vendor_id, s.vendor_name, s.software_id, s.software_name, "
                       "s.version, s.wave, s.category, s.state, s.received, s.decided, s.decision, l.label_id, "
                       "l.expires, l.revoked, l.revoked_reason, s.run_id")
#: a submission's current label: the last one issued for it (a reinstated run may hold a second one)
_CURRENT_LABEL = "l.label_id = (SELECT label_id FROM labels WHERE submission = s.id ORDER BY seq DESC LIMIT 1)"
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
MAX_REASON = 4000

__all__ = ["Registry", "Revocation", "Submission", "iso"]


@dataclass(frozen=True, slots=True)
class Submission:
    """One verified run, its decision and (if labelled) its current label's validity."""

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
    decision: DecisionRecord
    label_id: str | None
    expires: str | None
    revoked: str | None
    revoked_reason: str | None
    run_id: str | None = None  # None for submissions recorded before runs were identities (registry schema 4)

    @property
    def identity(self) -> RunIdentity | None:
        if self.run_id is None:
            return None
        return RunIdentity(self.vendor_id, self.software_id, self.version, self.wave, self.category, self.run_id)

    def effective_state(self, now: dt.datetime) -> str:
        """The stored state, or ``revoked`` / ``expired`` for a label no longer valid at ``now``."""
        if self.label_id is None:
            return self.state
        if self.revoked is not None and self.revoked <= iso(now):
            return "revoked"
        if self.expires is not None and now.date() > dt.date.fromisoformat(self.expires):
            return "expired"
        return self.state

    def rows(self) -> tuple[RecordedRow, ...]:
        """Its requirement rows as recorded (id, title, level, method, verdict, evidence wanted)."""
        return self.decision.requirements


def _text(value: str, what: str, option: str, limit: int = MAX_REASON) -> str:
    value = value.strip()
    if not value:
        raise InputError(f"{what} cannot be empty", where=option)
    if len(value) > limit:
        raise InputError(f"{what} is longer than {limit} characters", where=option)
    if any(ord(c) < 32 and c not in "\t\n" or ord(c) == 127 for c in value):
        raise InputError(f"{what} contains a control character", where=option)
    return value


class Registry:
    """One registry database (use as a context manager): a SQLite path, a PostgreSQL URL or a :class:`Database`.

    A :class:`Database` given by a long-running process (the service) pools connections and checks the
    migrations once; a path or URL is opened for this one use.
    """

    def __init__(self, target: Path | str | Database, *, timeout: float = 60.0,
                 guard: Callable[[Connection], None] | None = None):
        #: run first inside every write transaction, holding the lock (raising leaves nothing written): what the
        #: caller checked before it asked for the lock and must still hold — the acting account still active
        self.guard = guard
        self.database = target if isinstance(target, Database) else Database(target, timeout=timeout, pool=0)
        self.path = self.database.path if self.database.path is not None else self.database.where
        self.db: Connection = self.database.connect()
        try:
            if not self.database.migrated:
                migrate(self.db, self.path)
                self.database.migrated = True
        except self.db.errors as exc:
            self.db.close()
            raise self.database.refused(exc, "registry") from exc
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
    def write(self) -> Iterator[Connection]:
        """One write transaction, serialised with every other writer: committed whole or not at all."""
        with self.db.write() as db:
            if self.guard is not None:
                self.guard(db)
            yield db

    def now(self) -> dt.datetime:
        """The time of a read that says what the registry held at that time (a revocation list's ``issued``).

        Taken holding the write lock, as every write stamps its time holding it: a write stamped earlier has
        committed (a read that follows sees it), one not yet committed will be stamped later.
        """
        with self.write():
            return dt.datetime.now(dt.UTC)

    # ------------------------------------------------------------------ reads
    def _submissions(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Submission]:
        rows = self.db.execute(f"SELECT {_SUBMISSION_COLUMNS} FROM submissions s LEFT JOIN labels l ON {_CURRENT_LABEL} "
                               f"{where} ORDER BY s.received, s.id", args).fetchall()
        # the decision column parsed once, here: every reader gets a DecisionRecord
        return [Submission(*r[:13], DecisionRecord.from_json(json.loads(r[13] or "{}")), *r[14:])  # type: ignore[call-arg]  # a row in column order
                for r in rows]

    def by_bundle(self, sha256: str) -> Submission | None:
        """The submission first received in exactly these bytes (a shortcut: identity is the run, see ``find``)."""
        found = self._submissions("WHERE s.bundle_sha256 = ?", (sha256,))
        return found[0] if found else None

    def find(self, identity: RunIdentity) -> Submission | None:
        """The submission of this run, if it was recorded."""
        found = self._submissions("WHERE s.id = ?", (identity.submission_id,))
        return found[0] if found else None

    def get(self, ident: str) -> Submission:
        """A submission by its id or by the id of any label issued for it."""
        found = self._submissions("WHERE s.id = ? OR s.id IN (SELECT submission FROM labels WHERE label_id = ?)",
                                  (ident, ident))
        if not found:
            raise InputError(f"no submission or label {ident!r} in the registry", file=self.path)
        return found[0]

    def submissions(self, wave: str | None = None, state: str | None = None,
                    now: dt.datetime | None = None) -> list[Submission]:
        now = now or dt.datetime.now(dt.UTC)
        subs = self._submissions("WHERE s.wave = ?", (wave,)) if wave else self._submissions()
        return [s for s in subs if state is None or s.effective_state(now) == state]

    def label_doc(self, label_id: str) -> LabelDoc:
        """What a label says (its signed payload)."""
        row = self.db.execute("SELECT doc FROM labels WHERE label_id = ?", (label_id,)).fetchone()
        if row is None:
            raise InputError(f"no label {label_id!r} in the registry", file=self.path)
        doc: LabelDoc = json.loads(row[0])
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

    def labels(self, wave: str | None = None) -> list[tuple[LabelDoc, str | None, str | None]]:
        """Every label issued (of a wave): what it says, its revocation time and reason, by label id."""
        sql = "SELECT doc, revoked, revoked_reason FROM labels" + (" WHERE wave = ?" if wave else "") + " ORDER BY label_id"
        return [(json.loads(d), r, why) for d, r, why in self.db.execute(sql, (wave,) if wave else ())]

    def labels_of(self, submission: str) -> list[tuple[str, str, str | None, str | None]]:
        """(label id, issued, revoked, reinstated) of every label issued for a submission, oldest first."""
        rows: list[tuple[str, str, str | None, str | None]] = self.db.execute(
            "SELECT l.label_id, l.issued, l.revoked, r.at FROM labels l LEFT JOIN reinstatements r "
            "ON r.label_id = l.label_id WHERE l.submission = ? ORDER BY l.seq", (submission,)).fetchall()
        return rows

    def history(self, *subjects: str) -> list[tuple[str, str, str, str]]:
        """(at, subject, state, detail) of the given subjects, in the order they were appended."""
        marks = ",".join("?" * len(subjects))
        rows: list[tuple[str, str, str, str]] = self.db.execute(
            f"SELECT at, subject, state, detail FROM history WHERE subject IN ({marks}) ORDER BY id", subjects).fetchall()
        return rows

    def evidence(self, submission: str) -> list[EvidenceFile]:
        """The evidence files the run bound, by requirement."""
        return [EvidenceFile(*r) for r in self.db.execute(
            "SELECT requirement, file, sha256, bytes, media_type FROM evidence WHERE submission = ? "
            "ORDER BY requirement, file", (submission,))]

    def evidence_data(self, sha256: str) -> bytes:
        row = self.db.execute("SELECT data FROM evidence_blobs WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise InputError(f"no evidence file with SHA-256 {sha256} in the registry", file=self.path)
        return bytes(row[0])

    def reviews(self, submission: str) -> list[Review]:
        """Every review recorded for a submission, in the order recorded (later ones supersede earlier ones)."""
        return [Review(sub, req, level, method, verdict, reason, reviewer, at, tuple(json.loads(evidence)), rid)
                for rid, sub, req, level, method, verdict, reason, reviewer, at, evidence in self.db.execute(
                    "SELECT id, submission, requirement, level, method, verdict, reason, reviewer, at, evidence "
                    "FROM reviews WHERE submission = ? ORDER BY id", (submission,))]

    def persons(self, when: dt.datetime, within: dt.timedelta = SAME_PERSON_PERIOD) -> Persons:
        """Who counts as one person at ``when`` for the four-eyes rule: each account whose password an admin set (by
        reset or creation) less than ``within`` before, with that admin (:mod:`conformity.agency.persons`)."""
        rows = self.db.execute("SELECT a.name, a.login, b.name, b.login, a.password_set_at FROM accounts a "
                               "JOIN accounts b ON b.login = a.password_set_by WHERE a.password_set_at > ? "
                               "ORDER BY a.id", (iso(when - within),)).fetchall()
        return Persons(tuple(PasswordSet(person_name(name, login), login, person_name(by_name, by), by, at)
                             for name, login, by_name, by, at in rows))

    def current_reviews(self, submission: str) -> dict[str, Review]:
        """The review that counts for each reviewed requirement: the latest."""
        return latest_reviews(self.reviews(submission))

    def waivers(self, submission: str) -> dict[str, Waiver]:
        """The waivers the agency recorded for a submission, by requirement."""
        rows = self.db.execute("SELECT requirement, verdict, reason, decider, at FROM waivers WHERE submission = ? "
                               "ORDER BY id", (submission,)).fetchall()
        return {r[0]: Waiver(*r) for r in rows}

    def results(self, wave: str) -> list[tuple[str, str, str, str, str, str]]:
        """(category, submission, requirement, level, method, verdict) of every decided submission of a wave."""
        rows: list[tuple[str, str, str, str, str, str]] = self.db.execute(
            "SELECT s.category, r.submission, r.requirement, r.level, r.method, r.verdict "
            "FROM results r JOIN submissions s ON s.id = r.submission WHERE s.wave = ? "
            "ORDER BY s.category, r.requirement", (wave,)).fetchall()
        return rows

    def blocking_revocation(self, software_id: str, version: str, wave: str) -> Revocation | None:
        """The revoked label of this software version in this wave that was not reinstated, if any."""
        row = self.db.execute(
            "SELECT l.label_id, l.revoked, l.revoked_reason FROM labels l WHERE l.software_id = ? AND l.version = ? "
            "AND l.wave = ? AND l.revoked IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM reinstatements r WHERE r.label_id = l.label_id) ORDER BY l.revoked DESC LIMIT 1",
            (software_id, version, wave)).fetchone()
        return Revocation(*row) if row else None

    def label_in_force(self, identity: RunIdentity, now: dt.datetime) -> tuple[str, str] | None:
        """(label id, submission) of a label not revoked nor expired for this software version, wave, category."""
        for label_id, submission, expires in self.db.execute(
                "SELECT label_id, submission, expires FROM labels WHERE software_id = ? AND version = ? AND wave = ? "
                "AND category = ? AND revoked IS NULL ORDER BY seq",
                (identity.software_id, identity.version, identity.wave, identity.category)):
            if now.date() <= dt.date.fromisoformat(expires):
                return label_id, submission
        return None

    def facts(self, s: Submission) -> Facts:
        """What was established about a recorded run, to decide again without its bundle."""
        identity, facts = s.identity, s.decision.facts
        if identity is None or facts is None:
            raise InputError(f"submission {s.id} was recorded before runs were identities (registry schema 4): it "
                             "cannot be decided again; submit a new run", file=self.path)
        failed = [*s.decision.failed, *s.decision.waived_failures]  # waived: still not passed
        return Facts.from_json(identity, facts, s.rows(), failed, self.evidence(s.id))

    # ------------------------------------------------------------------ writes (inside ``write()``)
    def record(self, d: Decision, received: str, evidence: dict[str, bytes], label: SignedLabel | None) -> Submission:
        """Record the first decision on a verified run: submission, evidence, results, history, label."""
        assert self.db.in_transaction and d.facts is not None and d.outcome in ("pending", "labelled", "refused")
        f, i = d.facts, d.facts.identity
        self.db.execute("INSERT INTO submissions (id, bundle_sha256, bundle_name, vendor_id, vendor_name, software_id, "
                        "software_name, version, wave, category, state, received, decided, decision, run_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (d.submission, f.bundle_sha256, f.bundle_name, i.vendor_id, f.vendor_name, i.software_id,
                         f.software_name, i.version, i.wave, i.category, d.outcome, received, d.decided,
                         _dumps(d.record_json(label.doc["label_id"] if label else None)), i.run_id))
        self._history(d.submission, "submitted", received,
                      f"run {i.run_id} in bundle {f.bundle_name} sha256 {f.bundle_sha256}")
        self._history(d.submission, "verified", received, f"{len(f.rows)} requirement verdicts re-derived"
                      + (f"; {len(f.evidence)} evidence file(s) bound to the run" if f.evidence else ""))
        for e in f.evidence:
            self.db.execute("INSERT INTO evidence_blobs (sha256, data) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            (e.sha256, evidence[e.file]))
        self.db.executemany("INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?)",
                            [(d.submission, e.requirement, e.file, e.sha256, e.bytes, e.media_type) for e in f.evidence])
        self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)",
                            [(d.submission, r.id, r.level, r.method, r.verdict) for r in f.rows])
        self._decided(d, label)
        return self.get(d.submission)

    def add_waivers(self, submission: str, waivers: Sequence[Waiver]) -> None:
        """Record the agency's waivers for a recorded submission (inside the decision's transaction)."""
        assert self.db.in_transaction
        for w in waivers:
            reason, decider = _text(w.reason, "a waiver's reason", "--reason"), _text(w.decider, "a decider", "--decider", 200)
            self.db.execute("INSERT INTO waivers (submission, requirement, verdict, reason, decider, at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (submission, w.requirement, w.verdict, reason, decider, w.at))
            self._history(submission, "waived", w.at, f"{w.requirement} ({w.verdict}) waived by {decider}: {reason}")

    def redecide(self, d: Decision, label: SignedLabel | None) -> Submission:
        """Record a new decision on a recorded run (pending → labelled / refused, or a new label after reinstatement)."""
        assert self.db.in_transaction and d.outcome in ("labelled", "refused", "pending")
        self.db.execute("UPDATE submissions SET state = ?, decided = ?, decision = ? WHERE id = ?",
                        (d.outcome, d.decided, _dumps(d.record_json(label.doc["label_id"] if label else None)),
                         d.submission))
        self._decided(d, label)
        return self.get(d.submission)

    def _decided(self, d: Decision, label: SignedLabel | None) -> None:
        if d.outcome == "pending":
            self._history(d.submission, "pending", d.decided,
                          f"{len(d.awaiting)} MUST requirement(s) await review: " + ", ".join(a.id for a in d.awaiting))
        elif d.outcome == "refused":
            why = ([f.id for f in d.failed] + [f"{r.id} rejected by {r.reviewer}" for r in d.rejected]
                   + [f"{m.id} has no evidence" for m in d.missing_evidence] + [p.message for p in d.reasons])
            self._history(d.submission, "refused", d.decided, "; ".join(why))
        else:
            assert label is not None and d.facts is not None
            doc, i = label.doc, d.facts.identity
            self.db.execute("INSERT INTO labels (label_id, submission, wave, category, vendor_id, software_id, version, "
                            "issued, expires, doc, signed, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                            "(SELECT coalesce(max(seq), 0) + 1 FROM labels))",
                            (doc["label_id"], d.submission, i.wave, i.category, i.vendor_id, i.software_id, i.version,
                             doc["issued"], doc["expires"], _dumps(doc), json.dumps(label.signed)))
            self._history(d.submission, "labelled", d.decided, f"label {doc['label_id']}")
            self._history(doc["label_id"], "issued", doc["issued"], f"expires {doc['expires']}")
            append_event(self.db, issued_event(doc, label.signed))

    # ------------------------------------------------------------------ writes (each its own transaction)
    def review(self, ident: str, requirements: Sequence[str], verdict: Literal["accepted", "rejected"], reason: str,
               reviewer: str, when: dt.datetime | None = None,
               same_person: dt.timedelta = SAME_PERSON_PERIOD) -> list[Review]:
        """Record a reviewer's verdict on document/manual requirements of a submission awaiting reviews.

        All or nothing, in one transaction. Refused (InputError, nothing written): a submission that is not
        pending (a decided one is final), a requirement that does not apply or is proven by automated
        checks, a document requirement without evidence in the run, and — the four-eyes rule — the
        acceptance of a MUST requirement by the reviewer whose acceptance awaits a second reviewer's, or by one who
        counts as the same person (an account and the admin who set its password less than ``same_person`` ago).
        A later review of the same requirement supersedes this one; this one stays in the registry. ``when``: None
        (the default: the service, the CLI) dates the review holding the write lock, as decisions and revocations
        are: never before a decision or review that committed while it waited (a time given, as a test does, is kept).
        """
        if verdict not in ("accepted", "rejected"):
            raise InputError(f"a review accepts or rejects, not {verdict!r}", where="verdict")
        if not requirements:
            raise InputError("name the requirement(s) reviewed", where="REQ-ID")
        reason = _text(reason, "the reason", "--reason")
        reviewer = _text(reviewer, "the reviewer's name", "--reviewer", limit=200)
        with self.write():
            when = when or dt.datetime.now(dt.UTC)  # dated holding the lock
            s = self.get(ident)
            if s.state != "pending":
                raise InputError(f"submission {s.id} is {s.effective_state(when)}: reviews are recorded while it awaits "
                                 "them (pending); a decided submission is final", file=self.path)
            rows = {r.id: r for r in s.rows()}
            evidence = self.evidence(s.id)
            history = self.reviews(s.id)
            persons = self.persons(when, same_person)
            standing, confirmed = latest_reviews(history), confirmations(history, persons)
            problems, todo = [], []
            for requirement in dict.fromkeys(requirements):
                row = rows.get(requirement)
                files = [{"file": e.file, "sha256": e.sha256} for e in evidence if e.requirement == requirement]
                if row is None:
                    problems.append(Problem("", requirement, f"does not apply to {s.wave} {s.category} (submission {s.id})"))
                elif row.method not in ("document", "manual"):
                    problems.append(Problem("", requirement, f"is proven by automated checks (verdict {row.verdict}, "
                                                             "re-derived from the signed traces): it is not reviewed"))
                elif row.method == "document" and not files:
                    problems.append(Problem("", requirement, "is proven by a document and the run carries no evidence "
                                                             "for it: there is nothing to review"))
                elif (verdict == "accepted" and row.level == "MUST" and (first := standing.get(requirement))
                      and first.verdict == "accepted" and requirement not in confirmed
                      and persons.same(first.reviewer, reviewer)):
                    pair = persons.one(first.reviewer, reviewer)
                    problems.append(Problem("", requirement, f"was accepted by {first.reviewer} on {first.at}: "
                                                             + (f"{pair.why()}; " if pair else "")
                                                             + "the second review of a MUST requirement must be by "
                                                               "another " + ("person" if pair else "reviewer")
                                                             + " (four-eyes rule)"))
                else:
                    todo.append((row, files))
            if problems:
                raise InputError(problems)
            out = []
            for row, files in todo:
                rid = self.db.execute("INSERT INTO reviews (submission, requirement, level, method, verdict, reason, "
                                      "reviewer, at, evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                                      (s.id, row.id, row.level, row.method, verdict, reason, reviewer, iso(when),
                                       json.dumps(files))).fetchone()[0]
                self._history(s.id, "reviewed", iso(when), f"{row.id} {verdict} by {reviewer}: {reason}")
                out.append(Review(s.id, row.id, row.level, row.method, verdict, reason, reviewer, iso(when),
                                  tuple(files), int(rid)))
            return out

    def revoke(self, label_id: str, reason: str, when: dt.datetime | None = None) -> list[str]:
        """Revoke a label's software version in its wave: this label and any other in force for it (once each).

        The version then gets no new label in that wave until it is reinstated. Returns the labels revoked.
        ``when``: None (the default) dates the revocation holding the write lock, as :meth:`now` dates a read: a
        revocation list issued at a later time carries it (a time given, as a test does, is recorded as it is).
        """
        reason = _text(reason, "a revocation's reason", "--reason")
        with self.write() as db:
            when = when or dt.datetime.now(dt.UTC)
            row = db.execute("SELECT revoked, software_id, version, wave FROM labels WHERE label_id = ?",
                             (label_id,)).fetchone()
            if row is None:
                raise InputError(f"no label {label_id!r} in the registry", file=self.path)
            if row[0] is not None:
                raise InputError(f"label {label_id} was already revoked on {row[0]}", file=self.path)
            others = [r[0] for r in db.execute("SELECT label_id FROM labels WHERE software_id = ? AND version = ? AND "
                                               "wave = ? AND revoked IS NULL AND label_id != ? ORDER BY seq",
                                               (*row[1:], label_id))]
            for lid in [label_id, *others]:
                db.execute("UPDATE labels SET revoked = ?, revoked_reason = ? WHERE label_id = ?", (iso(when), reason, lid))
                append_event(db, revoked_event(db, lid, iso(when), reason))
                self._history(lid, "revoked", iso(when), reason if lid == label_id else f"{reason} (with {label_id}: "
                                                                                          "same software version and wave)")
        return [label_id, *others]

    def reinstate(self, label_id: str, reason: str, when: dt.datetime | None = None) -> Submission:
        """Lift the block a revoked label puts on its software version in its wave (the label stays revoked).

        A run of that version may then be labelled again: a new label, issued from then on. ``when``: as
        :meth:`revoke`'s (None: dated holding the write lock).
        """
        reason = _text(reason, "a reinstatement's reason", "--reason")
        with self.write() as db:
            when = when or dt.datetime.now(dt.UTC)
            row = db.execute("SELECT revoked FROM labels WHERE label_id = ?", (label_id,)).fetchone()
            if row is None:
                raise InputError(f"no label {label_id!r} in the registry", file=self.path)
            if row[0] is None:
                raise InputError(f"label {label_id} is not revoked: there is nothing to reinstate", file=self.path)
            done = db.execute("SELECT at FROM reinstatements WHERE label_id = ?", (label_id,)).fetchone()
            if done is not None:
                raise InputError(f"label {label_id}'s version was already reinstated on {done[0]}", file=self.path)
            db.execute("INSERT INTO reinstatements (label_id, at, reason) VALUES (?, ?, ?)", (label_id, iso(when), reason))
            self._history(label_id, "reinstated", iso(when), reason)
        return self.get(label_id)

    def _history(self, subject: str, state: str, at: str, detail: str) -> None:
        self.db.execute("INSERT INTO history (at, subject, state, detail) VALUES (?, ?, ?, ?)", (at, subject, state, detail))


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)
