"""Coverage: requirements → checks, and checks → requirements, for a wave or the whole catalog."""

from __future__ import annotations

from dataclasses import dataclass, replace

from conformity.catalog.catalog import Catalog
from conformity.checks.registry import CHECKS


@dataclass(frozen=True, slots=True)
class CoverageRow:
    requirement: str
    level: str
    method: str
    checks: tuple[str, ...]
    status: str  # "covered" | "missing-check" | "document" | "manual" | "check-disagrees"
    note: str
    #: the declared defects that break this requirement alone (``mutation:<id>``, ``vendor:<name>``), in the waves
    #: pinning this version (see :mod:`conformity.defects.coverage`)
    defects: tuple[str, ...] = ()
    #: whether a wave in scope pins this version (only those need defects)
    pinned: bool = False


def coverage(catalog: Catalog, wave_id: str | None = None, category: str | None = None) -> list[CoverageRow]:
    """One row per requirement in scope, with the checks proving it and their state."""
    if wave_id is not None:
        wave = catalog.wave(wave_id)
        cats = [category] if category else list(wave.categories)
        seen: dict[str, object] = {}
        for cat in cats:
            for a in catalog.specification(wave_id, cat).requirements:
                seen.setdefault(a.requirement.ref, (a.requirement, a.level))
        reqs = list(seen.values())
    else:
        reqs = [(r, r.level) for ref in catalog.referentials.values() for r in ref.requirements]
    rows = []
    for req, level in reqs:  # type: ignore[misc]  # the rows are (Requirement, level) pairs; the dict above is typed object
        p = req.proof
        if p.method != "automated":
            rows.append(CoverageRow(req.ref, level, p.method, (), p.method, p.evidence))
            continue
        missing = [c for c in p.checks if c not in CHECKS]
        disagree = [c for c in p.checks if c in CHECKS and req.id not in CHECKS.get(c).verifies]
        if missing:
            rows.append(CoverageRow(req.ref, level, p.method, p.checks, "missing-check",
                                    "not registered: " + ", ".join(missing)))
        elif disagree:
            rows.append(CoverageRow(req.ref, level, p.method, p.checks, "check-disagrees",
                                    f"check(s) {', '.join(disagree)} do not declare {req.id}"))
        else:
            rows.append(CoverageRow(req.ref, level, p.method, p.checks, "covered", ""))
    return sorted(rows, key=lambda r: r.requirement)


def with_defects(rows: list[CoverageRow], catalog: Catalog, alone: dict[tuple[str, str], list[str]],
                 wave_id: str | None = None) -> list[CoverageRow]:
    """``rows`` with the defects that break each requirement alone in the waves (in scope) pinning its version."""
    pinning: dict[str, list[str]] = {}
    for wid in ([wave_id] if wave_id else sorted(catalog.waves)):
        for category in catalog.wave(wid).categories:
            for a in catalog.specification(wid, category).requirements:
                waves = pinning.setdefault(a.requirement.ref, [])
                if wid not in waves:
                    waves.append(wid)
    out = []
    for r in rows:
        rid = r.requirement.split("#")[-1]
        found = tuple(dict.fromkeys(d for w in pinning.get(r.requirement, []) for d in alone.get((w, rid), [])))
        out.append(replace(r, defects=found, pinned=r.requirement in pinning))
    return out
