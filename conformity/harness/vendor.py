"""The vendor manifest (``vendor.toml``): who is tested, and how to reach the driver."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import ssl
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from conformity.catalog.loader import read_toml
from conformity.catalog.schema import plain, schema_problems
from conformity.errors import InputError, Problem
from conformity.files import real_path
from conformity.naming import id_problem, owned_software_id, ownership_problem
from conformity.text import HIDDEN_CATEGORIES


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """How to reach the vendor's driver: a command (stdio) or a URL (HTTP), with a timeout."""

    command: tuple[str, ...] = ()
    url: str | None = None
    timeout: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    #: how an HTTPS driver's certificate is verified (the system's trust anchors unless a context is given)
    verify: ssl.SSLContext | bool = True
    #: for a driver URL: the address to connect to for (host, port), resolved and checked once per driver opened
    #: (the host name still names the server: TLS verification and ``Host``); an exception refuses the driver
    connect_to: Callable[[str, int], str] | None = None
    #: the driver process may serve several scenarios one after another (``reset`` between them); a command only
    reuse: bool = False


@dataclass(frozen=True, slots=True)
class Vendor:
    vendor_id: str
    vendor_name: str
    software: str
    software_id: str
    version: str
    registration_id: str
    category: str
    driver: DriverSpec
    path: Path
    #: (requirement id, file) of the ``[evidence]`` table, paths resolved from the manifest's folder
    evidence: tuple[tuple[str, Path], ...] = ()
    #: log files the software writes (absolute paths; ``{session_id}`` is the test session's id)
    log_files: tuple[str, ...] = ()

    def logs_of(self, session_id: str) -> list[Path]:
        """The declared log files of one test session."""
        return [Path(p.replace("{session_id}", session_id)) for p in self.log_files]

    def identity(self) -> dict[str, str]:
        return {"vendor_id": self.vendor_id, "vendor_name": self.vendor_name, "software": self.software,
                "software_id": self.software_id, "version": self.version, "registration_id": self.registration_id,
                "category": self.category}


#: the longest software id (the vendor manifest's schema, the sandbox's harness tokens, the report)
SOFTWARE_ID_MAX = 64


def _default_software_id(path: Path, vendor_id: str, software: str) -> str:
    """``vendor_id``, a dot and the software's name as a slug, within :data:`SOFTWARE_ID_MAX` characters."""
    room = SOFTWARE_ID_MAX - len(vendor_id) - 1
    if room < 1:
        raise InputError([Problem(str(path), "vendor_id", f"vendor id is {len(vendor_id)} characters: no software id "
                                                          f"(vendor id, a dot, a name) fits in {SOFTWARE_ID_MAX}; "
                                                          "use a shorter vendor_id")])
    slug = re.sub(r"[^a-z0-9]+", "-", software.lower())[:room].strip("-")
    return f"{vendor_id}.{slug or 'software'[:room]}"


#: the manifest's names that go into the signed manifest, the reports and the agency's pages
SHOWN_NAMES = ("vendor_name", "software", "version", "registration_id")


def _name_problems(path: Path, data: dict[str, object]) -> list[Problem]:
    """A problem per shown name holding a control or invisible character (the first one, by its code point)."""
    problems = []
    for key in SHOWN_NAMES:
        value = data.get(key)
        if not isinstance(value, str):
            continue
        bad = next((c for c in value if unicodedata.category(c) in HIDDEN_CATEGORIES), None)
        if bad is not None:
            problems.append(Problem(str(path), key, f"holds the control or invisible character U+{ord(bad):04X} "
                                                    f"({unicodedata.name(bad, 'unnamed')}) at position "
                                                    f"{value.index(bad) + 1}: write the name as it is to be shown"))
    return problems


#: an environment variable's name as a process start takes it (POSIX's portable names)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _process_problems(path: Path, driver: dict[str, object]) -> list[Problem]:
    """What no process start can take in the driver's command and environment (a name with ``=``, a NUL)."""
    problems = []
    env = driver.get("env")
    for name, value in (env.items() if isinstance(env, dict) else ()):
        if not ENV_NAME.match(name):
            problems.append(Problem(str(path), "driver.env", f"{name!r} is not an environment variable name (letters, "
                                                             "digits and _, not starting with a digit)"))
        elif isinstance(value, str) and "\0" in value:
            problems.append(Problem(str(path), f"driver.env.{name}", "holds a NUL character, which no environment "
                                                                     "variable can carry"))
    command = driver.get("command")
    for i, part in enumerate(command if isinstance(command, list) else ()):
        if isinstance(part, str) and "\0" in part:
            problems.append(Problem(str(path), f"driver.command[{i}]", "holds a NUL character, which no program "
                                                                       "argument can carry"))
    return problems


def load_vendor(path: str | Path) -> Vendor:
    """Load and validate a vendor manifest; InputError names the file and key path."""
    p = Path(path)
    problems: list[Problem] = []
    if not p.is_file():
        raise InputError("vendor manifest not found", file=p)
    raw = read_toml(p, problems)
    if raw is None:
        raise InputError(problems)
    data = plain(raw)
    given = data.get("driver")
    if isinstance(given, dict) and ("command" in given) == ("url" in given):  # said plainly, not as oneOf
        raise InputError([Problem(str(p), "driver", "give the driver's command (a program the harness starts) or its "
                                                    "url (a driver already serving over HTTP): one of them, not "
                                                    + ("both" if "url" in given else "neither"))])
    ids = {key: found for key in ("vendor_id", "software_id")
           if isinstance(data.get(key), str) and (found := id_problem(data[key])) is not None}
    problems = [Problem(str(p), key, message) for key, message in ids.items()]  # said plainly, not as a pattern
    problems += [q for q in schema_problems("vendor", data, str(p)) if q.where not in ids]
    problems = problems or _name_problems(p, data) + _process_problems(p, given)
    timeout = given.get("timeout") if isinstance(given, dict) else None
    if isinstance(timeout, float) and math.isnan(timeout):  # compares false with the schema's bounds
        problems.append(Problem(str(p), "driver.timeout", "nan is not a number of seconds: give the seconds the "
                                                          "harness waits for one answer (more than 0, at most 600)"))
    if problems:
        raise InputError(problems)
    if "software_id" in data and not owned_software_id(data["software_id"], data["vendor_id"]):
        raise InputError([Problem(str(p), "software_id", ownership_problem(data["software_id"], data["vendor_id"])
                                  + ": leave software_id out and usine makes one")])
    d = data["driver"]
    base = real_path(p).parent
    cwd = (base / d["cwd"]) if "cwd" in d else base
    if "cwd" in d and not cwd.is_dir():  # else the start fails saying the program is missing
        raise InputError([Problem(str(p), "driver.cwd", f"folder {cwd} not found (the driver starts in it; a "
                                                        "relative path is relative to this manifest's folder)")])
    command = tuple(sys.executable if part == "{python}" else part for part in d.get("command", ()))
    if d.get("reuse") and not command:
        raise InputError([Problem(str(p), "driver.reuse", "only a driver the harness starts (command) can be reused "
                                                          "across scenarios; a driver URL is one service already")])
    driver = DriverSpec(command=command, url=d.get("url"), timeout=float(d.get("timeout", 30)),
                        env=dict(d.get("env", {})), cwd=cwd, reuse=bool(d.get("reuse", False)))
    evidence = tuple((req, base / f) for req, files in data.get("evidence", {}).items()
                     for f in ([files] if isinstance(files, str) else files))
    return Vendor(
        vendor_id=data["vendor_id"], vendor_name=data.get("vendor_name", data["vendor_id"]), software=data["software"],
        software_id=data.get("software_id") or _default_software_id(p, data["vendor_id"], data["software"]),
        version=data["version"], registration_id=data["registration_id"], category=data["category"],
        driver=driver, path=p, evidence=evidence,
        log_files=tuple(os.path.normpath(base / Path(f).expanduser()) for f in data.get("log_files", ())),
    )


def driver_program_problem(vendor: Vendor) -> Problem | None:
    """Why the driver's program cannot be started, as the manifest's mistake (a program not on ``PATH``, a path to
    nothing, a file without its execute bit); None for a driver URL or a program that is there. Checked before a run
    (not for ``--plan``): otherwise every scenario would end 'could not be started' and the run would look made."""
    spec = vendor.driver
    if not spec.command:
        return None
    program = spec.command[0]
    where = "driver.command[0]"
    if "/" not in program:  # looked for on PATH (the driver's env may set its own), as the process start does
        path = spec.env.get("PATH", os.environ.get("PATH", os.defpath))
        if shutil.which(program, path=path) is None:
            return Problem(str(vendor.path), where, f"program {program!r} not found on PATH: install it, or give its "
                                                     "path (relative to the driver's folder, driver.cwd)")
        return None
    target = (spec.cwd or vendor.path.resolve().parent) / program
    if not target.exists():
        return Problem(str(vendor.path), where, f"not found at {target} (a relative path is relative to the driver's "
                                                 "folder: the manifest's, or driver.cwd)")
    if target.is_dir() or not os.access(target, os.X_OK):
        return Problem(str(vendor.path), where, f"{target} is not executable: chmod +x it, or start it with its "
                                                 'interpreter (command = ["{python}", "driver.py"], ["node", …])')
    return None


#: the longest the harness waits, before a run, for a driver URL's address to take a connection (less when the
#: driver's own timeout is shorter)
DRIVER_PROBE_TIMEOUT_S = 5.0


def driver_url_problem(vendor: Vendor) -> Problem | None:
    """Why nothing can answer at the driver's URL (no address, a refused or unanswered connection), as the manifest's
    or the driver's setup mistake; None for a driver command, or an address that takes a connection. Checked before
    a run (not for ``--plan``): otherwise every scenario waited for that address and failed the same way, slowly."""
    spec = vendor.driver
    if spec.url is None or spec.connect_to is not None:  # an address policy checks its address at each call
        return None
    where = "driver.url"
    try:
        parts = urlsplit(spec.url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return Problem(str(vendor.path), where, f"{spec.url!r} is not a usable URL: {exc}")
    if not host:
        return Problem(str(vendor.path), where, f"{spec.url!r} names no host")
    wait = min(spec.timeout, DRIVER_PROBE_TIMEOUT_S)
    try:
        with socket.create_connection((host, port), timeout=wait):
            return None
    except TimeoutError:
        why = f"no answer to a TCP connection to {host}:{port} within {wait:g} s"
    except ConnectionRefusedError:
        why = f"a TCP connection to {host}:{port} was refused (nothing listens there)"
    except OSError as exc:
        why = f"a TCP connection to {host}:{port} failed: {exc.strerror or exc}"
    return Problem(str(vendor.path), where, f"no driver answers at {spec.url}: {why}. Start your driver so that it "
                                            "serves JSON-RPC there, then run again (or give driver.command instead of "
                                            "driver.url: the harness then starts the driver itself)")


def driver_problem(vendor: Vendor) -> Problem | None:
    """Why the manifest's driver cannot be reached at all (its program or its URL), or None."""
    return driver_program_problem(vendor) or driver_url_problem(vendor)
