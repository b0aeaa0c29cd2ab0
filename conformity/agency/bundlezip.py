"""Read an evidence bundle (zip) safely: bounded, in memory, nothing extracted, every unsafe member named.

An archive whose central directory declares more members than allowed, or more bytes than that many members take,
is refused before its directory is parsed.
Refused members (never read): absolute paths, ``..`` or empty components, backslashes, control
characters, directories, symlinks and other non-regular files, encrypted members, duplicates, and any
member larger than the limit (judged on the size the zip declares, then enforced while reading).
The archive is refused as a whole when it holds too many members or too many bytes in total.
"""

from __future__ import annotations

import hashlib
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from conformity.errors import InputError, Problem

MiB = 1024 * 1024
_CHUNK = 1 << 16
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Bounds on what the agency reads from one bundle."""

    max_archive_bytes: int = 512 * MiB
    max_members: int = 512
    max_member_bytes: int = 64 * MiB
    max_total_bytes: int = 256 * MiB
    max_name_length: int = 200


@dataclass(slots=True)
class BundleArchive:
    """The safe members of a bundle (name → bytes), the names it holds, and what was refused in it."""

    path: Path
    sha256: str
    size: int
    members: dict[str, bytes] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def refuse(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.path.name, where, message))


def unsafe_name(name: str, original: str, limit: int) -> str | None:
    """Why a member name is unsafe to accept, or None."""
    if name != original or "\x00" in original:
        return "name contains a NUL byte"
    if not name:
        return "empty name"
    if len(name) > limit:
        return f"name longer than {limit} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "name contains a control character"
    if "\\" in name:
        return "name contains a backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "path escapes the bundle (..)"
    if name.endswith("/"):
        return "directory entry"
    if any(p in ("", ".") for p in parts):
        return "empty or '.' path component"
    return None


def _kind_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not a plain regular file, or None."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if kind not in (0, stat.S_IFREG):
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted member"
    return None


def _file_digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | str:
    """The member's bytes, or why not: never more than ``min(limit, declared size)`` bytes are kept."""
    cap = min(limit, info.file_size)
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(min(_CHUNK, cap + 1 - len(out))):
                out += chunk
                if len(out) > cap:
                    return f"holds more than its declared {info.file_size} bytes"
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        return f"corrupt member: {exc}"
    except NotImplementedError as exc:
        return f"unsupported compression: {exc}"
    return bytes(out)


DEFAULT_LIMITS = ZipLimits()
#: what one member's central directory record may take beyond its name: the record (46 bytes), extra fields (time
#: stamps, ZIP64 sizes) and a comment, generously
_RECORD_ALLOWANCE = 1024
_END = b"PK\x05\x06"
_END64, _END64_LOCATOR = b"PK\x06\x06", b"PK\x06\x07"


def _declared_directory(path: Path) -> tuple[int, int] | None:
    """(entries, bytes) of the central directory, as the archive's end record declares them (its ZIP64 record when
    it has one); None when no end record is found (the zip reader then says what is wrong)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        start = max(0, size - (22 + 0xFFFF))  # the end record (22 bytes) and a comment of at most 64 KiB
        fh.seek(start)
        tail = fh.read()
        # found as Python's reader finds it: a record with no comment at the very end, else the last signature
        at = len(tail) - 22 if tail[-22:-18] == _END and tail[-2:] == b"\0\0" else tail.rfind(_END)
        if at < 0 or len(tail) - at < 22:
            return None
        entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
        locator = tail[at - 20:at] if at >= 20 else b""
        if locator[:4] == _END64_LOCATOR:
            fh.seek(struct.unpack("<Q", locator[8:16])[0])
            record = fh.read(56)
            if record[:4] == _END64 and len(record) == 56:
                entries, directory = struct.unpack("<QQ", record[32:48])
    return entries, directory


def _directory_problem(path: Path, limits: ZipLimits) -> str | None:
    """Why the archive's central directory is not even parsed (too many entries, or more bytes than that many entries
    take), or None. Python's zip reader builds an object for every entry of the directory before any limit can be
    applied, and reads as many as the directory's size holds whatever count the end record declares: a directory of
    millions of tiny entries costs a verifier seconds and hundreds of megabytes."""
    declared = _declared_directory(path)
    if declared is None:
        return None
    entries, directory = declared
    if entries > limits.max_members:
        return f"{entries} members, more than the {limits.max_members} allowed; nothing read"
    most = limits.max_members * (limits.max_name_length + _RECORD_ALLOWANCE)
    if directory > most:
        return (f"a central directory of {directory} bytes, more than {limits.max_members} members take (at most "
                f"{most} bytes); nothing read")
    return None


def open_bundle(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> BundleArchive:
    """Read a bundle's members within ``limits``; InputError only when the file is not a readable zip."""
    if not path.is_file():
        raise InputError("bundle not found (or not a file)", file=path)
    if path.stat().st_size > limits.max_archive_bytes:
        raise InputError(f"bundle is larger than {limits.max_archive_bytes} bytes; not read", file=path)
    try:
        sha, size = _file_digest(path)
        too_large = _directory_problem(path, limits)
        if too_large is not None:
            archive = BundleArchive(path, sha, size)
            archive.refuse("", too_large)
            return archive
        zf = zipfile.ZipFile(path)
    except OSError as exc:
        raise InputError(f"cannot read bundle: {exc.strerror or exc}", file=path) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise InputError(f"not a zip archive: {exc}", file=path) from exc
    archive = BundleArchive(path, sha, size)
    with zf:
        infos = zf.infolist()
        archive.names = [i.filename for i in infos]
        if len(infos) > limits.max_members:
            archive.refuse("", f"{len(infos)} members, more than the {limits.max_members} allowed; nothing read")
            return archive
        total, seen = 0, set[str]()
        for info in infos:
            name = info.filename
            why = unsafe_name(name, info.orig_filename, limits.max_name_length) or _kind_problem(info)
            if why is None and name in seen:
                why = "duplicate member name"
            if why is None and info.file_size > limits.max_member_bytes:
                why = f"member of {info.file_size} bytes exceeds the {limits.max_member_bytes}-byte limit; not read"
            if why is None and total + info.file_size > limits.max_total_bytes:
                why = f"bundle exceeds {limits.max_total_bytes} bytes uncompressed in total; member not read"
            seen.add(name)
            if why is None:
                data = _read_bounded(zf, info, limits.max_member_bytes)
                if isinstance(data, str):
                    why = data
                else:
                    total += len(data)
                    archive.members[name] = data
            if why is not None:
                archive.refuse(repr(name), why)
    return archive
