"""Every command that reads a file, fed hostile bytes in that file's place: a clear error, never a traceback.

The net under the command line (DEVELOPERS.md: "bad input everywhere gets a clear error (what, where, why), a
non-zero exit, and loses nothing"). Each :class:`Slot` is one (command, file argument) pair: the command's other
arguments valid, the one under test replaced by something hostile (:data:`HOSTILE`): an empty file, a folder where a
file is expected, a missing path, a path under a file, a symlink loop, a link to nothing, random bytes, invalid UTF-8,
a valid file of its kind truncated, a valid file of another kind, JSON of the wrong shape (an array, a huge number,
10,000 levels of nesting, a member named twice), TOML with wrong types, a zip that is no bundle, a SQLite file of
another schema and a corrupt one. Each run asserts: the exit code is one the command documents for bad input (2, or the verdict a command
gives about the file it judges: 1 for a bundle or a label it refuses), the output names the argument or the file,
no traceback, and nothing was written to the command's outputs.

Each command runs in-process (click's CliRunner, exceptions caught: an uncaught one is a traceback for a user), with
``USINE_HOME`` in the test's folder (a command that creates a default key or registry creates it there).

Every option naming where a command writes (:data:`OUTPUT_SLOTS`: ``-o``/``--output``, ``--html``, each ``--out``)
is given a path no output can be made at (:data:`OUTPUTS`): a folder where a file goes or a file where a folder goes,
a path under a regular file, a link to nothing, a loop of links. Each is refused before any work (exit 2, the option
and the path named, nothing changed). Two are where outputs go as documented, and checked to go there: a path in
missing folders (made, as every ``--out`` is), a link at a file's place (replaced by the file, never followed).

The long-running commands (:data:`SERVER_SLOTS`: ``agency serve``, ``sandbox serve``, ``driver serve-http``) run as
processes on a free loopback port: each must exit 2 naming the file before it serves; one that prints its serving
line is killed (its own session) and fails the test, unless the input is one it documents as valid (a state folder
or a database it creates).

File arguments left out, each for a reason:

- ``agency review`` past the registry, ``agency evidence`` past its ``--out`` check: read only once a recorded
  submission is found (the registries here hold none); a real bundle decided first costs a reference run
  (tests/agency's ``runs`` fixture, ~30 s): tests/agency covers those paths with real runs.
- ``agency serve --witness-sandbox-ca`` and ``--witness-driver-ca``: click's ``exists`` check, then
  ``trust_anchor``, which tests/unit/test_trust_anchors.py fuzzes for ``submit --ca`` and ``harness-token``.
- ``sandbox serve --database``: a PostgreSQL URL only (a path is a usage error), no file.
- the content an output path held (a previous output): written whole by ``conformity.files.write_atomic`` or
  ``atomic_output``, replacing what was there, which is their purpose (their own tests: test_atomic_outputs.py).
- ``run --sandbox-ca``, ``pay run --agency-ca``: ``trust_anchor`` again (as above).
- ``pay run -e`` and the payment commands' other options: covered by the ``pay run`` slots above; the payment
  engines are another engineer's area.
- ``driver init FOLDER`` read-only: the tests run as root here, for whom permissions do not bind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformity.agency.registry import Registry
from conformity.cli import cli
from conformity.payments.ledger import Ledger
from tests.payments.builders import (
    AGENCY,
    events_for,
    infrastructure_keys,
    installation,
    revocation_list,
    signed_label,
    write_jsonl,
    write_label,
)
from tests.payments.workspace import PAYEES, PAYER, REPO

VENDOR = REPO / "examples" / "vendors" / "health" / "reference" / "vendor.toml"
SUBMISSION = "sub_0123456789abcdef0123"  # no submission of the registries here: a command that read one says so
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens (a command that got that far would fail to connect)


@dataclass(frozen=True)
class Valid:
    """One valid file (or folder) of each kind a command reads, made once per test folder."""

    files: dict[str, Path]

    def __getitem__(self, kind: str) -> Path:
        return self.files[kind]


def make_valid(root: Path) -> Valid:
    root.mkdir(parents=True, exist_ok=True)
    keys = root / "keys"
    AGENCY.save(keys / "agency.pem")
    labels = root / "labels"
    label = write_label(labels, signed_label())
    revocations = labels / "revocations.json"
    revocations.write_text(json.dumps(revocation_list()), encoding="utf-8")
    infra = keys / "infrastructure-keys.json"
    infra.write_text(json.dumps(infrastructure_keys()), encoding="utf-8")
    events = write_jsonl(root / "events" / "e.jsonl", events_for(installation(), 3))
    ledger = root / "ledger.sqlite3"
    with Ledger(ledger):
        pass
    registry = root / "registry.sqlite3"
    with Registry(registry):
        pass
    notbundle = root / "notbundle.zip"
    with zipfile.ZipFile(notbundle, "w") as zf:
        zf.writestr("readme.txt", "not a bundle")
        zf.writestr("manifest.json", "[]")
    return Valid({"label": label, "revocations": revocations, "pubkey": keys / "agency.pub.pem",
                  "privkey": keys / "agency.pem", "infra": infra, "events": events, "ledger": ledger,
                  "registry": registry, "zip": notbundle, "payer": PAYER, "payees": PAYEES, "vendor": VENDOR,
                  "labels": labels})


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


#: hostile input → a function (folder, valid files, its own kind, random) writing it and returning its path
Maker = Callable[[Path, Valid, str, random.Random], Path]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def _other_kind(folder: Path, valid: Valid, kind: str, rnd: random.Random) -> Path:
    """A copy of a valid file of another kind (some valid files are the repository's own: a command given one must
    not write beside it)."""
    others = sorted(k for k, p in valid.files.items() if k != kind and p.is_file() and p.suffix != valid[kind].suffix)
    chosen = valid[rnd.choice(others)]
    return _write(folder / f"other-kind{chosen.suffix}", chosen.read_bytes())


def _truncated(folder: Path, valid: Valid, kind: str, rnd: random.Random) -> Path:
    data = valid[kind].read_bytes() if valid[kind].is_file() else b""
    return _write(folder / f"truncated{valid[kind].suffix}", data[: rnd.randrange(max(len(data), 1))])


def _loop(folder: Path, valid: Valid, kind: str, rnd: random.Random) -> Path:
    a, b = folder / "loop-a", folder / "loop-b"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def _corrupt_sqlite(folder: Path, valid: Valid, kind: str, rnd: random.Random) -> Path:
    path = folder / "corrupt.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(str(i) * 50,) for i in range(200)])
    db.commit()
    db.close()
    data = bytearray(path.read_bytes())
    for i in range(100, len(data), 97):  # the header kept (a SQLite file), its pages scrambled
        data[i] = rnd.randrange(256)
    return _write(path, bytes(data))


def _other_sqlite(folder: Path, valid: Valid, kind: str, rnd: random.Random) -> Path:
    path = folder / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT, value TEXT)")  # a name usine uses, another program's table
    db.execute("CREATE TABLE people (name TEXT)")
    db.commit()
    db.close()
    return path


HOSTILE: dict[str, Maker] = {
    "empty": lambda f, v, k, r: _write(f / "empty", b""),
    "folder": lambda f, v, k, r: _folder(f / "a-folder"),
    "missing": lambda f, v, k, r: f / "missing.json",
    "under-a-file": lambda f, v, k, r: _write(f / "plain", b"x") / "child",
    "symlink-loop": _loop,
    "dangling-symlink": lambda f, v, k, r: _link(f / "link", f / "nowhere"),
    "random-bytes": lambda f, v, k, r: _write(f / "random", r.randbytes(r.randrange(1, 4096))),
    "invalid-utf8": lambda f, v, k, r: _write(f / "latin1", b'{"name": "caf\xe9"}\n'),
    "truncated": _truncated,
    "other-kind": _other_kind,
    "json-array": lambda f, v, k, r: _write(f / "array.json", b"[1, 2, 3]"),
    "json-huge-number": lambda f, v, k, r: _write(f / "huge.json", b'{"n": 1' + b"0" * 5000 + b"}"),
    "json-deep": lambda f, v, k, r: _write(f / "deep.json", _deep(10_000)),
    "json-duplicate": lambda f, v, k, r: _write(f / "dup.json", b'{"a": 1, "a": 2}'),
    "toml-wrong-types": lambda f, v, k, r: _write(f / "wrong.toml", b'name = 3\nid = [1, 2]\n[vendor]\nid = true\n'
                                                                     b'[[payees]]\niban = 7\n'),
    "zip-not-bundle": lambda f, v, k, r: v["zip"],
    "sqlite-other-schema": _other_sqlite,
    "sqlite-corrupt": _corrupt_sqlite,
}

#: hostile paths (no content at all): what a slot whose content is judged line by line is given
PATHS = frozenset({"folder", "missing", "under-a-file", "symlink-loop", "dangling-symlink"})
#: a SQLite database that does not exist yet, or an empty file (SQLite's empty database), is created on first use
NEW_DATABASE = frozenset({"missing", "empty"})


@dataclass(frozen=True)
class Slot:
    """One file argument of one command: its kind, how to build the command line, which codes bad input may give."""

    name: str
    kind: str
    args: Callable[[Valid, Path, Path], list[str]]  # (valid files, the hostile path, the output folder) → argv
    codes: frozenset[int] = frozenset({2})
    #: hostile inputs the command may take as valid, each for a documented reason (an exit of ``accepts``, its
    #: outputs written)
    tolerated: frozenset[str] = frozenset()
    #: the exits a tolerated input may end with: 0, or the command's verdict on its other inputs
    accepts: frozenset[int] = frozenset({0})
    #: the file's content is judged line by line into a report (exit 0, refusals listed): only hostile paths apply
    paths_only: bool = False


def _pay(valid: Valid, folder: Path, **swap: Path) -> list[str]:
    given = {"labels": valid["labels"], "ledger": folder / "ledger.sqlite3", "agency-key": valid["pubkey"],
             "payer": valid["payer"], "payees": valid["payees"], "infrastructure-keys": valid["infra"],
             "events": valid["events"], "revocations": valid["revocations"], "out": folder / "payments", **swap}
    args = ["pay", "run", "--wave", "2026-W1", "--as-of", "2027-06-30T23:59:59Z"]
    for option, path in given.items():
        args += [f"--{option}", str(path)]
    return args


SLOTS = [
    Slot("label verify LABEL", "label", lambda v, h, o: ["label", "verify", str(h), "--key", str(v["pubkey"]),
                                                         "--revocations", str(v["revocations"])],
         frozenset({1, 2})),
    Slot("label verify --key", "pubkey", lambda v, h, o: ["label", "verify", str(v["label"]), "--key", str(h)]),
    Slot("label verify --revocations", "revocations",
         lambda v, h, o: ["label", "verify", str(v["label"]), "--key", str(v["pubkey"]), "--revocations", str(h)]),
    Slot("agency verify BUNDLE", "zip", lambda v, h, o: ["agency", "verify", str(h), "--trust", str(v["pubkey"])],
         frozenset({1, 2})),
    Slot("agency verify --trust", "pubkey", lambda v, h, o: ["agency", "verify", str(v["zip"]), "--trust", str(h)],
         frozenset({1, 2})),
    Slot("pay status --ledger", "ledger", lambda v, h, o: ["pay", "status", "--ledger", str(h)]),
    Slot("pay lease --ledger", "ledger", lambda v, h, o: ["pay", "lease", "--ledger", str(h)]),
    Slot("agency registry list --registry", "registry",
         lambda v, h, o: ["agency", "registry", "list", "--registry", str(h)], tolerated=NEW_DATABASE),
    Slot("agency registry show --registry", "registry",
         lambda v, h, o: ["agency", "registry", "show", "lbl_abcdefgh", "--registry", str(h)]),
    # the agency's key is created by a decision, never by an export: a missing file is refused (a mistyped --key
    # would sign the lists with a new key nobody trusts), as a link to no file is
    Slot("agency registry export --key", "privkey",
         lambda v, h, o: ["agency", "registry", "export", "--out", str(o / "export"), "--key", str(h),
                          "--registry", str(v["registry"])]),
    Slot("agency registry export --retired-key", "pubkey",
         lambda v, h, o: ["agency", "registry", "export", "--out", str(o / "export"), "--key", str(v["privkey"]),
                          "--retired-key", str(h), "--registry", str(v["registry"])]),
    Slot("agency registry export --registry", "registry",
         lambda v, h, o: ["agency", "registry", "export", "--out", str(o / "export"), "--key", str(v["privkey"]),
                          "--registry", str(h)], tolerated=NEW_DATABASE),
    Slot("agency decide --trust", "pubkey",
         lambda v, h, o: ["agency", "decide", str(v["zip"]), "--trust", str(h), "--key", str(v["privkey"]),
                          "--registry", str(o / "registry.sqlite3"), "--out", str(o / "decisions")],
         frozenset({1, 2})),
    Slot("agency progress --registry", "registry",
         lambda v, h, o: ["agency", "progress", "--wave", "2026-W1", "--registry", str(h), "--html", str(o / "progress.html")],
         tolerated=NEW_DATABASE),
    Slot("agency progress --ledger", "ledger",
         lambda v, h, o: ["agency", "progress", "--wave", "2026-W1", "--registry", str(v["registry"]), "--ledger", str(h),
                          "--html", str(o / "progress.html")]),
    Slot("run --vendor", "vendor",
         lambda v, h, o: ["run", "--wave", "2026-W1", "--vendor", str(h), "--out", str(o / "run"), "--sandbox", CLOSED]),
    Slot("sandbox harness-token --vendor", "vendor",
         lambda v, h, o: ["sandbox", "harness-token", "--vendor", str(h), "--sandbox", CLOSED,
                          "--admin-token", "x" * 32]),
    Slot("--catalog validate", "labels", lambda v, h, o: ["--catalog", str(h), "validate"]),
    # an empty labels folder pays nobody, every event refused label-unknown: not refused (a policy question)
    Slot("pay run --labels", "labels", lambda v, h, o: _pay(v, o, labels=h),
         tolerated=frozenset({"folder"})),
    Slot("pay run --revocations", "revocations", lambda v, h, o: _pay(v, o, revocations=h), frozenset({2, 4})),
    Slot("pay run --events", "events", lambda v, h, o: _pay(v, o, events=h), paths_only=True),
    Slot("pay run --infrastructure-keys", "infra", lambda v, h, o: _pay(v, o, **{"infrastructure-keys": h})),
    Slot("pay run --agency-key", "pubkey", lambda v, h, o: _pay(v, o, **{"agency-key": h})),
    Slot("pay run --payer", "payer", lambda v, h, o: _pay(v, o, payer=h)),
    Slot("pay run --payees", "payees", lambda v, h, o: _pay(v, o, payees=h)),
    Slot("pay run --ledger", "ledger", lambda v, h, o: _pay(v, o, ledger=h), tolerated=NEW_DATABASE),
    # the commands the first net left out. An output folder a command creates when missing, or fills when empty, is
    # no hostile input (its outputs are then written there: in the case's folder, never outside it)
    Slot("driver init FOLDER", "labels", lambda v, h, o: ["driver", "init", str(h), "--lang", "python"],
         tolerated=frozenset({"folder", "missing"})),
    Slot("sandbox pki --out", "labels", lambda v, h, o: ["sandbox", "pki", "--out", str(h)],
         tolerated=frozenset({"folder", "missing"})),
    # the first account (an admin), or the first receiver, is how a registry starts
    Slot("agency account add --database", "registry",
         lambda v, h, o: ["agency", "account", "add", "ann", "--name", "Ann", "--role", "vendor", "--vendor", "acme",
                          "--database", str(h)], tolerated=NEW_DATABASE),
    Slot("agency webhook add --database", "registry",
         lambda v, h, o: ["agency", "webhook", "add", "https://payments.example/hook", "--database", str(h)],
         tolerated=NEW_DATABASE),
    Slot("agency account token --database", "registry",
         lambda v, h, o: ["agency", "account", "token", "ann", "--database", str(h)]),
    Slot("agency account disable --database", "registry",
         lambda v, h, o: ["agency", "account", "disable", "ann", "--database", str(h)]),
    Slot("agency registry revoke --registry", "registry",
         lambda v, h, o: ["agency", "registry", "revoke", "lbl_abcdefgh", "--reason", "r", "--registry", str(h)]),
    Slot("agency evidence --registry", "registry",
         lambda v, h, o: ["agency", "evidence", SUBMISSION, "--out", str(o / "evidence"), "--registry", str(h)]),
    Slot("agency review --registry", "registry",
         lambda v, h, o: ["agency", "review", SUBMISSION, "REQ-001", "--accept", "--reason", "r", "--reviewer", "A",
                          "--registry", str(h)]),
    # the key is checked before the bundle is judged (a refused bundle never reads it); a missing one is created when
    # a label is signed (documented: --agency-key): this bundle is refused, exit 1, its refusal written
    Slot("agency decide --agency-key", "privkey",
         lambda v, h, o: ["agency", "decide", str(v["zip"]), "--trust", str(v["pubkey"]), "--agency-key", str(h),
                          "--registry", str(o / "registry.sqlite3"), "--out", str(o / "decisions")],
         tolerated=frozenset({"missing"}), accepts=frozenset({1})),
    Slot("agency decide SUBMISSION --registry", "registry",
         lambda v, h, o: ["agency", "decide", SUBMISSION, "--registry", str(h), "--key", str(v["privkey"]),
                          "--out", str(o / "decisions")]),
    # checked on the sender's machine before anything is sent (the discard port: an upload would fail to connect)
    Slot("submit BUNDLE", "zip", lambda v, h, o: ["submit", str(h), "--agency", CLOSED, "--token", "t" * 20]),
    Slot("submit --ca", "pubkey", lambda v, h, o: ["submit", str(v["zip"]), "--ca", str(h), "--agency", CLOSED,
                                                   "--token", "t" * 20]),
    Slot("sandbox harness-token --sandbox-ca", "pubkey",
         lambda v, h, o: ["sandbox", "harness-token", "--vendor", str(v["vendor"]), "--sandbox-ca", str(h),
                          "--sandbox", CLOSED, "--admin-token", "x" * 32]),
]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (a file a command left beside an input counts as a change)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


#: usine's environment variables naming files: unset, so that each run reads only what its command line names
CLEAN_ENV: dict[str, str | None] = {name: None for name in (
    "USINE_AGENCY_PUBKEY", "USINE_REGISTRY", "USINE_LEDGER", "USINE_CATALOG", "USINE_TRUSTED_SANDBOX_KEYS",
    "USINE_REVOCATIONS", "USINE_INFRASTRUCTURE_KEYS", "USINE_PAYER", "USINE_SANDBOX_TOKEN")}


def _case(root: Path, prefix: str) -> Path:
    """A new folder for one run: ``in/`` for the hostile path, ``out/`` for the command's other outputs."""
    case = Path(tempfile.mkdtemp(dir=root, prefix=prefix))
    (case / "in").mkdir()
    (case / "out").mkdir()
    return case


def _run(case: Path, argv: list[str], what: str) -> tuple[int, str, str]:
    """``usine argv`` in-process, ``USINE_HOME`` in ``case``: its exit code, its output, and ``what`` was run with
    both (for failures); a traceback fails the test."""
    result = CliRunner().invoke(cli, argv, catch_exceptions=True, env={**CLEAN_ENV, "USINE_HOME": str(case / "home")})
    said = result.output
    what = f"{what}: exit {result.exit_code}\n{said[-3000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"traceback: {what}\n{trace}")
    assert "Traceback" not in said, f"traceback: {what}"
    return result.exit_code, said, what


def attack(root: Path, valid: Valid, slot: Slot, hostile: str, seed: int) -> None:
    """Run ``slot``'s command with ``hostile`` in its file's place; assert a clear refusal that wrote nothing."""
    case = _case(root, "case-")
    out = case / "out"
    path = HOSTILE[hostile](case / "in", valid, slot.kind, random.Random(seed))
    before = _tree(root / "valid")
    argv = slot.args(valid, path, out)
    code, said, what = _run(case, argv, f"{slot.name} given {hostile} ({path})")
    assert _tree(root / "valid") == before, f"an input was changed: {what}"
    if hostile in slot.tolerated and code in slot.accepts:
        return
    assert code in slot.codes, f"exit code: {what}"
    assert _tree(out) == {}, f"written: {sorted(_tree(out))}: {what}"
    if hostile != "truncated":  # a valid file cut at a line's end may still be valid: the command then fails further
        option = argv[argv.index(str(path)) - 1]
        named = {str(path), path.name} | ({option} if option.startswith("-") else set())
        assert any(n in said for n in named), f"neither the file nor its option named: {what}"


def _kinds(slot: Slot) -> list[str]:
    return sorted(PATHS if slot.paths_only else HOSTILE)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Valid]:
    root = tmp_path_factory.mktemp("cli-fuzz")
    return root, make_valid(root / "valid")


#: the slots that read without starting a run (a pay run costs ~1 s each: the exhaustive test below covers them)
QUICK = [s for s in SLOTS if not s.name.startswith("pay run")]


@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_file_arguments_get_a_clear_error(valid: tuple[Path, Valid], data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(QUICK), label="slot")
    hostile = data.draw(st.sampled_from(_kinds(slot)), label="hostile")
    attack(*valid, slot, hostile, data.draw(st.integers(0, 2**32), label="seed"))


@pytest.mark.slow
@pytest.mark.parametrize("slot", SLOTS, ids=[s.name for s in SLOTS])
def test_every_hostile_input_of_every_file_argument(valid: tuple[Path, Valid], slot: Slot) -> None:
    """Each slot given each hostile input once (a few minutes on two cores: the pay runs)."""
    for hostile in _kinds(slot):
        attack(*valid, slot, hostile, seed=len(hostile))


# --- output paths: each option naming a file or folder to write, given a path no output can be made at ----------

#: hostile output paths → a function (folder, whether the output is a folder) making it and returning its path
OUTPUTS: dict[str, Callable[[Path, bool], Path]] = {
    # what holds the place: a folder with a file in it where a file goes, a regular file where a folder goes
    "taken": lambda f, folder: _write(f / "plain", b"kept") if folder else _write(_folder(f / "a-folder") / "kept",
                                                                                     b"kept").parent,
    "under-a-file": lambda f, folder: _write(f / "plain", b"kept") / "child",
    "dangling-symlink": lambda f, folder: _link(f / "link", f / "nowhere"),
    "symlink-loop": lambda f, folder: _loop(f, Valid({}), "", random.Random(0)),
    "missing-folder": lambda f, folder: f / "no-such" / "deeper" / "out",
}


@dataclass(frozen=True)
class OutputSlot:
    """One option of one command naming where it writes: a file, or a folder (``folder``) it writes files into."""

    name: str
    args: Callable[[Valid, Path, Path], list[str]]  # (valid files, the hostile path, a folder for other outputs)
    folder: bool
    #: the exits of a run whose output path is fine (a missing folder is made): 0, or the verdict on other inputs
    accepts: frozenset[int] = frozenset({0})

    def written(self, hostile: str) -> bool:
        """Whether the command writes at ``hostile`` as documented: missing folders are made (as every --out's are),
        and a link at a file's place is replaced by the file, never followed (conformity.files.atomic_output)."""
        return hostile == "missing-folder" or (not self.folder and hostile in ("dangling-symlink", "symlink-loop"))


def _decide(valid: Valid, out: Path, decisions: Path) -> list[str]:
    return ["agency", "decide", str(valid["zip"]), "--trust", str(valid["pubkey"]), "--key", str(valid["privkey"]),
            "--registry", str(out / "registry.sqlite3"), "--out", str(decisions)]


OUTPUT_SLOTS = [
    OutputSlot("wave show -o", lambda v, h, o: ["wave", "show", "2026-W1", "-c", "GP", "-o", str(h)], folder=False),
    OutputSlot("wave diff --output", lambda v, h, o: ["wave", "diff", "2026-W1", "2027-W2", "--output", str(h)],
               folder=False),
    OutputSlot("sandbox openapi -o", lambda v, h, o: ["sandbox", "openapi", "-o", str(h)], folder=False),
    OutputSlot("agency progress --html",
               lambda v, h, o: ["agency", "progress", "--wave", "2026-W1", "--registry", str(v["registry"]),
                                "--html", str(h)], folder=False),
    # the bundle is refused (exit 1): its refusal is written into the folder
    OutputSlot("agency decide --out", lambda v, h, o: _decide(v, o, h), folder=True, accepts=frozenset({1})),
    # no submission in the registry (exit 2): the folder is checked before it is looked for
    OutputSlot("agency evidence --out",
               lambda v, h, o: ["agency", "evidence", SUBMISSION, "--out", str(h), "--registry", str(v["registry"])],
               folder=True, accepts=frozenset({2})),
    OutputSlot("agency registry export --out",
               lambda v, h, o: ["agency", "registry", "export", "--out", str(h), "--key", str(v["privkey"]),
                                "--registry", str(v["registry"])], folder=True),
    # no sandbox at the discard port (exit 2): the folder the run made is removed
    OutputSlot("run --out", lambda v, h, o: ["run", "--wave", "2026-W1", "--vendor", str(v["vendor"]), "--out", str(h),
                                             "--sandbox", CLOSED, "--sandbox-token", "t" * 20],
               folder=True, accepts=frozenset({2})),
    OutputSlot("pay run --out", lambda v, h, o: _pay(v, o, out=h), folder=True),
    OutputSlot("sandbox pki --out", lambda v, h, o: ["sandbox", "pki", "--out", str(h)], folder=True),
]


def _entries(folder: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry under ``folder``, links as links (a link replaced or followed counts as a change)."""
    def entry(p: Path) -> tuple[str, bytes | str]:
        return ("link", os.readlink(p)) if p.is_symlink() else ("file", p.read_bytes()) if p.is_file() else ("dir", "")
    return {str(p.relative_to(folder)): entry(p) for p in sorted(folder.rglob("*"))}


def attack_output(root: Path, valid: Valid, slot: OutputSlot, hostile: str) -> None:
    """Run ``slot``'s command with ``hostile`` as its output path: refused before any work, naming the option and
    the path, nothing changed; or, where the output is documented to go there, written there and nowhere else."""
    case = _case(root, "output-")
    out = case / "out"
    path = OUTPUTS[hostile](case / "in", slot.folder)
    before = _entries(case / "in")
    argv = slot.args(valid, path, out)
    code, said, what = _run(case, argv, f"{slot.name} given {hostile} ({path})")
    if slot.written(hostile):
        assert code in slot.accepts, f"exit code: {what}"
        assert not (case / "in" / "nowhere").exists(), f"a link followed: {what}"
        if code == 0:
            assert not path.is_symlink() and (path.is_dir() if slot.folder else path.is_file()), f"not written: {what}"
        return
    assert code == 2, f"exit code: {what}"
    option = argv[argv.index(str(path)) - 1]
    assert str(path) in said and option in said, f"the path or its option not named: {what}"
    assert _entries(case / "in") == before, f"changed: {what}"
    assert _tree(out) == {}, f"written: {sorted(_tree(out))}: {what}"


#: the outputs written where the path leads each cost a command's whole work (~1 s): run with --slow
OUTPUT_CASES = [pytest.param(slot, hostile, id=f"{slot.name} given {hostile}",
                             marks=[pytest.mark.slow] if slot.written(hostile) else [])
                for slot in OUTPUT_SLOTS for hostile in OUTPUTS]


@pytest.mark.parametrize(("slot", "hostile"), OUTPUT_CASES)
def test_hostile_output_paths_are_refused_before_any_work(valid: tuple[Path, Valid], slot: OutputSlot,
                                                          hostile: str) -> None:
    attack_output(*valid, slot, hostile)


# --- the long-running commands: each must refuse a hostile file before it serves ---------------------------------

#: what each server prints once every check passed, just before it serves (the run is then killed: it served)
SERVING = ("Ctrl-C stops it", "usine sandbox on ")


@dataclass(frozen=True)
class ServerSlot:
    """One file argument of a long-running command, run as a process on a free loopback port (never 0.0.0.0)."""

    name: str
    kind: str
    args: Callable[[Valid, Path, Path], list[str]]  # (valid files, the hostile path, the output folder) → argv
    #: hostile inputs the server may serve with, each for a documented reason (a state folder or database it creates)
    tolerated: frozenset[str] = frozenset()


def _agency_serve(valid: Valid, out: Path, **swap: Path) -> list[str]:
    given = {"trust": valid["pubkey"], "key": out / "agency-key.pem", "database": out / "registry.sqlite3",
             "data": out / "data", **swap}
    args = ["agency", "serve", "--host", "127.0.0.1"]
    for option, path in given.items():
        args += [f"--{option}", str(path)]
    return args


def _driver_serve(valid: Valid, **swap: Path) -> list[str]:
    given = {"vendor": valid["vendor"], "cert": valid["tls-cert"], "key": valid["tls-key"], **swap}
    args = ["driver", "serve-http", "--host", "127.0.0.1"]
    for option, path in given.items():
        args += [f"--{option}", str(path)]
    return args


#: a folder or database the server creates when missing (an empty file is SQLite's empty database)
CREATED = frozenset({"missing", "folder"})
SERVER_SLOTS = [
    ServerSlot("agency serve --data", "labels", lambda v, h, o: _agency_serve(v, o, data=h), CREATED),
    ServerSlot("agency serve --database", "registry", lambda v, h, o: _agency_serve(v, o, database=h), NEW_DATABASE),
    # the agency's key is created on first use (documented: --agency-key)
    ServerSlot("agency serve --agency-key", "privkey", lambda v, h, o: _agency_serve(v, o, **{"agency-key": h}),
               frozenset({"missing"})),
    ServerSlot("agency serve --trust", "pubkey", lambda v, h, o: _agency_serve(v, o, trust=h)),
    ServerSlot("agency serve --ledger", "ledger", lambda v, h, o: _agency_serve(v, o, ledger=h)),
    ServerSlot("agency serve --tls-cert", "tls-cert",
               lambda v, h, o: _agency_serve(v, o, **{"tls-cert": h, "tls-key": v["tls-key"]})),
    ServerSlot("agency serve --tls-key", "tls-key",
               lambda v, h, o: _agency_serve(v, o, **{"tls-cert": v["tls-cert"], "tls-key": h})),
    ServerSlot("agency serve --catalog", "labels", lambda v, h, o: ["--catalog", str(h), *_agency_serve(v, o)]),
    ServerSlot("sandbox serve --data", "labels", lambda v, h, o: ["sandbox", "serve", "--data", str(h)], CREATED),
    ServerSlot("sandbox serve --test-pki", "labels",
               lambda v, h, o: ["sandbox", "serve", "--data", str(o / "data"), "--test-pki", str(h)], CREATED),
    ServerSlot("sandbox serve --tls-cert", "tls-cert",
               lambda v, h, o: ["sandbox", "serve", "--data", str(o / "data"), "--tls-cert", str(h),
                                "--tls-key", str(v["tls-key"])]),
    ServerSlot("sandbox serve --tls-key", "tls-key",
               lambda v, h, o: ["sandbox", "serve", "--data", str(o / "data"), "--tls-cert", str(v["tls-cert"]),
                                "--tls-key", str(h)]),
    ServerSlot("driver serve-http --vendor", "vendor", lambda v, h, o: _driver_serve(v, vendor=h),
               frozenset({"truncated"})),  # vendor.toml cut at a line's end may still be a valid manifest
    ServerSlot("driver serve-http --cert", "tls-cert", lambda v, h, o: _driver_serve(v, cert=h)),
    ServerSlot("driver serve-http --key", "tls-key", lambda v, h, o: _driver_serve(v, key=h)),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_server(argv: list[str], env: dict[str, str], limit: float = 60.0) -> tuple[int | None, str]:
    """Run ``usine argv`` until it exits, or until it says it serves (then kill it: (None, what it said))."""
    proc = subprocess.Popen([sys.executable, "-m", "conformity", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, text=True,
                            start_new_session=True)
    said: list[str] = []
    deadline = time.monotonic() + limit
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the process exits (its output closed)
            said.append(line)
            if any(marker in line for marker in SERVING) or time.monotonic() > deadline:
                return None, "".join(said)
        return proc.wait(limit), "".join(said)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the server and any worker it started
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def attack_server(root: Path, valid: Valid, slot: ServerSlot, hostile: str, seed: int) -> None:
    case = Path(tempfile.mkdtemp(dir=root, prefix="serve-"))
    (case / "in").mkdir()
    out = case / "out"
    out.mkdir()
    path = HOSTILE[hostile](case / "in", valid, slot.kind, random.Random(seed))
    before = _tree(root / "valid")
    argv = [*slot.args(valid, path, out), "--port", str(_free_port())]
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV} | {"USINE_HOME": str(case / "home")}
    code, said = _run_server(argv, env)
    what = f"{slot.name} given {hostile} ({path}): exit {code}\n{said[-3000:]}"
    assert "Traceback" not in said, f"traceback: {what}"
    assert _tree(root / "valid") == before, f"an input was changed: {what}"
    if hostile in slot.tolerated and code is None:
        return
    assert code is not None, f"served: {what}"
    assert code == 2, f"exit code: {what}"
    if hostile != "truncated":
        option = argv[argv.index(str(path)) - 1]
        assert any(n in said for n in (str(path), path.name, option)), f"neither the file nor its option named: {what}"


@pytest.fixture(scope="module")
def served_valid(valid: tuple[Path, Valid]) -> tuple[Path, Valid]:
    """The valid files, with a TLS certificate and its key (the sandbox's test PKI)."""
    from sandbox.tls import make_test_pki

    root, files = valid
    pki = make_test_pki(root / "valid" / "pki")
    return root, Valid({**files.files, "tls-cert": pki.server_cert, "tls-key": pki.server_key})


@settings(max_examples=8, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_servers_refuse_a_hostile_file_before_serving(served_valid: tuple[Path, Valid], data: st.DataObject) -> None:
    slot = data.draw(st.sampled_from(SERVER_SLOTS), label="slot")
    hostile = data.draw(st.sampled_from(sorted(HOSTILE)), label="hostile")
    attack_server(*served_valid, slot, hostile, data.draw(st.integers(0, 2**32), label="seed"))


@pytest.mark.slow
@pytest.mark.parametrize("slot", SERVER_SLOTS, ids=[s.name for s in SERVER_SLOTS])
def test_every_hostile_input_of_every_server(served_valid: tuple[Path, Valid], slot: ServerSlot) -> None:
    """Each server slot given each hostile input once (a process each: about a minute a slot on two cores)."""
    for hostile in sorted(HOSTILE):
        attack_server(*served_valid, slot, hostile, seed=len(hostile))
