"""Files: written so that nothing is ever half-written (the one place usine does atomic output), kept private
when they hold secrets, and read within a bound."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import secrets
import shutil
import ssl
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal

from conformity.errors import InputError

#: a temporary file beside an output (``.NAME.XXXXXXXX``) not modified for this long is left by a write that was
#: killed (SIGKILL, a power cut): the next write of NAME removes it. A live writer's is younger: it is being written.
STALE_TEMPORARY = dt.timedelta(hours=1)
_TEMPORARY_TAIL = re.compile(r"[a-z0-9_]{8}")  # tempfile.mkstemp's random part
_FOLDER_TAIL = re.compile(r"new-[a-z0-9_]{8}|old-[0-9a-f]{12}")  # folder_set's: mkdtemp's, secrets.token_hex(6)'s
_BUILDING: set[Path] = set()  # folders folder_set is building: new, holding no one's leftovers


@contextmanager
def atomic_output(path: Path, mode: str = "w", **open_args: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path`` (and fsync the folder),
    else remove it. A symbolic link at ``path`` is replaced by the file, never followed: an output goes where it was
    asked for, not where a link planted there points. A kill leaves the temporary file: once in place, the temporary
    files of ``path`` older than :data:`STALE_TEMPORARY` are removed (:func:`sweep_temporaries`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:  # said of the file asked for, not of its folder nor of a temporary name the user never gave
        raise OSError(exc.errno, output_problem(path) or exc.strerror, str(path)) from exc
    building = _being_built(path.parent)
    try:
        with os.fdopen(fd, mode, **open_args) as fh:
            yield fh
            fh.flush()
            if not building:
                os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:  # e.g. a folder by that name
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if not building:  # (in a folder folder_set builds, it makes every file and folder durable once, before its swap)
        fsync_folder(path.parent)
        sweep_temporaries(path)


def _being_built(folder: Path) -> bool:
    """Whether ``folder`` is, or is inside, a folder :func:`folder_set` is building: new, no one reads it until it is
    swapped in, and its files and folders are all made durable before that."""
    return bool(_BUILDING) and (folder in _BUILDING or any(parent in _BUILDING for parent in folder.parents))


def sweep_temporaries(path: Path) -> list[Path]:
    """Remove what killed writes of ``path`` left beside it: regular files named ``.NAME.XXXXXXXX`` (as
    :func:`atomic_output` and :func:`output_set` name their temporary files) not modified for
    :data:`STALE_TEMPORARY`. A younger one may be a live writer's, and is left; links, folders and other names are
    never touched. Never raises (a sweep that cannot list or remove leaves the files: the write is done); the
    files removed."""
    return sweep_stale(path.parent, _beside(path, _TEMPORARY_TAIL), STALE_TEMPORARY, kind="file")


def sweep_folder_leftovers(folder: Path) -> list[Path]:
    """Remove what killed :func:`folder_set` calls for ``folder`` left beside it: folders named ``.NAME.new-XXXXXXXX``
    (one being built) or ``.NAME.old-XXXXXXXXXXXX`` (the one replaced, not yet removed) in which nothing was modified
    for :data:`STALE_TEMPORARY`, removed with all they hold. Links, files and other names are never touched, nor
    followed. Never raises; the folders removed."""
    return sweep_stale(folder.parent, _beside(folder, _FOLDER_TAIL), STALE_TEMPORARY, kind="folder")


def sweep_stale(folder: Path, name: re.Pattern[str], age: dt.timedelta, *, kind: Literal["file", "folder"],
                unclaimed: Callable[[list[str]], Collection[str]] | None = None) -> list[Path]:
    """Remove the entries of ``folder`` named ``name`` (the whole name) that are a ``kind`` in which nothing was
    modified for ``age``: what a killed process left there (a regular file; a folder, with all it holds). Links are
    neither removed nor followed; an entry that cannot be read or removed is left. Never raises (the work that
    sweeps is done; the next sweep tries again); those removed. A folder being built holds no one's leftovers.
    ``unclaimed``, given the names found (after the folder is read), returns those no one still needs: only these."""
    if folder in _BUILDING:
        return []
    cutoff, remove = time.time() - age.total_seconds(), _remove_stale_file if kind == "file" else _remove_stale_folder
    try:
        with os.scandir(folder) as entries:
            found = [e for e in entries if name.fullmatch(e.name)]
    except OSError:
        return []
    if unclaimed is not None and found:
        free = set(unclaimed([e.name for e in found]))
        found = [e for e in found if e.name in free]
    removed = []
    for entry in found:
        try:
            if remove(entry, cutoff):
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile (another sweep), or not ours to remove: left
            continue
    return removed


def _beside(path: Path, tail: re.Pattern[str]) -> re.Pattern[str]:
    """The names ``.NAME.`` then ``tail`` of what a write of ``path`` makes beside it."""
    return re.compile(re.escape(f".{path.name}.") + f"(?:{tail.pattern})")


def _remove_stale_file(entry: os.DirEntry[str], cutoff: float) -> bool:
    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
        os.unlink(entry.path)
        return True
    return False


def _remove_stale_folder(entry: os.DirEntry[str], cutoff: float) -> bool:
    if entry.is_dir(follow_symlinks=False) and _last_modified(Path(entry.path)) < cutoff:
        shutil.rmtree(entry.path)  # removes links inside, never what they lead to
        return True
    return False


def _last_modified(folder: Path) -> float:
    """When anything in ``folder`` (itself, or what lies under it, links not followed) was last modified: a folder a
    live writer fills deep down is not stale because its own entries are old."""
    newest = folder.lstat().st_mtime
    for here, folders, files in os.walk(folder):
        for name in folders + files:
            newest = max(newest, os.lstat(os.path.join(here, name)).st_mtime)
    return newest


def fsync_file(path: Path) -> None:
    """Make a file written by someone else's code (a library that does not fsync) durable before it is renamed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_into(source: Path, target: Path) -> Path:
    """Rename ``source`` (a file written here, on ``target``'s file system) over ``target`` durably: the file fsync'd
    before the rename, ``target``'s folder after it. Once this returns, a power cut keeps ``target`` whole: what a
    record naming it (a received upload, a witnessed run's bundle) may then be committed after."""
    fsync_file(source)
    os.replace(source, target)
    fsync_folder(target.parent)
    return target


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable (a rename is in the folder, not in the file: without this, a power cut
    after "written" may bring back the old file, or none)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def output_problem(path: Path, *, folder: bool = False) -> str | None:
    """Why an output cannot be made at ``path`` (a file, or a folder when ``folder``), found without creating
    anything; None when nothing is in the way. A link to nothing (a loop, a target gone) at a file's place is no
    problem: the file replaces it (:func:`atomic_output`); a folder cannot replace it."""
    if path.is_dir():
        return None if folder else "a folder is there, not a file"
    if path.is_symlink():
        return None if not folder else "a symbolic link to no folder is there: a loop, or its target missing"
    if path.exists():
        return None if not folder else "a file is there, not a folder"
    for above in path.parents:
        if above.is_dir():
            return None if os.access(above, os.W_OK | os.X_OK) else f"{above} cannot be written (permission denied)"
        if above.is_symlink():
            return f"{above} is a symbolic link to no folder: a loop, or its target missing"
        if above.exists():
            return f"{above} is a file, not a folder"
    return None


def writable_output(path: Path, *, option: str, folder: bool = False) -> Path:
    """``path``, or InputError naming ``option``, the path and why an output cannot be made there
    (:func:`output_problem`): checked before any work, nothing created."""
    why = output_problem(path, folder=folder)
    if why is not None:
        raise InputError(f"{path}: cannot write there ({why})", where=option)
    return path


def writable_folder(folder: Path, names: Iterable[str] = (), *, option: str = "--out") -> Path:
    """``folder`` created if missing, where a file can be written and each of ``names`` can be a file; InputError
    naming ``option`` and why not (checked before the work whose outputs go there, not after it)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".usine-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = output_problem(folder, folder=True) or exc.strerror or str(exc)
        raise InputError(f"{folder}: cannot write there ({why})", where=option) from exc
    taken = [name for name in names if (folder / name).exists() and not (folder / name).is_file()]
    if taken:
        raise InputError(f"{folder / taken[0]} is a folder (or not a regular file): it cannot be replaced by the "
                         f"run's {taken[0]}", where=option)
    return folder


@contextmanager
def output_set(folder: Path, names: Iterable[str]) -> Iterator[dict[str, Path]]:
    """Temporary paths in ``folder`` for outputs that go together (a run's reports and bundle): once every one is
    written, each is renamed over its name; if one fails, none is (all removed, with the folders made for them):
    never a new report beside an old bundle, nor one output of a run missing. A name may lie in a subfolder
    (``evidence/REQ-ID/file.pdf``: made if missing), its temporary file beside it. Then each name's stale temporary
    files are swept, as :func:`atomic_output` does."""
    names = list(dict.fromkeys(names))
    for name in names:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"{name!r}: an output of a set is named inside its folder")
    temps: dict[str, Path] = {}
    made: list[Path] = _missing(folder)  # a failure removes them too: nothing is left where nothing was written
    try:
        writable_folder(folder, names)
        for name in names:
            target = folder / name
            made += _make_folders(target.parent, folder)
            fd, made_temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            os.close(fd)
            temps[name] = Path(made_temp)
        yield temps
        for temp in temps.values():  # durable before any is in place, however the caller wrote it
            fsync_file(temp)
        for name, temp in temps.items():
            os.replace(temp, folder / name)
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        for made_folder in reversed(made):
            with suppress(OSError):  # something else put there meanwhile: left
                made_folder.rmdir()
        raise
    made_in = {above for name in names for above in (folder / name).parents if above.is_relative_to(folder)}
    for written in sorted(made_in, key=lambda above: len(above.parts), reverse=True):  # a name, then its folder's
        fsync_folder(written)
    for name in names:
        sweep_temporaries(folder / name)


def _missing(folder: Path) -> list[Path]:
    """The folders down to ``folder`` that do not exist yet (a link in the way is not missing), outermost first."""
    missing: list[Path] = []
    while not (folder.exists() or folder.is_symlink()) and folder.parent != folder:
        missing.insert(0, folder)
        folder = folder.parent
    return missing


def _make_folders(folder: Path, root: Path) -> list[Path]:
    """Make the folders missing from ``root`` (which exists) down to ``folder``; those made, in the order made."""
    made = []
    here = root
    for part in folder.relative_to(root).parts:
        here = here / part
        try:
            here.mkdir()
        except FileExistsError:  # there already (or a file in the way: then the write in it fails, and says why)
            continue
        made.append(here)
    return made


@contextmanager
def folder_set(folder: Path) -> Iterator[Path]:
    """A new empty folder beside ``folder`` to build the whole of its next content in; once the block succeeds it
    takes ``folder``'s place (the old one moved aside, then removed), else it is removed and ``folder`` is left as it
    was. A reader finds the old set of files or the new one, never a mix (for the instant between the two renames,
    no folder: a clear "not found", not a wrong set). A symbolic link at ``folder`` is replaced, never followed. A kill
    leaves the folder built or the one moved aside: once in place, those older than :data:`STALE_TEMPORARY` are removed
    (:func:`sweep_folder_leftovers`)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(folder)) from exc
    aside: Path | None = None
    _BUILDING.add(new)
    try:
        os.chmod(new, 0o777 & ~_umask())  # as mkdir would have made it (mkdtemp: 0700)
        yield new
        _BUILDING.discard(new)
        _fsync_tree(new)
        if folder.exists() or folder.is_symlink():
            aside = folder.parent / f".{folder.name}.old-{secrets.token_hex(6)}"
            os.replace(folder, aside)
        try:
            os.replace(new, folder)
        except BaseException:
            if aside is not None:
                os.replace(aside, folder)
                aside = None
            raise
    except BaseException:
        _BUILDING.discard(new)
        shutil.rmtree(new, ignore_errors=True)
        raise
    fsync_folder(folder.parent)
    if aside is not None:
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)
    sweep_folder_leftovers(folder)


def _fsync_tree(folder: Path) -> None:
    """Make every file under ``folder`` durable, then every folder's names, deepest first, ``folder`` last (links are
    neither followed nor synced: their names are in their folder)."""
    folders = []
    for here, subfolders, files in os.walk(folder, topdown=True):
        folders.append(here)
        for name in files:
            item = os.path.join(here, name)
            if not os.path.islink(item) and os.path.isfile(item):
                fsync_file(Path(item))
        subfolders[:] = [d for d in subfolders if not os.path.islink(os.path.join(here, d))]
    for here in reversed(folders):
        fsync_folder(Path(here))


def append_whole(path: Path, data: bytes, mode: int = 0o644) -> int:
    """Append ``data`` to ``path`` (created with ``mode``) and fsync it, whole or not at all: write(2) on a full disk
    writes what fits, and a part of a line left there would be glued to the next append. On any error the file is
    cut back to its size before, and the error raised. The file's size after; one writer at a time (the caller's
    lock)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        start = os.fstat(fd).st_size
        try:
            done = 0
            while done < len(data):
                done += os.write(fd, data[done:])
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, start)
            raise
        return start + len(data)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, *, shared: bool = False) -> None:
    """Write text so that readers see the old file or the new one, never half of it: private (0600) unless ``shared``
    (a page or listing meant to be published: the mode a new file gets under the process's umask)."""
    with atomic_output(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        if shared:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def real_path(path: Path) -> Path:
    """``path`` absolute, its symbolic links followed as far as they lead: what ``Path.resolve()`` gives, but a loop
    of links (a → b → a) is left unresolved instead of raising RuntimeError (Python before 3.13), a traceback for a
    user who gave that path; what then reads it says "not found" or "not a folder", naming it."""
    return Path(os.path.realpath(path))


def private_dir(path: Path) -> Path:
    """Create a folder only its owner may enter (0700, missing parents too); an existing folder is left as it is."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    return path


def refuse_link_to_nothing(path: Path, what: str) -> Path:
    """``path``, or InputError when it is a symbolic link to nothing (its volume not mounted, a loop): a new ``what``
    made through it, or in its place, would stand for the one it leads to (a new key signing, an empty ledger paying
    again)."""
    if path.is_symlink() and not path.exists():
        raise InputError(f"a symbolic link to no file: the {what} it leads to is missing (a volume not mounted?); "
                         f"refusing to create a new {what} in its place", file=path)
    return path


def create_private(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist (before a database opens it: no window); a link to
    nothing is refused (:func:`refuse_link_to_nothing`): SQLite would create the file it names."""
    refuse_link_to_nothing(path, "database")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    os.close(fd)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write secret bytes to ``path`` in a private folder; the file is 0600 from the moment it exists (mkstemp)."""
    private_dir(path.parent)
    with atomic_output(path, "wb") as fh:
        fh.write(data)


def read_bounded(path: str | Path, max_bytes: int) -> bytes:
    """A file's bytes, or InputError naming it when it cannot be read or holds more than ``max_bytes``."""
    from conformity.errors import InputError

    p = Path(path)
    try:  # opened without blocking (a FIFO would wait for a writer for ever), then read only if a regular file
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError("not a regular file (a FIFO, a device or a folder); not read", file=p)
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=p) from exc
    if len(data) > max_bytes:
        raise InputError(f"larger than {max_bytes} bytes; not read", file=p)
    return data


def hold_exclusive(path: Path, what: str) -> int:
    """Lock ``path`` (created 0600) for this process's life, or raise InputError naming the process that holds it:
    ``what`` is the thing one process at a time may use (a state folder served). The open descriptor is returned
    (closing it releases the lock; the OS does at exit)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise InputError(f"{what} is in use by another process (pid {holder}): one process at a time; stop it or "
                         "choose another folder", file=path.parent) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def trust_anchor(ca_file: Path, option: str) -> ssl.SSLContext:
    """A TLS client context trusting the CA certificate(s) in ``ca_file``; InputError naming the file and ``option``
    when it holds none (OpenSSL said only "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found")."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except ssl.SSLError as exc:
        raise InputError(f"{ca_file}: not a PEM CA certificate ({exc.reason or exc})", where=option) from None
