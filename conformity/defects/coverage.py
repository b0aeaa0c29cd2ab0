"""Which requirements the declared defects break alone, wave by wave (``usine coverage --strict`` uses it)."""

from __future__ import annotations

import importlib
import importlib.util
from collections import defaultdict
from pathlib import Path

from conformity.catalog.catalog import Catalog
from conformity.defects import MUTATIONS, proves_alone, vendor_expectations


def load_pack_defects(root: Path) -> list[str]:
    """Import the trace mutations of every pack of the catalog at ``root`` (``conformity.defects.<pack>``)."""
    loaded = []
    for pack_file in sorted((root / "referentials").glob("*/pack.toml")):
        name = f"conformity.defects.{pack_file.parent.name.replace('-', '_')}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            loaded.append(name)
    return loaded


def defective_vendors_dir(root: Path) -> Path:
    return root / "examples" / "vendors" / "defective"


def must_automated(catalog: Catalog, wave: str, category: str) -> set[str]:
    """The automated MUST requirements of a wave × category."""
    if category not in catalog.wave(wave).categories:
        return set()
    return {a.id for a in catalog.specification(wave, category).requirements
            if a.level == "MUST" and a.requirement.proof.method == "automated"}


def broken_alone(catalog: Catalog, vendors: Path | None = None) -> dict[tuple[str, str], list[str]]:
    """(wave, requirement id) → the defects that break it alone there (``mutation:<id>``, ``vendor:<name>``).

    A defect's declared requirements are counted where its wave × category holds them as automated MUSTs.
    """
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    declared: list[tuple[str, str, str, tuple[str, ...]]] = [
        (f"mutation:{m.id}", wave, m.category, m.breaks) for _, m in MUTATIONS.items() for wave in m.waves]
    if vendors is not None and vendors.is_dir():
        declared += [(f"vendor:{v.vendor}", v.wave, v.category, v.failed) for v in vendor_expectations(vendors)]
    for name, wave, category, breaks in declared:
        if wave not in catalog.waves:
            continue
        here = [r for r in breaks if r in must_automated(catalog, wave, category)]
        for rid in here:
            if proves_alone(here, rid):
                found[(wave, rid)].append(name)
    return dict(found)


def uncovered(catalog: Catalog, vendors: Path | None = None) -> dict[str, list[str]]:
    """Wave → the automated MUST requirements (of any category) no declared defect breaks alone."""
    alone = broken_alone(catalog, vendors)
    out = {}
    for wave in sorted(catalog.waves):
        ids = set().union(*(must_automated(catalog, wave, c) for c in catalog.wave(wave).categories))
        missing = sorted(r for r in ids if not alone.get((wave, r)))
        if missing:
            out[wave] = missing
    return out
