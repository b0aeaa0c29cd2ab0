"""Official schemas a pack's sandbox services validate against, when the operator gives them.

usine never redistributes an official schema (its licence is its publisher's): a pack declares, in its sandbox
module's ``SCHEMAS``, each one it can use (:class:`OfficialSchema`: a name, what it is, where a local copy usually
is), and ``usine sandbox serve --schema NAME=PATH`` (or ``--schema NAME`` for the copy the pack finds) hands it to
the services through :attr:`sandbox.config.SandboxConfig.schemas`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class OfficialSchema:
    """One schema a pack's services can validate against."""

    #: the name given to ``--schema`` and used as the key of ``SandboxConfig.schemas``
    name: str
    #: what it is and what the services do with it (the CLI's help and error messages)
    what: str
    #: the local copy found in the usual place (``../shared/schemas``, ``$USINE_SHARED_SCHEMAS``), or None
    locate: Callable[[], Path | None] = lambda: None
    #: loads a file given for it as the services will, raising why it cannot (not XML, not a schema): run by
    #: :func:`chosen`, so that a wrong file is refused when the sandbox starts, not at its first request
    check: Callable[[Path], object] = lambda path: None


def chosen(values: Iterable[str], declared: Mapping[str, OfficialSchema]) -> dict[str, Path]:
    """The schemas ``--schema`` names: ``NAME=PATH``, or ``NAME`` for the copy the pack locates.

    Raises ValueError saying what is wrong: an unknown name (with the known ones), a name given twice, a path that
    is not a file, a schema the pack cannot find, a file its ``check`` refuses."""
    out: dict[str, Path] = {}
    known = ", ".join(f"{s.name} ({s.what})" for s in declared.values()) or "none: no installed pack declares one"
    for value in values:
        name, sep, path = value.partition("=")
        name = name.strip()
        if name not in declared:
            raise ValueError(f"--schema {value}: no installed pack declares a schema {name!r} (known: {known})")
        if name in out:
            raise ValueError(f"--schema {name} is given twice")
        if sep:
            file = Path(path).expanduser()
            if not file.is_file():
                raise ValueError(f"--schema {value}: {path!r} is not a file")
        else:
            located = declared[name].locate()
            if located is None:
                raise ValueError(f"--schema {name}: {declared[name].what} is not found in the usual place "
                                 f"(../shared/schemas or $USINE_SHARED_SCHEMAS); give its path: --schema {name}=PATH")
            file = located
        try:
            declared[name].check(file)
        except Exception as exc:  # the pack's loader: whatever it raises says why the file is no such schema
            raise ValueError(f"--schema {value}: {file} is not {declared[name].what.split(':')[0]}: "
                             f"{str(exc).strip() or type(exc).__name__}") from None
        out[name] = file
    return out
