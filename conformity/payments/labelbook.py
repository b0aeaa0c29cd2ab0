"""The labels a payment run trusts: every label file of a folder, verified, indexed, with the revocation list.

A label that does not verify (forged, unsigned, signed by an unknown key, not a label) is kept aside
as a refusal (``label-invalid``) with what it claims to cover, so that events of that software say
``label-invalid`` rather than ``no-label``.

Paying without knowing which labels are revoked is not safe, so the run needs exactly one revocation
list, fresh: ``LABELS/revocations.json`` (where the agency's export puts it) or the file given instead
(``--revocations``). It must verify against the agency's keys (else exit 2) and its ``next_update``
must be later than the run's time (``--as-of``, and never earlier than now): a missing or stale list
stops the run before the ledger is touched (:class:`RevocationsNotFresh`, exit 4), and so does a list
older than the one an earlier run of the same ledger relied on (:func:`check_not_older`). Any other
revocation list under the labels folder (``revocations.json`` in a subfolder, or any file whose
payload is a revocation list) is an error, never a label nor ignored. A revocation names a software
version in a wave: it refuses events of that version from its time on under every label issued before
it, whichever label was revoked (the registry lists each label it revoked with the version: this is the
backstop). A label issued after it (the agency issues one only once it reinstated the version) is not
touched by it (``RevocationList.revoked_for``: the same rule for ``usine label verify``).

A label id names one label. The same label in several files (the export and a copy, the agency feed's mirror)
counts once; label files that verify but say different things under one label id (a label the agency issued
twice, or an export mixed with another) are all refused (``label-invalid``, naming the other files): a payment
and its proof must name one label, never whichever file came first.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.errors import InputError, Problem, RevocationsNotFresh
from conformity.labels import Label, Revocation, RevocationList, iso, parse_time, verify_label, verify_revocations
from conformity.payments import reasons
from conformity.payments.envelope import to_us
from conformity.signing import KeyRing, canonical_json, load_json_file, sha256_hex, unverified_payload

REVOCATIONS_FILE = "revocations.json"
LabelKey = tuple[str, str, str]  # (software id, wave, category)

_VALIDITY_REASON = {"revoked": reasons.LABEL_REVOKED, "expired": reasons.LABEL_EXPIRED,
                    "not-yet-valid": reasons.LABEL_NOT_YET_VALID}
_PRIORITY = (reasons.LABEL_REVOKED, reasons.LABEL_EXPIRED, reasons.LABEL_NOT_YET_VALID)


@dataclass(frozen=True, slots=True)
class LabelWindow:
    """A verified label with its validity as microseconds (issued, end of expiry, revocation)."""

    label: Label
    issued_us: int
    end_us: int
    revoked_us: int | None


@dataclass(slots=True)
class LabelBook:
    """Verified labels by (software, wave, category); refused label files; revocations."""

    valid: dict[LabelKey, list[LabelWindow]] = field(default_factory=dict)
    claimed_by_invalid: set[LabelKey] = field(default_factory=set)
    refused: list[Problem] = field(default_factory=list)
    revocations: dict[str, dt.datetime] = field(default_factory=dict)
    #: (software, version, wave) → the times of its revocations, µs, in order
    revoked_versions: dict[tuple[str, str, str], tuple[int, ...]] = field(default_factory=dict)
    revocation_list: RevocationList | None = None
    revocations_file: str = ""
    files: int = 0

    def labels(self) -> Iterable[Label]:
        for windows in self.valid.values():
            for w in windows:
                yield w.label

    def verdict(self, data: dict[str, Any], time_us: int) -> tuple[str | None, Label | None]:
        """(None, the label) when a label covers the event at its time; else (reason code, None)."""
        software = data["software"]
        key = (software["id"], data["wave"], data["category"])
        candidates = [w for w in self.valid.get(key, ()) if w.label.vendor_id == data["vendor_id"]]
        if not candidates:
            return (reasons.LABEL_INVALID if key in self.claimed_by_invalid else reasons.NO_LABEL), None
        covering = [w for w in candidates if w.label.covers(software["version"])]
        if not covering:
            return reasons.VERSION_NOT_COVERED, None
        version_revoked = self.revoked_versions.get((software["id"], software["version"], data["wave"]), ())
        found: set[str] = set()
        for w in covering:
            since = bisect_right(version_revoked, w.issued_us)  # the version's revocations after its issue
            if time_us < w.issued_us:
                found.add(reasons.LABEL_NOT_YET_VALID)
            elif time_us >= w.end_us:
                found.add(reasons.LABEL_EXPIRED)
            elif (w.revoked_us is not None and time_us >= w.revoked_us) or \
                    (since < len(version_revoked) and time_us >= version_revoked[since]):
                found.add(reasons.LABEL_REVOKED)
            else:
                return None, w.label
        return next(r for r in _PRIORITY if r in found), None


def _claim(signed: Any) -> LabelKey | None:
    """What an unverified label (a JWS that does not verify, or a bare unsigned document) claims to cover."""
    try:
        doc = unverified_payload(signed)
    except InputError:
        doc = signed
    if not isinstance(doc, dict):
        return None
    software, wave, category = doc.get("software"), doc.get("wave"), doc.get("category")
    if isinstance(software, dict) and isinstance(software.get("id"), str) and isinstance(wave, str) \
            and isinstance(category, str):
        return (software["id"], wave, category)
    return None


def _is_revocation_list(doc: Any) -> bool:
    try:
        payload = unverified_payload(doc)
    except InputError:
        payload = doc
    fmt = payload.get("format") if isinstance(payload, dict) else None
    return isinstance(fmt, str) and fmt.startswith("usine.revocations/")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or a.samefile(b)
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Path.resolve, Python < 3.13)
        return False


def revocations_path(folder: Path, explicit: Path | None) -> Path:
    """The one revocation list of a run: ``explicit``, else ``folder/revocations.json``; any other one is an error."""
    chosen = explicit or folder / REVOCATIONS_FILE
    strays = [p for p in sorted(folder.rglob(REVOCATIONS_FILE)) if not _same(p, chosen)]
    if strays:
        raise InputError(f"another revocation list ({len(strays)} in all) under the labels folder: a payment run "
                         f"uses exactly one, {chosen}; remove or move the others", file=strays[0])
    if not chosen.is_file():
        hint = "" if explicit else " (where `usine agency registry export` puts it), or give --revocations FILE"
        raise RevocationsNotFresh(f"no revocation list at {chosen}{hint}: without it, revoked labels would be paid")
    return chosen


#: how far ahead of this machine's clock a list's issue time may be (the agency's clock and this one differ a little)
CLOCK_SKEW = dt.timedelta(minutes=10)


def check_fresh(found: RevocationList, path: Path, at: dt.datetime, now: dt.datetime | None = None) -> None:
    """RevocationsNotFresh unless the list may still be relied on at ``at`` (its next_update is later) and was issued
    by now (this machine's clock, give or take :data:`CLOCK_SKEW`): a list issued in the future, once relied on,
    would make every list the agency issues until then "older" and stop every run of the ledger."""
    now = now or dt.datetime.now(dt.UTC)
    if found.issued > now + CLOCK_SKEW:
        raise RevocationsNotFresh(
            f"revocation list {path} says it was issued {iso(found.issued)}, after this machine's time {iso(now)}: "
            "a list from the future is not relied on (the agency's clock, or this one, is wrong); get the agency's "
            "current list and check both clocks")
    if found.stale_at(at):
        raise RevocationsNotFresh(
            f"revocation list {path} is stale: issued {iso(found.issued)}, to be replaced by {iso(found.next_update)}, "
            f"and the run's time is {iso(at)}; get the agency's current list (usine agency registry export) "
            "and run again")


#: what identifies one revocation of a list: (label id, software id, version, wave, revoked, ISO 8601 in UTC); its
#: reason is wording, not identity
RevocationKey = tuple[str, str, str, str, str]


def _revocation_key(r: Revocation) -> RevocationKey:
    return (r.label_id, r.software_id, r.version, r.wave, r.revoked.astimezone(dt.UTC).isoformat())


def revocations_digest(found: RevocationList) -> str:
    """SHA-256 of what a revocation list revokes (its entries with their reasons, canonical JSON, in order): two lists
    that say the same ``issued`` are the same list only if they revoke the same things."""
    return sha256_hex(canonical_json(sorted([*_revocation_key(r), r.reason] for r in found.revocations)))


@dataclass(frozen=True, slots=True)
class ReliedOn:
    """What a ledger recorded of the revocation list one of its runs relied on (None: that run did not record it)."""

    run: int
    issued: str
    digest: str | None = None
    count: int | None = None
    entries: tuple[RevocationKey, ...] | None = None


def revocation_keys(found: RevocationList) -> list[RevocationKey]:
    """Every revocation of ``found``, as :data:`RevocationKey`, sorted: what a run records of the list it relies on,
    so that a later run knows whether its list still holds each of them."""
    return sorted(_revocation_key(r) for r in found.revocations)


def check_not_older(found: RevocationList, path: Path, relied_on: Iterable[ReliedOn]) -> None:
    """RevocationsNotFresh if ``found`` is older than a list an earlier run of the ledger relied on (``relied_on``, in
    run order), or lost a revocation one of them held: a list is replaced by a newer one, never by an older one, even
    one still fresh (it would pay what the newer one revoked).

    The agency's lists only grow: a label is revoked once and never un-revoked (a reinstatement lets a new label be
    issued; the revoked one stays in the list). So a list is refused when it was issued before; when it holds fewer
    entries; when, issued the same second (``issued`` has whole seconds: the list exported just before a revocation and
    the one just after it may say the same time), it holds as many entries but other ones; and when it lacks any
    revocation a run relied on, whatever its date and size: a registry restored from a backup that lost a revocation,
    then given others, exports a later list with as many entries or more, which would pay what was revoked."""
    relied = [(parse_time(r.issued), r) for r in relied_on]
    newest = max(((when, r.run) for when, r in relied), default=None)
    if newest is None:
        return
    if found.issued < newest[0]:
        raise RevocationsNotFresh(
            f"revocation list {path} was issued {iso(found.issued)}, before the list of {iso(newest[0])} that run "
            f"{newest[1]} of this ledger relied on: an older list could pay what the newer one revoked; get the "
            "agency's current list (usine agency registry export) and run again")
    entries = len(found.revocations)
    most = max(((r.count, r.run) for _, r in relied if r.count is not None), default=None)
    if most is not None and entries < most[0]:
        raise RevocationsNotFresh(
            f"revocation list {path} revokes {entries} label version(s), fewer than the {most[0]} of the list that "
            f"run {most[1]} of this ledger relied on: the agency's lists only grow (a revocation is never undone), so "
            "this one is older, or comes from a registry that lost revocations; it could pay what the other one "
            "revoked; get the agency's current list (usine agency registry export) and run again")
    digest = revocations_digest(found)
    other = next((r.run for when, r in relied if when == found.issued and r.digest is not None and r.digest != digest
                  and (r.count is None or r.count == entries)), None)
    if other is not None:
        raise RevocationsNotFresh(
            f"revocation list {path} was issued {iso(found.issued)}, as the list that run {other} of this ledger "
            "relied on, with as many entries but other ones: two such lists cannot be ordered, and the one issued "
            "first could pay what the other revoked; get the agency's current list (usine agency registry export, "
            "a later one) and run again")
    held = set(revocation_keys(found))
    lost = next(((r.run, key) for _, r in relied for key in r.entries or () if key not in held), None)
    if lost is not None:
        run, (label_id, software_id, version, wave, revoked_at) = lost
        raise RevocationsNotFresh(
            f"revocation list {path} does not hold the revocation of label {label_id} ({software_id} {version}, wave "
            f"{wave}, revoked {revoked_at}) that the list run {run} of this ledger relied on held: a revocation is "
            "never undone (a reinstated version gets a new label; the revoked one stays in the list), so this list "
            "comes from a registry that lost revocations (restored from a backup?) and could pay what was revoked; "
            "get the agency's current list (usine agency registry export) and run again")


def load_labelbook(folder: Path, keys: KeyRing, *, at: dt.datetime | None = None,
                   revocations: Path | None = None) -> LabelBook:
    """Every ``*.json`` under ``folder`` verified against the agency's keys, with the one fresh revocation list.

    ``at`` is the run's time (default: now): the list's ``next_update`` must be later.
    """
    if not folder.is_dir():
        raise InputError("labels folder not found", file=folder)
    book = LabelBook()
    rev_path = revocations_path(folder, revocations)
    found = verify_revocations(load_json_file(rev_path), keys, source=str(rev_path))
    check_fresh(found, rev_path, at or dt.datetime.now(dt.UTC))
    book.revocation_list, book.revocations_file = found, str(rev_path)
    book.revocations = found.by_label()
    by_version: dict[tuple[str, str, str], set[int]] = {}
    for r in found.revocations:
        by_version.setdefault((r.software_id, r.version, r.wave), set()).add(to_us(r.revoked))
    book.revoked_versions = {key: tuple(sorted(times)) for key, times in by_version.items()}
    seen: dict[str, tuple[Any, Path, list[Path]]] = {}  # label id → (first document, its file, files that differ)
    for path in sorted(folder.rglob("*.json")):
        if _same(path, rev_path):
            continue
        if not path.is_file():
            if path.is_symlink():  # to nothing, or a loop: a label file nobody can read, said as such
                book.files += 1
                book.refused.append(Problem(str(path), "", "a symbolic link to no readable file (missing, or a loop)"))
            continue
        book.files += 1
        doc: Any = None
        try:
            doc = load_json_file(path)
            label = verify_label(doc, keys, source=str(path))
        except InputError as exc:
            if _is_revocation_list(doc):
                raise InputError(f"a revocation list among the labels: a payment run uses exactly one, {rev_path}; "
                                 "remove or move this one", file=path) from exc
            book.refused.append(Problem(str(path), "", "; ".join(p.message if not p.where else f"{p.where}: {p.message}"
                                                                  for p in exc.problems)))
            claim = _claim(doc)
            if claim is not None:
                book.claimed_by_invalid.add(claim)
            continue
        first = seen.setdefault(label.id, (label.doc, path, []))
        if first[0] == label.doc:
            if first[1] != path:  # another copy of a label already read
                continue
        else:
            first[2].append(path)
            book.claimed_by_invalid.add((label.software_id, label.doc["wave"], label.doc["category"]))
            continue
        revoked = book.revocations.get(label.id)
        window = LabelWindow(label, to_us(label.issued), to_us(label.expires_end),
                             to_us(revoked) if revoked is not None else None)
        key = (label.software_id, label.doc["wave"], label.doc["category"])
        book.valid.setdefault(key, []).append(window)
    _refuse_conflicts(book, seen)
    for windows in book.valid.values():
        windows.sort(key=lambda w: w.label.id)
    return book


def _refuse_conflicts(book: LabelBook, seen: dict[str, tuple[Any, Path, list[Path]]]) -> None:
    """Refuse every label whose id other verified label files give to a different document."""
    for label_id, (_doc, first, others) in seen.items():
        if not others:
            continue
        files = [first, *others]
        for key, windows in list(book.valid.items()):
            kept = [w for w in windows if w.label.id != label_id]
            if len(kept) != len(windows):
                book.claimed_by_invalid.add(key)
                if kept:
                    book.valid[key] = kept
                else:
                    del book.valid[key]
        for path in files:
            book.refused.append(Problem(str(path), "label_id", (
                f"label {label_id} is given by {len(files)} label files that say different things "
                f"({', '.join(str(p) for p in files)}): none is relied on until the agency's export has one")))
