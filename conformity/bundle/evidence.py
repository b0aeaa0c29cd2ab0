"""Evidence for document and manual requirements: what a bundle may carry, judged by content, bounded.

A vendor attaches files (``usine run --evidence REQ-ID=FILE`` or the ``[evidence]`` table of
vendor.toml). Each file is accepted only when its bytes are one of the allowed types, whatever its
name says:

* ``application/pdf``: starts with ``%PDF-1.`` or ``%PDF-2.`` and has an ``%%EOF`` marker in its last KiB;
* ``image/png``: the PNG signature, an ``IHDR`` chunk first and an ``IEND`` chunk last;
* ``application/json``: strict JSON (``conformity.jsonio``: UTF-8, bounded depth), an object or an array;
* ``text/plain``: UTF-8 text without NUL or other control characters than tab, line feed, form feed and
  carriage return.

Anything else (ZIP and office documents, executables, JPEG…) is refused and the message says what it
looks like. Files are bounded (:data:`MAX_FILE_BYTES` each, :data:`MAX_TOTAL_BYTES` and
:data:`MAX_FILES` per run). In a bundle a file is the member ``evidence/<REQ-ID>/<name>``; the list
(requirement → file, SHA-256, size, media type) is in the manifest, in report.json and, what makes it
trustworthy, in the ``scenario.start`` note of every sandbox-signed trace of the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformity import jsonio
from conformity.errors import InputError
from conformity.signing import sha256_hex

MiB = 1024 * 1024
MAX_FILE_BYTES = 16 * MiB
MAX_TOTAL_BYTES = 64 * MiB
MAX_FILES = 64
PREFIX = "evidence/"
REQUIREMENT_ID = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]{3}$")
MEMBER = re.compile(r"^evidence/([A-Z][A-Z0-9]*-[0-9]{3})/([A-Za-z0-9_][A-Za-z0-9._-]{0,99})$")
ALLOWED = "PDF, PNG, JSON or UTF-8 text"
_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_TEXT_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13}
#: one of them, or DEL: searched in C (a Python loop over each character of a 16 MiB file took 2 s)
_TEXT_CONTROL = re.compile("[" + "".join(f"\\x{c:02x}" for c in sorted(_TEXT_CONTROLS | {127})) + "]")
#: what a refused file looks like, by its first bytes (for the message only)
_LOOKS_LIKE = ((b"PK\x03\x04", "a ZIP archive (or an office document, which is one)"),
               (b"\x7fELF", "an ELF executable"), (b"MZ", "a Windows executable"),
               (b"\xff\xd8\xff", "a JPEG image (convert it to PNG or PDF)"), (b"GIF8", "a GIF image"),
               (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
               (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"), (b"RIFF", "a RIFF file (WebP, AVI, WAV)"),
               (b"\x00\x00\x00", "a video or other binary container"))


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One attached file: the requirement it is for, its member name in the bundle, hash, size, type."""

    requirement: str
    file: str
    sha256: str
    bytes: int
    media_type: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "bytes": self.bytes, "media_type": self.media_type}


@dataclass(frozen=True, slots=True)
class Attached:
    """The evidence of one run: its files, and their bytes by member name (read once, hashed, carried)."""

    files: tuple[EvidenceFile, ...] = ()
    data: Mapping[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return evidence_json(self.files)


def evidence_json(files: Iterable[EvidenceFile]) -> dict[str, list[dict[str, Any]]]:
    """Requirement → its files (sorted), as the manifest, the report and the signed traces carry them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(files, key=lambda f: (f.requirement, f.file)):
        out.setdefault(f.requirement, []).append(f.to_json())
    return out


def from_json(value: Mapping[str, Any]) -> tuple[EvidenceFile, ...]:
    """The files of an evidence listing (already checked against its schema)."""
    return tuple(EvidenceFile(req, f["file"], f["sha256"], f["bytes"], f["media_type"])
                 for req, files in sorted(value.items()) for f in files)


def _looks_like(data: bytes) -> str:
    for magic, what in _LOOKS_LIKE:
        if data.startswith(magic):
            return what
    return "binary data"


def sniff(data: bytes) -> str:
    """The media type of ``data`` when it is an allowed type; InputError saying what it is otherwise."""
    if not data:
        raise InputError("empty file")
    if data.startswith((b"%PDF-1.", b"%PDF-2.")):
        if b"%%EOF" not in data[-1024:]:
            raise InputError("starts like a PDF but has no %%EOF marker at its end (truncated?)")
        return "application/pdf"
    if data.startswith(_PNG):
        if data[12:16] != b"IHDR" or not data.endswith(_PNG_END):
            raise InputError("starts like a PNG but its chunks are not IHDR first and IEND last (truncated?)")
        return "image/png"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"type not allowed: {_looks_like(data)}; evidence must be {ALLOWED}") from None
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        try:
            jsonio.loads(text, source="evidence")
        except InputError as exc:
            raise InputError(f"looks like JSON but is not acceptable: {exc.problems[0].message}") from None
        return "application/json"
    found = _TEXT_CONTROL.search(text)
    if found is not None:
        bad = found.start()
        raise InputError(f"type not allowed: {_looks_like(data)} (control character U+{ord(text[bad]):04X} at "
                         f"character {bad}); evidence must be {ALLOWED}")
    return "text/plain"


def member_name(requirement: str, filename: str, taken: set[str]) -> str:
    """``evidence/<REQ-ID>/<safe name>``: the file's base name with unsafe characters replaced, unique."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", filename.rsplit("/", 1)[-1]).lstrip(".-") or "file"
    stem, dot, ext = base[:90].rpartition(".") if "." in base[:90] else (base[:90], "", "")
    stem = stem or "file"
    name, n = f"{PREFIX}{requirement}/{stem}{dot}{ext}", 1
    while name in taken:
        n += 1
        name = f"{PREFIX}{requirement}/{stem}-{n}{dot}{ext}"
    taken.add(name)
    return name


def attach(requirement: str, filename: str, data: bytes, taken: set[str]) -> EvidenceFile:
    """One file as evidence (InputError when its type or size is not allowed)."""
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{len(data)} bytes, more than the {MAX_FILE_BYTES} allowed per evidence file")
    media_type = sniff(data)
    return EvidenceFile(requirement, member_name(requirement, filename, taken), sha256_hex(data), len(data), media_type)
