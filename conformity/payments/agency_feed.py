"""Labels and revocations from the agency's service: its label event feed mirrored into a labels folder.

``usine pay run --agency URL --labels DIR`` first brings DIR up to date: every ``org.usine.label.issued``
event since the cursor kept in ``DIR/.feed-cursor`` gives its signed label (``label-<id>.json``), and the
agency's current signed revocation list replaces ``DIR/revocations.json``. Nothing here is trusted: the
run then verifies every label (JWS, agency key) and the list's signature and freshness exactly as for
files the agency exported, so a service that lies or is stale stops the run like a bad folder does. A
revoked event is the prompt to fetch the list, never the proof of a revocation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.errors import InputError
from conformity.files import write_atomic

CURSOR_FILE = ".feed-cursor"
_LABEL_ID = re.compile(r"^lbl_[A-Za-z0-9]{8,64}$")


@dataclass(frozen=True, slots=True)
class Synced:
    labels: int        # label files written by this sync
    events: int        # events read
    cursor: int


def sync_labels(agency: str, folder: Path, *, verify: Any = True, page: int = 500, timeout: float = 30.0) -> Synced:
    """Mirror the agency's issued labels and current revocation list into ``folder``."""
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    cursor_path = folder / CURSOR_FILE
    cursor = int(cursor_path.read_text().strip() or 0) if cursor_path.exists() else 0
    written = read = 0
    base = agency.rstrip("/")
    try:
        with httpx.Client(base_url=base, verify=verify, timeout=timeout) as client:
            while True:
                r = client.get("/api/v1/events", params={"after": cursor, "limit": page})
                r.raise_for_status()
                body = r.json()
                for event in body["events"]:
                    read += 1
                    if event.get("type") != "org.usine.label.issued":
                        continue
                    label_id = str(event.get("subject", ""))
                    if not _LABEL_ID.match(label_id):
                        raise InputError(f"the agency's feed names a label {label_id!r} that is not a label id",
                                         where="--agency")
                    write_atomic(folder / f"label-{label_id}.json", json.dumps(event["data"]["label"], indent=2) + "\n")
                    written += 1
                cursor = int(body["cursor"])
                write_atomic(cursor_path, f"{cursor}\n")
                if not body.get("more"):
                    break
            r = client.get("/api/v1/revocations")
            r.raise_for_status()
            write_atomic(folder / "revocations.json", json.dumps(r.json(), indent=2) + "\n")
    except httpx.HTTPError as exc:
        raise InputError(f"cannot read labels from the agency at {base}: {exc}", where="--agency") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the agency at {base} answered something that is not its label feed: {exc}",
                         where="--agency") from exc
    return Synced(written, read, cursor)
