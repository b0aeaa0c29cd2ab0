"""Data-received events: CloudEvents 1.0 JSON, appended to a JSON-lines file, fsync'd, sealed in signed segments.

Emitted only when the production services accept data from an installation; test-session
traffic never emits a payable event. The infrastructure signs what it emits: every ``seal_every``
events, on ``POST /admin/events/seal``, every ``seal_seconds`` and at shutdown, the events appended
since the last seal become a signed segment in the sidecar ``data-received.jsonl.segments``
(``conformity.segments``), with the infrastructure's own Ed25519 key (not the trace key). The key
and the event sources it vouches for are published at ``/.well-known/usine-infrastructure-keys``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from conformity.files import append_whole, fsync_file, fsync_folder
from conformity.segments import DEFAULT_EVERY, Sealer
from conformity.signing import SigningKey
from sandbox.clock import timestamp

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
        "time": timestamp(when),
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


router = APIRouter(tags=["events"])


class EventLog:
    """An append-only JSON-lines file sealed in signed segments; each append is fsync'd before returning.

    Reading pages by line number seeks through a sparse index (a byte offset every
    ``CHECKPOINT`` lines), so a page costs the same at the start or the end of a large file. A
    torn last line (a write that never returned) is cut off when the log is opened.
    """

    CHECKPOINT = 1024

    def __init__(self, path: Path, key: SigningKey, sources: Iterable[str], *, seal_every: int = DEFAULT_EVERY):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sources = frozenset(sources)
        self._lock = threading.Lock()
        self._checkpoints: list[int] = [0]  # byte offset of line k * CHECKPOINT
        self._lines = 0
        self._size = 0
        self._index_existing()
        self.sealer = Sealer(path, key, every=seal_every)

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
        if self.path.stat().st_size != offset:
            os.truncate(self.path, offset)

    def _advance(self, end_offset: int) -> None:
        self._lines += 1
        self._size = end_offset
        if self._lines % self.CHECKPOINT == 0:
            self._checkpoints.append(end_offset)

    def append(self, event: dict[str, Any]) -> None:
        """Append one event (fsync'd); seal a segment when ``seal_every`` events are unsealed."""
        if event.get("source") not in self.sources:
            raise ValueError(f"event source {event.get('source')!r} is not one the infrastructure key vouches for")
        data = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            self._advance(append_whole(self.path, data))  # a full disk leaves no part of the line
            self.sealer.add(data, event["source"], event.get("time"))

    def seal(self) -> dict[str, Any] | None:
        """Seal the events appended since the last segment; the new segment's payload, or None if there were none."""
        with self._lock:
            return self.sealer.seal()

    def segments(self) -> int:
        return self.sealer.segments

    def export_parquet(self) -> dict[str, Any]:
        """Seal what is unsealed, then write every event as a Parquet events file beside the log, sealed by the same
        key in one segment over the whole file (``conformity.payments.parquet``); what was written. Readers see the
        previous export or the new one (each file renamed into place); ValueError when there is no event yet."""
        from conformity.payments import parquet
        from conformity.segments import sidecar_path

        target = self.path.with_suffix(parquet.SUFFIX)
        with self._lock:
            self.sealer.seal()
            if self._lines == 0:
                raise ValueError("no data-received event yet: nothing to export")
            tmp = target.with_name(f".{target.name}.tmp")
            try:
                rows = parquet.from_jsonl(self.path, tmp)
                segment = parquet.seal(tmp, self.sealer.key)
                fsync_file(tmp)  # written by the Parquet library, which does not: durable before it is in place
                os.replace(tmp, target)
                os.replace(sidecar_path(tmp), sidecar_path(target))
                fsync_folder(target.parent)
            finally:
                tmp.unlink(missing_ok=True)
                sidecar_path(tmp).unlink(missing_ok=True)
        return {"file": str(target), "segments_file": str(sidecar_path(target)), "rows": rows,
                "bytes": segment["length"], "sha256": segment["sha256"]}

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


@router.get("/.well-known/usine-infrastructure-keys", summary="Public keys that sign data-received event segments")
def infrastructure_keys(request: Request) -> dict[str, Any]:
    """The infrastructure keys document (``usine.infrastructure-keys/1``): keys and the event sources each vouches for."""
    keys: dict[str, Any] = request.app.state.infrastructure_keys
    return keys
