"""Every command that reads a file, fed hostile bytes in that file's place: a clear error, never a traceback.

The net under the command line (DEVELOPERS.md: "bad input everywhere gets a clear error (what, where, why), a
non-zero exit, and loses nothing"). Each :class:`Slot` is one (command, file argument) pair: the command's other
arguments valid, the one under test replaced by something hostile (:data:`HOSTILE`): an empty file, a folder where a
file is expected, a missing path, a path under a file, a symlink loop, random bytes, invalid UTF-8, a valid file of its
kind truncated, a valid file of another kind, JSON of the wrong shape (an array, a huge number, 10,000 levels of
nesting, a member named twice), TOML with wrong types, a zip that is no bundle, a SQLite file of another schema and a
corrupt one. Each run asserts: the exit code is one the command documents for bad input (2, or the verdict a command
gives about the file it judges: 1 for a bundle or a label it refuses), the output names the argument or the file,
no traceback, and nothing was written to the command's outputs.

Each command runs in-process (click's CliRunner, exceptions caught: an uncaught one is a traceback for a user), with
``USINE_HOME`` in the test's folder (a command that creates a default key or registry creates it there).
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
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

REPO = Path(__file__).resolve().parents[2]
PAYER = REPO / "examples" / "payments" / "payer.toml"
PAYEES = REPO / "examples" / "payments" / "payees.toml"
VENDOR = REPO / "examples" / "vendors" / "health" / "reference" / "vendor.toml"
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


def _other_kind(folder: Path, valid: Valid, kind: str, rnd: random.Random) -> Path:
    others = sorted(k for k, p in valid.files.items() if k != kind and p.is_file() and p.suffix != valid[kind].suffix)
    return valid[rnd.choice(others)]


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
PATHS = frozenset({"folder", "missing", "under-a-file", "symlink-loop"})
#: a SQLite database that does not exist yet, or an empty file (SQLite's empty database), is created on first use
NEW_DATABASE = frozenset({"missing", "empty"})


@dataclass(frozen=True)
class Slot:
    """One file argument of one command: its kind, how to build the command line, which codes bad input may give."""

    name: str
    kind: str
    args: Callable[[Valid, Path, Path], list[str]]  # (valid files, the hostile path, the output folder) → argv
    codes: frozenset[int] = frozenset({2})
    #: hostile inputs the command may take as valid, each for a documented reason (exit 0, its outputs written)
    tolerated: frozenset[str] = frozenset()
    #: the file's content is judged line by line into a report (exit 0, refusals listed): only hostile paths apply
    paths_only: bool = False


def _pay(valid: Valid, out: Path, **swap: Path) -> list[str]:
    given = {"labels": valid["labels"], "ledger": out / "ledger.sqlite3", "agency-key": valid["pubkey"],
             "payer": valid["payer"], "payees": valid["payees"], "infrastructure-keys": valid["infra"],
             "events": valid["events"], "revocations": valid["revocations"], **swap}
    args = ["pay", "run", "--wave", "2026-W1", "--as-of", "2027-06-30T23:59:59Z", "--out", str(out / "payments")]
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
]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (a key's ``.lock`` beside it, which using the key creates, left out)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


#: usine's environment variables naming files: unset, so that each run reads only what its command line names
CLEAN_ENV: dict[str, str | None] = {name: None for name in (
    "USINE_AGENCY_PUBKEY", "USINE_REGISTRY", "USINE_LEDGER", "USINE_CATALOG", "USINE_TRUSTED_SANDBOX_KEYS",
    "USINE_REVOCATIONS", "USINE_INFRASTRUCTURE_KEYS", "USINE_PAYER", "USINE_SANDBOX_TOKEN")}


def attack(root: Path, valid: Valid, slot: Slot, hostile: str, seed: int) -> None:
    """Run ``slot``'s command with ``hostile`` in its file's place; assert a clear refusal that wrote nothing."""
    case = Path(tempfile.mkdtemp(dir=root, prefix="case-"))
    (case / "in").mkdir()
    out = case / "out"
    out.mkdir()
    path = HOSTILE[hostile](case / "in", valid, slot.kind, random.Random(seed))
    before = _tree(root / "valid")
    argv = slot.args(valid, path, out)
    result = CliRunner().invoke(cli, argv, catch_exceptions=True, env={**CLEAN_ENV, "USINE_HOME": str(case / "home")})
    said = result.output
    what = f"{slot.name} given {hostile} ({path}): exit {result.exit_code}\n{said[-3000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"traceback: {what}\n{trace}")
    assert "Traceback" not in said, f"traceback: {what}"
    assert _tree(root / "valid") == before, f"an input was changed: {what}"
    if hostile in slot.tolerated and result.exit_code == 0:
        return
    assert result.exit_code in slot.codes, f"exit code: {what}"
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
