"""Which lines of an events file the infrastructure vouches for: its signed segments verified, as line spans.

One pass over the sidecar (``<file>.segments``, see ``conformity.segments``) and one hash of the
file's bytes per segment, apart from reading the events: the result is a list of spans that tile the
file from line 1 (the last one open-ended), each either proven (with the event sources its key and
segment vouch for) or refused with a reason code. Intake then joins each line to its span by line
number, so the same spans serve a Python loop or a range join on a columnar engine.

A payment run reads the file once, on either engine: ``authenticate(read=False)`` reads only the sidecar,
and ``loader.batches`` hashes each segment's lines as it loads them and settles its span (:func:`settle`)
before any of them is handed over (Spark's executors read the copy written on the way; a Parquet file is
copied while hashed, ``parquet.take``): the bytes parsed are the bytes hashed, whatever happens to the file
meanwhile; lines appended meanwhile fall in the unsigned tail. With ``read=True`` (a verification on its
own: the sandbox's tests, third parties) the file is hashed here; a later reading by ``loader.batches``
hashes each proven span again and stops (:class:`FileChanged`) if its bytes differ.

Per sidecar entry, in order: a JWS signed by a trusted infrastructure key whose payload is a valid
segment (``event-signature-invalid`` otherwise); lines first_line..last_line of the file hash to its
sha256 (``event-segment-mismatch``); it follows the entry before it: same stream, next seq, prev =
SHA-256 of the previous payload, first_line right after the previous last_line
(``event-chain-broken``). Lines no entry covers (no sidecar, a gap, the tail after the last segment)
are ``event-unsigned``. An entry that cannot be read at all leaves the rest of the file unattributed
(``event-signature-invalid``): nothing after it is counted.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeGuard

from conformity import jsonio
from conformity.catalog.schema import schema_problems
from conformity.errors import InputError
from conformity.infrastructure_keys import InfrastructureKeys
from conformity.payments import reasons
from conformity.payments.intake import read_lines
from conformity.segments import SEGMENT_FORMAT, payload_bytes, sidecar_path
from conformity.signing import unverified_payload, verify_envelope

MAX_ENTRY_BYTES = 64 * 1024
CHUNK = 8 << 20
SCHEMA = "event-segment"


@dataclass(frozen=True, slots=True)
class Span:
    """Lines ``first``..``last`` (``None``: to the end of the file): proven (``reason`` None) or refused."""

    first: int
    last: int | None
    reason: str | None
    detail: str = ""
    sources: frozenset[str] = frozenset()
    seq: int | None = None
    sha256: str = ""  # of a proven (or unread) span: the signed hash of its lines
    #: a signed segment whose lines were not read yet (``authenticate(read=False)``): :func:`settle` makes it proven
    #: or refused once they are, from their hash and, if that matches, ``chain`` (the chain problem, if any)
    unread: bool = False
    chain: str = ""
    signed_in: str = ""  # "segment 3 (<sidecar> line 4)", for the details
    kid: str = ""

    def row(self) -> dict[str, Any]:
        """As a table row (for a join on a columnar engine)."""
        return {"first_line": self.first, "last_line": self.last, "reason": self.reason, "detail": self.detail,
                "sources": sorted(self.sources), "seq": self.seq, "sha256": self.sha256}


@dataclass(slots=True)
class FileProof:
    """What the signed segments of one events file prove."""

    events: Path
    sidecar: Path
    spans: list[Span] = field(default_factory=list)
    entries: int = 0
    proven_segments: int = 0
    proven_lines: int = 0
    keys: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        refused = [s for s in self.spans if s.reason is not None]
        return {"file": str(self.events), "segments_file": str(self.sidecar), "segments": self.entries,
                "segments_proven": self.proven_segments, "lines_proven": self.proven_lines,
                "keys": sorted(self.keys), "refused_spans": [s.row() for s in refused[:20]],
                "refused_spans_more": max(0, len(refused) - 20), "notes": self.notes[:20],
                "seconds": round(self.seconds, 3)}


class _Lines:
    """The events file read forward by whole lines (a last line without LF counts as a line, as intake reads it)."""

    def __init__(self, fh: IO[bytes]):
        self.fh = fh
        self.line = 1  # the next line to read
        self.taken = 0  # lines the last take or skip went past

    def take(self, count: int, length: int | None = None) -> tuple[str, int]:
        """SHA-256 (hex) of the next ``count`` lines' bytes and how many lines there were (fewer at the end)."""
        start = self.fh.tell()
        if length is not None:  # the signed length: one hash over big reads, no per-line work
            h, remaining, newlines, last = hashlib.sha256(), length, 0, b""
            while remaining:
                chunk = self.fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                h.update(chunk)
                newlines += chunk.count(b"\n")
                remaining -= len(chunk)
                last = chunk[-1:]
            if remaining == 0 and newlines == count and last == b"\n":
                self.line += count
                self.taken = count
                return h.hexdigest(), count
            self.fh.seek(start)
        digest = self._advance(count, hashlib.sha256())
        return digest, self.taken

    def skip(self, count: int) -> int:
        """Move past the next ``count`` lines; how many there were."""
        self._advance(count, None)
        return self.taken

    def _advance(self, count: int, h: Any) -> str:
        n, partial = 0, False
        while n < count:
            base = self.fh.tell()
            chunk = self.fh.read(CHUNK)
            if not chunk:
                n += partial  # an unterminated last line
                break
            i = 0
            while n < count:
                j = chunk.find(b"\n", i)
                if j < 0:
                    break
                i, n = j + 1, n + 1
            if n == count:
                if h is not None:
                    h.update(chunk[:i])
                self.fh.seek(base + i)
                break
            if h is not None:
                h.update(chunk)
            partial = i < len(chunk)
        self.line += n
        self.taken = n
        return h.hexdigest() if h is not None else ""


@dataclass(slots=True)
class _Entry:
    """One sidecar entry: its payload when verified, else the problem and what it claims (unverified)."""

    doc: dict[str, Any] | None
    claimed: dict[str, Any] | None
    kid: str
    problem: str
    payload_hash: str | None


def _int(value: Any) -> TypeGuard[int]:
    return type(value) is int and 0 <= value < 1 << 53


def _position(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload, if it says where it is (first_line, last_line); None when it does not."""
    first, last = payload.get("first_line"), payload.get("last_line")
    if not (_int(first) and _int(last) and 1 <= first <= last):
        return None
    return payload


def _claims(doc: Any) -> dict[str, Any] | None:
    """The position an unverified segment claims (first_line, last_line, seq, stream, prev), if it reads as one."""
    try:
        return _position(unverified_payload(doc))
    except InputError:
        return None


def _read(raw: bytes | None, trust: InfrastructureKeys, where: str) -> _Entry:
    if raw is None:
        return _Entry(None, None, "", f"longer than {MAX_ENTRY_BYTES} bytes: not a segment", None)
    try:
        doc = jsonio.loads(raw, source=where)
    except InputError as exc:
        return _Entry(None, None, "", str(exc), None)
    try:
        payload_hash: str | None = hashlib.sha256(payload_bytes(doc)).hexdigest()
    except (ValueError, UnicodeEncodeError, KeyError, TypeError):
        payload_hash = None
    try:
        verified = verify_envelope(doc, trust.ring, source=where)
    except InputError as exc:
        return _Entry(None, _claims(doc), "", "; ".join(p.message for p in exc.problems), payload_hash)
    payload = verified.payload
    claimed = _position(payload)
    if payload.get("format") != SEGMENT_FORMAT:
        return _Entry(None, claimed, verified.kid, f"not a segment (format {payload.get('format')!r})", payload_hash)
    problems = schema_problems(SCHEMA, payload, where)
    if problems:
        return _Entry(None, claimed, verified.kid, "not a valid segment: " + "; ".join(
            f"{p.where}: {p.message}" for p in problems[:3]), payload_hash)
    if payload["issuer"]["key_id"] != verified.kid:
        return _Entry(None, claimed, verified.kid, "issuer.key_id is not the signing key", payload_hash)
    if payload["count"] != payload["last_line"] - payload["first_line"] + 1:
        return _Entry(None, claimed, verified.kid, "count is not last_line - first_line + 1", payload_hash)
    return _Entry(payload, payload, verified.kid, "", payload_hash)


class _Walk:
    """The state of the walk through the sidecar: where the next segment must start and what it must follow."""

    def __init__(self, proof: FileProof, lines: _Lines | None, trust: InfrastructureKeys):
        self.proof, self.lines, self.trust = proof, lines, trust
        self.next_line, self.next_seq = 1, 0
        self.prev: str | None = None
        self.stream: str | None = None
        self.after = "the start of the file"

    def span(self, first: int, last: int | None, reason: str | None, detail: str = "",
             sources: frozenset[str] = frozenset(), seq: int | None = None, sha256: str = "") -> None:
        self.proof.spans.append(Span(first, last, reason, detail, sources, seq, sha256))

    def entry(self, number: int, entry: _Entry) -> bool:
        """Place one sidecar entry; False when the rest of the file can no longer be attributed."""
        where = f"{self.proof.sidecar.name} line {number}"
        claimed = entry.claimed
        if claimed is None:
            self.span(self.next_line, None, reasons.EVENT_SIGNATURE_INVALID,
                      f"{where} is not a readable segment ({entry.problem}): no line from here on can be "
                      "attributed to a signed segment")
            return False
        first, last = claimed["first_line"], claimed["last_line"]
        seq = claimed.get("seq")
        name = f"segment {seq}" if _int(seq) else where
        if last < self.next_line:  # wholly inside what earlier segments cover: a replayed or reordered entry
            self.proof.notes.append(f"{where}: {name} (lines {first}-{last}) covers lines already covered; ignored")
            return True
        chain = self._chain_problem(claimed, first)
        if first > self.next_line:
            self.span(self.next_line, first - 1, reasons.EVENT_UNSIGNED,
                      f"lines {self.next_line}-{first - 1} are in no segment (a gap after {self.after})")
            if self.lines is not None:
                self.lines.skip(first - self.next_line)
        elif first < self.next_line:  # overlaps lines already covered: the rest of it cannot be hashed alone
            self.span(self.next_line, last, reasons.CHAIN_BROKEN,
                      f"{name} ({where}) claims lines {first}-{last}, overlapping lines already covered")
            if self.lines is not None:
                self.lines.skip(last - self.next_line + 1)
            self._advance(claimed, last, entry.payload_hash, name)
            return True
        count = last - first + 1
        if entry.doc is None:
            self.span(first, last, reasons.EVENT_SIGNATURE_INVALID, f"{name} ({where}): {entry.problem}", seq=seq)
            if self.lines is not None:
                self.lines.skip(count)
        else:
            sources = self.trust.sources_of(entry.kid) & frozenset(entry.doc["sources"])
            self.proof.spans.append(Span(first, last, None, "", sources, seq, entry.doc["sha256"], unread=True,
                                         chain=chain, signed_in=f"{name} ({where})", kid=entry.kid))
            if self.lines is not None:
                settle(self.proof, len(self.proof.spans) - 1, *self.lines.take(count, entry.doc["length"]))
        self._advance(claimed, last, entry.payload_hash, name)
        return True

    def _chain_problem(self, claimed: dict[str, Any], first: int) -> str:
        if first != self.next_line:
            return f"starts at line {first}, not right after {self.after} (line {self.next_line})"
        if self.stream is not None and claimed.get("stream") != self.stream:
            return f"belongs to another events stream ({claimed.get('stream')!r}, not {self.stream!r})"
        if claimed.get("seq") != self.next_seq:
            return f"has seq {claimed.get('seq')!r} where seq {self.next_seq} was due after {self.after}"
        if claimed.get("prev") != self.prev:
            return f"does not chain to {self.after} (prev is not the SHA-256 of its payload)"
        return ""

    def _advance(self, claimed: dict[str, Any], last: int, payload_hash: str | None, name: str) -> None:
        self.next_line = last + 1
        seq = claimed.get("seq")
        self.next_seq = seq + 1 if _int(seq) else self.next_seq + 1
        self.prev = payload_hash
        if self.stream is None and isinstance(claimed.get("stream"), str):
            self.stream = claimed["stream"]
        self.after = name


def settle(proof: FileProof, k: int, digest: str, found: int) -> Span:
    """Span ``k`` of ``proof``, unread until now, once its lines were read: ``found`` lines (fewer when the file
    ends inside it) whose bytes have the SHA-256 ``digest``. Proven if they are the signed lines and its chain
    holds; refused otherwise (``event-segment-mismatch``, else ``event-chain-broken``)."""
    s = proof.spans[k]
    assert s.unread and s.last is not None
    count = s.last - s.first + 1
    if digest != s.sha256 or found != count:
        short = f"; the file has only {s.first + found - 1} lines" if found < count else ""
        done = Span(s.first, s.last, reasons.SEGMENT_MISMATCH,
                    f"lines {s.first}-{s.last} do not hash to the value signed in {s.signed_in}: a line was "
                    f"edited, added, removed or reordered here or before{short}", seq=s.seq)
    elif s.chain:
        done = Span(s.first, s.last, reasons.CHAIN_BROKEN, f"{s.signed_in} {s.chain}", seq=s.seq)
    else:
        done = Span(s.first, s.last, None, "", s.sources, s.seq, s.sha256)
        proof.proven_segments += 1
        proof.proven_lines += count
        proof.keys.add(s.kid)
    proof.spans[k] = done
    return done


def authenticate(events: Path, trust: InfrastructureKeys, read: bool = True) -> FileProof:
    """The spans of ``events`` that its signed segments prove, and the refused ones with their reason.

    ``read=False``: only the sidecar is read and its signatures, schema and chain checked; each segment so far
    valid is a span left ``unread``, made proven or refused by :func:`settle` when the caller has read and
    hashed its lines (``loader.batches``: the file is read once, and the bytes parsed are the bytes hashed)."""
    started = time.perf_counter()
    sidecar = sidecar_path(events)
    proof = FileProof(events, sidecar)
    if not sidecar.is_file():
        proof.spans.append(Span(1, None, reasons.EVENT_UNSIGNED,
                                f"no signed segments for this file ({sidecar.name} not found beside it)"))
        return proof
    try:
        with open(events, "rb") if read else contextlib.nullcontext() as fh:
            walk = _Walk(proof, _Lines(fh) if fh is not None else None, trust)
            for number, raw in read_lines(sidecar, MAX_ENTRY_BYTES):
                proof.entries += 1
                if not walk.entry(number, _read(raw, trust, f"{sidecar.name} line {number}")):
                    break
            else:
                walk.span(walk.next_line, None, reasons.EVENT_UNSIGNED,
                          f"after the last sealed segment ({walk.after}, line {walk.next_line - 1}): "
                          "not sealed yet, or appended after sealing" if proof.entries else
                          f"{sidecar.name} holds no segment: no line is sealed yet")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=exc.filename or sidecar) from exc
    proof.seconds = time.perf_counter() - started
    return proof


class FileChanged(InputError):
    """The events file changed between the verification of its segments and the reading of its events."""
