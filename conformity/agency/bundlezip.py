"""Read an evidence bundle (zip) safely: bounded, in memory, nothing extracted, every unsafe member named.

Refused members (never read): absolute paths, ``..`` or empty components, backslashes, control
characters, directories, symlinks and other non-regular files, encrypted members, duplicates, and any
member larger than the limit (judged on the size the zip declares, then enforced while reading).
The archive is refused as a whole when it holds too many members or too many bytes in total.
"""

from __future__ import annotations

import hashlib
import re
import stat
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


def open_bundle(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> BundleArchive:
    """Read a bundle's members within ``limits``; InputError only when the file is not a readable zip."""
    if not path.is_file():
        raise InputError("bundle not found (or not a file)", file=path)
    if path.stat().st_size > limits.max_archive_bytes:
        raise InputError(f"bundle is larger than {limits.max_archive_bytes} bytes; not read", file=path)
    try:
        sha, size = _file_digest(path)
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
