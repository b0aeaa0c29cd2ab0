"""Data-received events: CloudEvents 1.0 JSON, appended to a JSON-lines file, fsync'd.

Emitted only when the production services accept data from an installation; test-session
traffic never emits a payable event.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

EVENT_TYPE = "fr.usine.data.received"
DATA_SCHEMA = "https://usine.example/schemas/data-received.schema.json"


def data_received(installation: dict[str, Any], *, source: str, kind: str, document_type: str | None,
                  size: int, sha256: str, reference: str, when: dt.datetime | None = None) -> dict[str, Any]:
    """One CloudEvents 1.0 envelope saying the infrastructure received data from an installation."""
    when = when or dt.datetime.now(dt.UTC)
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": source,
        "id": str(uuid.uuid4()),
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "subject": installation["id"],
        "datacontenttype": "application/json",
        "dataschema": DATA_SCHEMA,
        "data": {
            "installation_id": installation["id"],
            "vendor_id": installation["vendor_id"],
            "software": dict(installation["software"]),
            "site": dict(installation["site"]),
            "wave": installation["wave"],
            "category": installation["category"],
            "kind": kind,
            "document_type": document_type,
            "bytes": size,
            "sha256": sha256,
            "reference": reference,
        },
    }


class EventLog:
    """An append-only JSON-lines file; each append is flushed and fsync'd before returning."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self, after: int = 0, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """Events after the first ``after`` lines (at most ``limit``), and the next cursor."""
        events: list[dict[str, Any]] = []
        if not self.path.exists():
            return events, after
        with open(self.path, encoding="utf-8") as fh:
            n = 0
            for line in fh:
                if not line.endswith("\n"):
                    break  # a line still being written: read it next time
                n += 1
                if n <= after:
                    continue
                if len(events) >= limit:
                    return events, n - 1
                events.append(json.loads(line))
            return events, max(after, n)
