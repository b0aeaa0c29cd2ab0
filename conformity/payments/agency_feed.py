"""Labels and revocations from the agency's service: its label event feed mirrored into a labels folder.

``usine pay run --agency URL --labels DIR`` first brings DIR up to date: every ``org.usine.label.issued``
event since the cursor kept in ``DIR/.feed-cursor`` gives its signed label (``label-<id>.json``), and the
agency's current signed revocation list replaces ``DIR/revocations.json``. Nothing here is trusted: the
run then verifies every label (JWS, agency key) and the list's signature and freshness exactly as for
files the agency exported, so a service that lies or is stale stops the run like a bad folder does. A
revoked event is the prompt to fetch the list, never the proof of a revocation.

What the service answers is checked before anything is written from it: each page is an object with a list of
event objects and a cursor beyond the one asked for (a service that answers ``more`` without moving on is an
error, never a loop); an issued event's label says the label id its subject names (a label under another
label's name would replace that label's file: the label it replaced would no longer be paid). A cursor file that
is not a count is an error naming the file, never a traceback. The revocation list the service serves never
replaces one issued later, nor one holding more revocations (the agency's lists only grow, so a shorter one is older
whatever time it says; a stale or rolled-back service would otherwise put back an older list, which pays what the
newer one revoked, before any run of the ledger relied on the newer one). An answer is read up to
``MAX_ANSWER`` bytes and parsed strictly (a member twice, NaN: refused), and a page that says ``more`` carries events
(the agency's feed never answers an empty page with more to come: a service doing so, cursor moving by one, would
keep a run asking for ever).

A sync that fails anywhere (the service unreachable half-way, a page or a list refused, a full disk) leaves the
folder as it was: the labels read are kept aside until the revocation list is read and checked, then the list is
put in place first, the labels after it, the cursor last (never a new label beside a list older than it, which
would not revoke it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.errors import InputError
from conformity.files import fsync_folder, write_atomic
from conformity.labels import iso, parse_time
from conformity.signing import load_json_file, unverified_payload

CURSOR_FILE = ".feed-cursor"
#: the largest answer read from the feed (a page of at most 1,000 events, each a signed label of a few KiB)
MAX_ANSWER = 64 * 1024 * 1024
_LABEL_ID = re.compile(r"^lbl_[A-Za-z0-9]{8,64}$")
_CURSOR = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Synced:
    labels: int        # label files written by this sync
    events: int        # events read
    cursor: int


def sync_labels(agency: str, folder: Path, *, verify: Any = True, page: int = 500, timeout: float = 30.0) -> Synced:
    """Mirror the agency's issued labels and current revocation list into ``folder``."""
    import httpx

    cursor_path = folder / CURSOR_FILE
    cursor = _read_cursor(cursor_path)
    written = read = 0
    base = agency.rstrip("/")
    staging: Path | None = None  # the labels of this sync, beside the folder (a run reads every *.json under it)
    try:
        with httpx.Client(base_url=base, verify=verify, timeout=timeout) as client:
            while True:
                body = _get_json(client, "/api/v1/events", {"after": cursor, "limit": page})
                events, after = _page(body, cursor)
                labels = [_issued_label(event) for event in events]
                for item in labels:
                    read += 1
                    if item is not None:
                        if staging is None:
                            folder.parent.mkdir(parents=True, exist_ok=True)
                            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.feed-", dir=folder.parent))
                        write_atomic(staging / f"label-{item[0]}.json", json.dumps(item[1], indent=2) + "\n")
                cursor = after
                if not body.get("more"):
                    break
            fetched = _get_json(client, "/api/v1/revocations", {})
            _check_not_rolled_back(folder / "revocations.json", fetched, base)
        # all read and checked: the list first (fetched after every label of this sync, it revokes any of them the
        # agency revoked), then the labels, then the cursor; a failure before leaves the folder as it was
        folder.mkdir(parents=True, exist_ok=True)  # once the agency answered its feed: never an empty folder
        write_atomic(folder / "revocations.json", json.dumps(fetched, indent=2) + "\n")
        for staged in sorted(staging.iterdir()) if staging is not None else ():
            os.replace(staged, folder / staged.name)
            written += 1
        fsync_folder(folder)
        write_atomic(cursor_path, f"{cursor}\n")
    except httpx.HTTPError as exc:
        raise InputError(f"cannot read labels from the agency at {base}: {exc}", where="--agency") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the agency at {base} answered something that is not its label feed: {exc}",
                         where="--agency") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return Synced(written, read, cursor)


def _read_cursor(path: Path) -> int:
    """The feed position kept in ``path`` (0 without the file), or an error saying what to do."""
    if not path.exists():
        return 0
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the agency feed's cursor: {exc}", file=path) from exc
    if not text:
        return 0
    if not _CURSOR.fullmatch(text):
        raise InputError(f"the agency feed's cursor is {text[:40]!r}, not a count of events: remove the file to read "
                         "the feed again from its start (labels already here are rewritten the same)", file=path)
    return int(text)


def _get_json(client: Any, path: str, params: dict[str, Any]) -> Any:
    """The JSON answer of ``GET path``: read up to :data:`MAX_ANSWER` bytes, parsed strictly (ValueError otherwise)."""
    from conformity import jsonio

    with client.stream("GET", path, params=params) as r:
        r.raise_for_status()
        chunks, size = [], 0
        for chunk in r.iter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER:
                raise ValueError(f"{path} answered more than {MAX_ANSWER} bytes")
            chunks.append(chunk)
    try:
        return jsonio.loads(b"".join(chunks), source=path)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _page(body: Any, cursor: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the feed: its events and the cursor after them, which must be beyond ``cursor``."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list) \
            or not all(isinstance(e, dict) for e in body["events"]):
        raise ValueError("expected an object with a list of event objects")
    after = body.get("cursor")
    if type(after) is not int or after < 0:
        raise ValueError(f"its cursor {after!r} is not a count of events")
    if after < cursor or (after == cursor and (body["events"] or body.get("more"))):
        raise ValueError(f"asked for the events after {cursor}, it answered {len(body['events'])} event(s) and the "
                         f"cursor {after}: a feed only moves forward")
    if body.get("more") and not body["events"]:
        raise ValueError(f"asked for the events after {cursor}, it answered none and 'more': a page with more to come "
                         "carries events")
    return body["events"], after


def _issued_label(event: dict[str, Any]) -> tuple[str, Any] | None:
    """(label id, signed label) of an ``org.usine.label.issued`` event; None for another event."""
    if event.get("type") != "org.usine.label.issued":
        return None
    label_id = str(event.get("subject", ""))
    if not _LABEL_ID.match(label_id):
        raise InputError(f"the agency's feed names a label {label_id!r} that is not a label id", where="--agency")
    data = event.get("data")
    signed = data.get("label") if isinstance(data, dict) else None
    try:
        claimed = unverified_payload(signed).get("label_id")
    except InputError:
        claimed = signed.get("label_id") if isinstance(signed, dict) else None  # a bare document: refused when verified
    if claimed != label_id:
        raise InputError(f"the agency's feed gives, for label {label_id}, a label that says it is {claimed!r}: it would "
                         f"replace {label_id}'s file", where="--agency")
    return label_id, signed


def _claims(signed: Any) -> tuple[dt.datetime | None, int | None]:
    """When a revocation list says it was issued and how many revocations it says it holds (unverified: the run
    verifies it); each None if it does not say."""
    try:
        payload = unverified_payload(signed)
    except InputError:
        return None, None
    issued, entries = payload.get("issued"), payload.get("revocations")
    try:
        when = parse_time(issued) if isinstance(issued, str) else None
    except ValueError:
        when = None
    return when, len(entries) if isinstance(entries, list) else None


def _check_not_rolled_back(path: Path, fetched: Any, base: str) -> None:
    """InputError if ``fetched`` is older than the list already at ``path``: issued before it, or holding fewer
    revocations (the agency's lists only grow: a label is revoked once, never un-revoked, as
    :func:`conformity.payments.labelbook.check_not_older` says) — unless the one at ``path`` says it was issued in the
    future: no run relies on it, and keeping it would block every list the agency issues until then."""
    if not path.is_file():
        return
    try:
        kept, kept_entries = _claims(load_json_file(path))
    except InputError:  # unreadable: replaced, and the run verifies what it gets
        return
    new, new_entries = _claims(fetched)
    from conformity.payments.labelbook import CLOCK_SKEW

    if kept is not None and kept > dt.datetime.now(dt.UTC) + CLOCK_SKEW:  # from the future: never relied on, replaced
        return
    if kept is not None and new is not None and new < kept:
        raise InputError(f"the agency at {base} serves a revocation list issued {iso(new)}, before the one already "
                         f"here (issued {iso(kept)}): an older list could pay what the newer one revoked; it was not "
                         "written (check the service: stale cache, or restored from a backup)", file=path,
                         where="--agency")
    if kept_entries is not None and new_entries is not None and new_entries < kept_entries:
        raise InputError(f"the agency at {base} serves a revocation list of {new_entries} revocation(s), fewer than "
                         f"the {kept_entries} of the one already here: the agency's lists only grow (a label is "
                         "revoked once, never un-revoked), so it is older whatever its time and could pay what the "
                         "other one revoked; it was not written (check the service: stale cache, restored from a "
                         "backup, or a registry that lost revocations)", file=path, where="--agency")
