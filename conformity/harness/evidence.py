"""Collect a run's evidence before anything runs: the vendor's files for the plan's document and manual
requirements, every problem reported at once (unknown id, automated requirement, not applicable, file
missing, too large, type not allowed). See ``conformity.bundle.evidence`` for the rules on files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conformity.bundle.evidence import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_TOTAL_BYTES,
    REQUIREMENT_ID,
    Attached,
    EvidenceFile,
    attach,
)
from conformity.catalog import Catalog
from conformity.errors import InputError, Problem
from conformity.files import real_path
from conformity.harness.plan import Plan


@dataclass(frozen=True, slots=True)
class Source:
    """One file the vendor named for a requirement, and where it was named (for messages)."""

    requirement: str
    path: Path
    where: str
    #: False for vendor.toml's table, which serves every wave and category: an entry this plan does not
    #: review (not applicable here, or automated in this wave's pinned version) is left out with a note
    strict: bool = True


def parse_option(text: str) -> Source:
    """``REQ-ID=FILE`` (the ``--evidence`` option) as a source."""
    req, sep, file = text.partition("=")
    req = req.strip()
    if not sep or not file or not REQUIREMENT_ID.match(req):
        raise InputError(f"expected REQ-ID=FILE (e.g. REF-013=certificate.pdf), got {text!r}",
                         where="--evidence")
    return Source(req, Path(file), f"--evidence {req}")


def _not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a file: missing (where it was looked for), a folder, a dangling link, or a
    named pipe, device or socket."""
    where = path.absolute()
    if path.is_symlink() and not path.exists():
        return f"a symbolic link to a file that does not exist ({where} → {os.readlink(path)})"
    if path.is_dir():
        return f"a folder, not a file ({where}): name each file of it (in vendor.toml, a list for several)"
    if path.exists():
        return (f"not a regular file (a named pipe, a device or a socket: {where}): copy what it holds into a file "
                "and name that file")
    return (f"not found at {where} (an --evidence path is relative to the current folder, an [evidence] path of "
            "vendor.toml to that file's folder)")


def _size(path: Path) -> int:
    """The size of a regular file (0 for anything else: its problem is said when it is read)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _read(path: Path) -> bytes | str:
    """The file's bytes, or why not (never more than the limit is read)."""
    try:
        if not path.is_file():
            return _not_a_file(path)
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return f"larger than the {MAX_FILE_BYTES} bytes allowed per evidence file"
    return data


def collect(catalog: Catalog, plan: Plan, sources: Iterable[Source]) -> tuple[Attached, list[str]]:
    """The run's evidence, and notes on evidence left out (outside ``--only``; or, from vendor.toml's table,
    not reviewed in this wave and category).

    InputError listing every problem when a source names an unknown requirement, a ``--evidence`` names one
    proven by automated checks or not applicable to the wave and category, or a file cannot be attached.
    """
    known = {r.id: r for ref in catalog.referentials.values() for r in ref.requirements}
    applicable = {a.id: a for a in plan.spec.requirements}
    planned = {p.id for p in plan.requirements}
    problems: list[Problem] = []
    notes: list[str] = []
    outside_only: list[str] = []  # one note for them all: a vendor iterating with --only reads it on every run
    files: list[EvidenceFile] = []
    data: dict[str, bytes] = {}
    taken: set[str] = set()
    seen: set[tuple[str, Path]] = set()
    total = 0
    pending: list[Source] = []  # the files to attach, read once every source is known
    for src in sources:
        key = (src.requirement, real_path(src.path))
        if key in seen:
            continue
        seen.add(key)
        req = applicable.get(src.requirement)
        if src.requirement not in known:
            problems.append(Problem(str(src.path), src.where, f"unknown requirement id {src.requirement}"))
            continue
        if req is None and not src.strict:
            notes.append(f"evidence for {src.requirement} ({src.path}) left out: it does not apply to {plan.wave} "
                         f"{plan.category}")
            continue
        if req is None:
            problems.append(Problem(str(src.path), src.where, f"{src.requirement} does not apply to {plan.wave} "
                                                               f"{plan.category}"))
            continue
        method = req.requirement.proof.method
        if method == "automated" and not src.strict:
            notes.append(f"evidence for {src.requirement} ({src.path}) left out: {plan.wave} proves it by automated "
                         "checks")
            continue
        if method == "automated":
            problems.append(Problem(str(src.path), src.where, f"{src.requirement} is proven by automated checks "
                                                               f"({', '.join(req.requirement.proof.checks)}); "
                                                               "evidence is for document and manual requirements"))
            continue
        if src.requirement not in planned:
            outside_only.append(src.requirement)
            continue
        pending.append(src)
    if outside_only:
        names = sorted(set(outside_only), key=outside_only.index)
        notes.append(f"evidence for {len(names)} requirement(s) left out: the run covers only --only "
                     f"({', '.join(names)})")
    # the run's bounds from the files' sizes, before any is read: past them, nothing is read (64 requirements × 16
    # files of 16 MiB would be 16 GiB in memory before a refusal)
    sizes = [_size(src.path) for src in pending]
    over = len(pending) > MAX_FILES or sum(sizes) > MAX_TOTAL_BYTES
    for src, size in zip(pending, sizes, strict=True):
        if over:  # what can be said without reading
            why = _not_a_file(src.path) if not src.path.is_file() else (
                f"larger than the {MAX_FILE_BYTES} bytes allowed per evidence file" if size > MAX_FILE_BYTES else "")
            if why:
                problems.append(Problem(str(src.path), src.where, why))
            continue
        content = _read(src.path)
        if isinstance(content, str):
            problems.append(Problem(str(src.path), src.where, content))
            continue
        try:
            f = attach(src.requirement, src.path.name, content, taken)
        except InputError as exc:
            problems.append(Problem(str(src.path), src.where, exc.problems[0].message))
            continue
        total += f.bytes
        files.append(f)
        data[f.file] = content
    count, total = (len(pending), sum(sizes)) if over else (len(files), total)
    if count > MAX_FILES:
        problems.append(Problem("", "evidence", f"{count} evidence files, more than the {MAX_FILES} allowed"))
    if total > MAX_TOTAL_BYTES:
        problems.append(Problem("", "evidence", f"{total} bytes of evidence, more than the {MAX_TOTAL_BYTES} allowed"))
    if problems:
        raise InputError(problems)
    return Attached(tuple(files), data), notes


def vendor_sources(table: Iterable[tuple[str, Path]]) -> list[Source]:
    """The ``[evidence]`` table of vendor.toml as sources."""
    return [Source(req, path, f"vendor.toml [evidence] {req}", strict=False) for req, path in table]
