"""Load the catalog (packs, referentials, waves) all-or-nothing, with every problem found."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from conformity import plugins, tomlio
from conformity.catalog.catalog import Catalog
from conformity.catalog.crosscheck import Registered, cross_check
from conformity.catalog.models import (
    Action,
    Funding,
    Pack,
    Proof,
    ProofOfUse,
    Referential,
    Requirement,
    Wave,
    WaveCategory,
)
from conformity.catalog.schema import key_path, plain, schema_problems
from conformity.errors import CatalogError, InputError, Problem
from conformity.files import real_path
from conformity.paths import default_catalog_root


def read_toml(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    """Parse one TOML file (``conformity.tomlio``); what is wrong with it becomes Problems."""
    try:
        return tomlio.load(path)
    except InputError as exc:
        problems.extend(exc.problems)
    return None


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def _pack(path: Path, data: dict[str, Any]) -> Pack:
    return Pack(
        id=data["id"], title=data["title"], description=data.get("description", ""),
        categories={k: v["title"] for k, v in data["categories"].items()},
        site_sizes={k: v["title"] for k, v in data["site_sizes"].items()},
        data_kinds={k: v["title"] for k, v in data["data_kinds"].items()},
        typed_kinds=frozenset(k for k, v in data["data_kinds"].items() if v.get("typed")),
        covered_by={k: tuple(v["referentials"]) for k, v in data["data_kinds"].items()},
        path=path,
    )


def _referential(path: Path, pack: str, data: dict[str, Any]) -> Referential:
    rid, version = data["id"], data["version"]
    reqs = []
    for r in data["requirements"]:
        p = r["proof"]
        proof = Proof(method=p["method"], checks=tuple(p.get("checks", ())),
                      evidence=" ".join(p.get("evidence", "").split()))  # one paragraph, as a statement
        reqs.append(Requirement(
            id=r["id"], title=r["title"], statement=" ".join(r["statement"].split()), level=r["level"],
            kind=r["kind"], categories=tuple(r["categories"]), proof=proof, referential=rid, version=version,
            rationale=r.get("rationale", ""), references=tuple(r.get("references", ())),
            parameters=dict(r.get("parameters", {})),
        ))
    actions = tuple(
        Action(name=a["name"], description=a["description"], input=a["input"], output=a["output"],
               referential=rid, version=version)
        for a in data.get("actions", ())
    )
    return Referential(
        id=rid, version=version, pack=pack, title=data["title"], owner=data["owner"], status=data["status"],
        published=_date(data["published"]), summary=" ".join(data.get("summary", "").split()),
        supersedes=data.get("supersedes"), changes=" ".join(data.get("changes", "").split()),
        requirements=tuple(reqs), actions=actions, path=path,
    )


def _proof_of_use(d: dict[str, Any]) -> ProofOfUse:
    return ProofOfUse(kinds=tuple(d["kinds"]), min_events=d["min_events"], within_days=d["within_days"],
                      document_types=tuple(d.get("document_types", ())))


def _wave(path: Path, data: dict[str, Any]) -> Wave:
    cats = {}
    for code, c in data["categories"].items():
        sel = c["requirements"]
        cats[code] = WaveCategory(
            code=code, referentials=dict(c["referentials"]),
            selection="applicable" if sel == "applicable" else tuple(sel),
            exclude={e["id"]: " ".join(e["reason"].split()) for e in c.get("exclude", ())},  # one paragraph
            promote=frozenset(c.get("promote", ())),
        )
    f = data["funding"]
    pou = f["proof_of_use"]
    funding = Funding(
        currency=f["currency"], window_start=_date(f["window"]["start"]), window_end=_date(f["window"]["end"]),
        cap_per_software=f["cap_per_software"], prices={k: dict(v) for k, v in f["prices"].items()},
        proof_of_use_default=_proof_of_use(pou["default"]),
        proof_of_use_by_category={k: _proof_of_use(v) for k, v in pou.get("by_category", {}).items()},
    )
    d = data["dates"]
    return Wave(
        id=data["id"], title=data["title"], pack=data["pack"], description=" ".join(data.get("description", "").split()),
        previous=data.get("previous"), open=_date(d["open"]), submission_deadline=_date(d["submission_deadline"]),
        label_valid_until=_date(d["label_valid_until"]), categories=cats, funding=funding, path=path,
        non_waivable=frozenset(data.get("waivers", {}).get("non_waivable", ())),
        non_waivable_kinds=frozenset(data.get("waivers", {}).get("non_waivable_kinds", ())),
    )


def _floats(value: Any, at: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], float]]:
    """(key path, value) of every float in ``value``."""
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _floats(v, (*at, k))]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _floats(v, (*at, i))]
    return [(at, value)] if isinstance(value, float) else []


#: characters a text of the catalog may not hold: C0 controls but tab and line feed (a carriage return, an escape
#: sequence rewrite what a terminal shows), DEL, C1 controls, and the bidirectional embeddings, overrides and
#: isolates that show a reader other words than those the file holds
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: where a referential holds data rather than text: an action's JSON Schemas, a requirement's parameters
_NOT_TEXT = {"actions": frozenset({"input", "output"}), "requirements": frozenset({"parameters"})}


#: a line break; a title or an owner is printed on a line of its own
_LINE_BREAK = re.compile("[\n\u2028\u2029]")
_ONE_LINE = frozenset({"title", "owner"})


def _texts(value: Any, at: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, text) of every string and key of a catalog file but those that are data (:data:`_NOT_TEXT`)."""
    if isinstance(value, dict):
        data = _NOT_TEXT.get(str(at[0]), frozenset()) if len(at) == 2 else frozenset()
        return [((*at, k), k) for k in value] + [f for k, v in value.items() if k not in data
                                                 for f in _texts(v, (*at, k))]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _texts(v, (*at, i))]
    return [(at, value)] if isinstance(value, str) else []


def _text_problems(path: Path, data: Any) -> list[Problem]:
    """A control character in any text; a line break in a title or an owner."""
    out = []
    for at, text in _texts(data):
        if m := _CONTROL.search(text):
            out.append(Problem(str(path), key_path(at), f"control character U+{ord(m.group()):04X}: a text of the "
                                                        "catalog holds printable characters, tabs and line breaks "
                                                        "only"))
        elif at and at[-1] in _ONE_LINE and _LINE_BREAK.search(text):
            out.append(Problem(str(path), key_path(at), f"a {at[-1]} is one line (it is printed on a line of its "
                                                        "own): no line break"))
    return out


#: the schemas whose every number is a whole one (JSON Schema's integer also takes 28000.0: said here)
_WHOLE_NUMBERS_ONLY = frozenset({"pack", "wave"})


def _load_file(path: Path, schema: str, problems: list[Problem]) -> dict[str, Any] | None:
    raw = read_toml(path, problems)
    if raw is None:
        return None
    data: dict[str, Any] = plain(raw)
    found = schema_problems(schema, data, str(path))
    if not found and schema in _WHOLE_NUMBERS_ONLY:
        found = [Problem(str(path), key_path(at), f"{value!r} is not a whole number: write it without a decimal "
                                                  "point or exponent (amounts are whole euros, counts and days whole)")
                 for at, value in _floats(data)]
    if not found:
        found = _text_problems(path, data)
    if found:
        problems.extend(found)
        return None
    return data


def _travelling() -> list[tuple[str, Path]]:
    """(id, data folder) of the installed packs whose data travels with them (``SectorPack.data``)."""
    return [(p.id, p.data) for p in plugins.installed().values() if p.data is not None]


def _pack_dirs(own: list[Path], travelling: list[tuple[str, Path]]) -> list[Path]:
    """The catalog's pack folders (``own``), then those of installed packs that carry their data (a folder of the
    catalog wins: a working copy overrides what a pack ships)."""
    names = {p.name for p in own}
    return own + [data / "referentials" / pid for pid, data in travelling
                  if pid not in names and (data / "referentials" / pid).is_dir()]


def _wave_files(own_packs: list[Path], wave_entries: list[Path], travelling: list[tuple[str, Path]]) -> list[Path]:
    """The catalog's wave files, then those shipped by installed packs that carry their data (not a pack the catalog
    has a folder of, nor a wave file of the catalog's name)."""
    found = [p for p in wave_entries if p.suffix == ".toml"]
    names, own = {f.name for f in found}, {p.name for p in own_packs}
    return found + [w for pid, data in travelling if pid not in own
                    for w in sorted((data / "waves").glob("*.toml")) if w.name not in names]


def _misnamed(folder: Path, paths: Iterable[Path]) -> list[Problem]:
    """Files that look like catalog files but would be skipped (``2.0.TOML``, ``2.0.Toml``): said, never ignored."""
    return [Problem(str(p), "", f"unexpected file name: catalog files end in .toml (lower case); this one under "
                                f"{folder} would be ignored") for p in sorted(paths)
            if p.suffix.lower() == ".toml" and p.suffix != ".toml"]


def _outside(root: Path, paths: Iterable[Path], problems: list[Problem]) -> list[Path]:
    """``paths`` but those that lead out of the catalog folder ``root`` (resolved) through a link: each such link is
    a Problem, and nothing under it is loaded."""
    kept = []
    for p in paths:
        try:
            target = p.resolve()
        except (RuntimeError, OSError) as exc:  # a loop of links (RuntimeError until Python 3.13)
            problems.append(Problem(str(p), "", f"a link that leads to no file: {exc}"))
            continue
        if target.is_relative_to(root):
            kept.append(p)
        elif p.is_symlink():
            problems.append(Problem(str(p), "", f"a link to {target}, outside the catalog folder {root}: a catalog "
                                                "holds its own files (copy them in, or give --catalog the other "
                                                "folder)"))
    return kept


def _duplicate_exclusions(path: Path, data: dict[str, Any]) -> list[Problem]:
    """A requirement excluded twice in one category (one of the two reasons would be lost)."""
    out = []
    for code, c in data["categories"].items():
        seen: set[str] = set()
        for i, e in enumerate(c.get("exclude", ())):
            if e["id"] in seen:
                out.append(Problem(str(path), f"categories.{code}.exclude[{i}].id",
                                   f"requirement {e['id']} is excluded twice in category {code} (give one reason)"))
            seen.add(e["id"])
    return out


def load_catalog(root: str | Path | None = None, *,
                 registered_checks: Registered | AbstractSet[str] | None = None) -> Catalog:
    """Load and cross-check every pack, referential and wave under ``root``.

    All-or-nothing: raises CatalogError listing every problem found, or returns the Catalog.
    ``registered_checks``: what the installed packs registered (:func:`conformity.checks.packs.registered`: every
    check a requirement names exists and declares it, and back), or only the check ids that exist.
    """
    root = Path(root) if root is not None else default_catalog_root()
    problems: list[Problem] = []
    ref_dir, wave_dir = root / "referentials", root / "waves"
    for d in (ref_dir, wave_dir):
        if not d.is_dir():
            problems.append(Problem(str(d), "", "catalog folder is missing"))
    real_root = real_path(root)
    _outside(real_root, (ref_dir, wave_dir), problems)
    if problems:
        raise CatalogError(problems)

    packs: dict[str, Pack] = {}
    broken: set[tuple[str, str]] = set()  # referential files that failed: their own error is enough
    referentials: dict[tuple[str, str], Referential] = {}
    owners: dict[str, Referential] = {}  # referential id → its first version found (its pack owns the id)
    ref_entries = _outside(real_root, sorted(ref_dir.iterdir()), problems)  # each folder listed once
    wave_entries = _outside(real_root, sorted(wave_dir.iterdir()), problems)
    own_packs, travelling = [p for p in ref_entries if p.is_dir()], _travelling()
    for pack_dir in _pack_dirs(own_packs, travelling):
        pack_file = pack_dir / "pack.toml"
        if not pack_file.is_file():
            problems.append(Problem(str(pack_dir), "", "pack folder has no pack.toml"))
            continue
        data = _load_file(pack_file, "pack", problems)
        if data is not None:
            if data["id"] != pack_dir.name:
                problems.append(Problem(str(pack_file), "id", f"pack id {data['id']!r} does not match its folder {pack_dir.name!r}"))
            else:
                packs[data["id"]] = _pack(pack_file, data)
        entries = sorted(pack_dir.rglob("*"))
        if pack_dir.parent == ref_dir:  # the catalog's own pack folder (an installed pack's data lives elsewhere)
            entries = _outside(real_root, entries, problems)
        problems.extend(_misnamed(pack_dir, entries))
        for path in (p for p in entries if p.suffix == ".toml"):
            if path == pack_file:
                continue
            rel = path.relative_to(pack_dir).parts
            if len(rel) != 2:
                problems.append(Problem(str(path), "", f"unexpected file: referentials go in {pack_dir}/<ID>/<version>.toml"))
                continue
            data = _load_file(path, "referential", problems)
            if data is None:
                broken.add((rel[0], path.stem))
                continue
            folder_id, file_version = rel[0], path.stem
            if data["id"] != folder_id or data["version"] != file_version:
                problems.append(Problem(str(path), "id", f"file declares {data['id']}@{data['version']} but its path says "
                                                          f"{folder_id}@{file_version}"))
                continue
            ref = _referential(path, pack_dir.name, data)
            first = owners.setdefault(ref.id, ref)
            if first.pack != ref.pack:
                problems.append(Problem(str(path), "id", f"referential {ref.id} is in pack {ref.pack} and in pack "
                                                          f"{first.pack} ({first.path}): a referential belongs to one "
                                                          "pack (rename one of them)"))
                continue
            referentials[ref.key] = ref

    waves: dict[str, Wave] = {}
    problems.extend(_misnamed(wave_dir, wave_entries))
    problems.extend(Problem(str(f), "", f"unexpected file: {ref_dir} holds pack folders only")
                    for f in ref_entries if f.is_file() and f.suffix.lower() == ".toml")
    problems.extend(Problem(str(d), "", f"unexpected folder: waves are files {wave_dir}/<id>.toml")
                    for d in wave_entries if d.is_dir())
    for path in _wave_files(own_packs, wave_entries, travelling):
        data = _load_file(path, "wave", problems)
        if data is None:
            continue
        if data["id"] != path.stem:
            problems.append(Problem(str(path), "id", f"wave id {data['id']!r} does not match its file name {path.stem!r}"))
            continue
        problems.extend(_duplicate_exclusions(path, data))
        waves[data["id"]] = _wave(path, data)

    if not packs and not problems:
        problems.append(Problem(str(ref_dir), "", "no domain pack found (expected referentials/<pack>/pack.toml)"))
    catalog = Catalog(root=root, packs=packs, referentials=referentials, waves=waves)
    problems.extend(cross_check(catalog, registered_checks, broken=broken))
    if problems:
        raise CatalogError(problems)
    return catalog
