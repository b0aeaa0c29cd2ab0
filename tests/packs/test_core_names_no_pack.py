"""The core names no sector: no core module imports a pack, or mentions a pack's identifiers.

The core is every module of ``conformity/`` and ``sandbox/`` outside their ``packs/`` folders, the site simulation's
shared core (``examples/sites/simulate.py``), and the JSON Schemas of the formats. A pack's identifiers are its id,
its referential ids, its category ids, its driver actions and the user its login action logs in (``practitioner``
of ``practitioner.login``), the names of its sandbox services, provider, directories and official schemas
(``--schema NAME``), and its modules. Each installed pack is checked, found as the core finds it (``usine.packs``
entry points): a third-party pack is held to the same rule.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformity import plugins
from conformity.catalog import load_catalog
from sandbox import plugins as sandbox_plugins

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted(
    [p for top in ("conformity", "sandbox") for p in (ROOT / top).rglob("*.py")
     if "packs" not in p.relative_to(ROOT / top).parts]
    + [ROOT / "examples" / "sites" / "simulate.py"]
)
SCHEMAS = sorted((ROOT / "conformity" / "schemas").glob("*.json"))
#: the sandbox's liveness endpoint is GET /health: a word the health pack's id happens to share
LIVENESS = re.compile(r'"/health"|"GET /health"|def health\(')


def identifiers(pack_id: str) -> dict[str, set[str]]:
    """A pack's identifiers: words (ids of the pack, its referentials, categories and driver actions, the user
    its login action logs in) and names (services)."""
    catalog = load_catalog()
    refs = [r for r in catalog.referentials.values() if r.pack == pack_id]
    user = plugins.get(pack_id).login_action.partition(".")[0]
    words = (
        {pack_id}
        | {r.id for r in refs}
        | set(catalog.packs[pack_id].categories)
        | {a.name for r in refs for a in r.actions}
        | ({user, user + "s"} if user else set())
    )
    sandbox = sandbox_plugins.packs().get(pack_id)
    names = set(sandbox.service_names()) | {s.name for s in sandbox.schemas} if sandbox else set()
    return {"words": words, "names": names}


PACKS = list(plugins.installed())


def _strings(value: object) -> Iterator[str]:
    """Every string of a JSON document: its objects' names and its values."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_every_shipped_pack_is_installed_through_the_entry_point_group() -> None:
    assert {"health", "housing"} <= set(PACKS)
    assert len(CORE) > 100


@pytest.mark.parametrize("pack_id", PACKS)
def test_no_core_module_imports_a_pack(pack_id: str) -> None:
    modules = {f"conformity.packs.{pack_id}", f"sandbox.packs.{pack_id}"}
    offenders = []
    for path in CORE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith(("conformity.packs.", "sandbox.packs.")) else []
            if any(n == m or n.startswith(m + ".") for n in names for m in modules):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


@pytest.mark.parametrize("pack_id", PACKS)
def test_no_core_module_mentions_a_pack(pack_id: str) -> None:
    ids = identifiers(pack_id)
    word = re.compile(r"\b(" + "|".join(sorted(map(re.escape, ids["words"]))) + r")\b")
    offenders = []
    for path in CORE + SCHEMAS:
        text = path.read_text(encoding="utf-8")
        for i, line in enumerate(text.splitlines(), 1):
            for m in word.finditer(LIVENESS.sub("", line)):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {m.group(0)}")
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Constant) and node.value in ids["names"]:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: service {node.value!r}")
        else:  # a schema's names and values (a pack's services required of every driver's endpoints…)
            offenders += [f"{path.relative_to(ROOT)}: service {s!r}" for s in _strings(json.loads(text))
                          if s in ids["names"]]
    assert not offenders, "\n".join(offenders)


def test_the_check_finds_a_mention() -> None:
    """The rule can fail: a line naming a pack's referential is caught."""
    ids = identifiers("health")
    word = re.compile(r"\b(" + "|".join(sorted(map(re.escape, ids["words"]))) + r")\b")
    assert word.search("see PRACAUTH-001") and word.search("for HOSPITAL software") and not word.search("healthy")
    assert word.search("no practitioner.login before") and word.search("log in the first fixture practitioner")
    assert word.search("the practitioners of the fixtures") and not word.search("a practitioner_id")
