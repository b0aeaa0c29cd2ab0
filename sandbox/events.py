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
    """An append-only JSON-lines file; each append is flushed and fsync'd before returning.

    Reading pages by line number seeks through a sparse index (a byte offset every
    ``CHECKPOINT`` lines), so a page costs the same at the start or the end of a large file.
    """

    CHECKPOINT = 1024

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._checkpoints: list[int] = [0]  # byte offset of line k * CHECKPOINT
        self._lines = 0
        self._size = 0
        self._index_existing()

    def _index_existing(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            offset = 0
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                self._advance(offset)

    def _advance(self, end_offset: int) -> None:
        self._lines += 1
        self._size = end_offset
        if self._lines % self.CHECKPOINT == 0:
            self._checkpoints.append(end_offset)

    def append(self, event: dict[str, Any]) -> None:
        data = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock, open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            self._advance(fh.tell())

    def read(self, after: int = 0, limit: int = 1000) -> tuple[list[dict[str, Any]], int]:
        """Events after the first ``after`` lines (at most ``limit``), and the next cursor."""
        events: list[dict[str, Any]] = []
        if not self.path.exists() or after >= self._lines:
            return events, after
        checkpoint = min(after // self.CHECKPOINT, len(self._checkpoints) - 1)
        n = checkpoint * self.CHECKPOINT
        with open(self.path, "rb") as fh:
            fh.seek(self._checkpoints[checkpoint])
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a line still being written: read it next time
                n += 1
                if n <= after:
                    continue
                if len(events) >= limit:
                    return events, n - 1
                events.append(json.loads(line))
        return events, max(after, n)
