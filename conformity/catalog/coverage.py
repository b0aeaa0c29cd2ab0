"""Coverage: requirements → checks, and checks → requirements, for a wave or the whole catalog."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from conformity.catalog.catalog import Catalog
from conformity.catalog.crosscheck import DeclaredCheck
from conformity.catalog.models import Requirement
from conformity.checks.registry import CHECKS
from conformity.defects.coverage import requirement_key

#: what marks the reason a requirement has no automated check as a placeholder, not a reason
_PLACEHOLDER = re.compile(r"\b(?:todo|tbd|tbc|fixme|xxx+|placeholder|lorem ipsum|"
                          r"to be (?:written|defined|done|completed|determined|decided|confirmed)|"
                          r"not yet (?:written|known|decided))\b", re.IGNORECASE)
#: fewer words than this say what proves a requirement, not why no check does
_MIN_REASON_WORDS = 4


@dataclass(frozen=True, slots=True)
class CoverageRow:
    requirement: str
    level: str
    method: str
    checks: tuple[str, ...]
    status: str  # "covered" | "missing-check" | "document" | "manual" | "check-disagrees" | "no-reason"
    note: str
    #: the declared defects that break this requirement alone (``mutation:<id>``, ``vendor:<name>``), in the waves
    #: pinning this version (see :mod:`conformity.defects.coverage`)
    defects: tuple[str, ...] = ()
    #: whether a wave in scope pins this version (only those need defects)
    pinned: bool = False
    #: the ids of the tests proving a declared defect breaks it (trace mutations, defective vendors), in the waves
    #: in scope pinning this version (see :func:`conformity.defects.coverage.proving_tests`)
    tests: tuple[str, ...] = ()
    #: what ``pytest -k`` selects this requirement's tests by (automated requirements only)
    test_selector: str = ""


def coverage(catalog: Catalog, wave_id: str | None = None, category: str | None = None) -> list[CoverageRow]:
    """One row per requirement in scope, with the checks proving it and their state."""
    if wave_id is not None:
        wave = catalog.wave(wave_id)
        cats = [category] if category else list(wave.categories)
        seen: dict[str, tuple[Requirement, str]] = {}
        for cat in cats:
            for a in catalog.specification(wave_id, cat).requirements:
                seen.setdefault(a.requirement.ref, (a.requirement, a.level))
        reqs = list(seen.values())
    else:
        reqs = [(r, r.level) for ref in catalog.referentials.values() for r in ref.requirements]
    rows = []
    for req, level in reqs:
        p = req.proof
        if p.method != "automated":
            why = placeholder_reason(p.evidence)
            rows.append(CoverageRow(req.ref, level, p.method, (), "no-reason" if why else p.method,
                                    f"{p.evidence} — no reason: {why}" if why else p.evidence))
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


def with_defects(rows: list[CoverageRow], catalog: Catalog, alone: Mapping[tuple[str, str], list[str]],
                 wave_id: str | None = None,
                 tests: Mapping[tuple[str, str], list[str]] | None = None) -> list[CoverageRow]:
    """``rows`` with the defects that break each requirement alone in the waves (in scope) pinning its version, and
    (automated requirements) the ids of the tests proving them and the key ``pytest -k`` selects them by."""
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
        waves = pinning.get(r.requirement, [])
        found = tuple(dict.fromkeys(d for w in waves for d in alone.get((w, rid), [])))
        automated = r.method == "automated"
        named = tuple(dict.fromkeys(t for w in waves for t in (tests or {}).get((w, rid), []))) if automated else ()
        out.append(replace(r, defects=found, pinned=r.requirement in pinning, tests=named,
                           test_selector=requirement_key(rid) if automated else ""))
    return out


def placeholder_reason(evidence: str) -> str | None:
    """Why the reason a requirement has no automated check is no reason (None: it says why)."""
    found = _PLACEHOLDER.search(evidence)
    if found:
        return f"it holds the placeholder {found.group(0)!r}"
    if len(evidence.split()) < _MIN_REASON_WORDS:
        return f"fewer than {_MIN_REASON_WORDS} words say what proves it, not why no check does"
    return None


def declaration_problems(catalog: Catalog, declared: Mapping[str, DeclaredCheck],
                         wave_id: str | None = None) -> list[str]:
    """Each requirement id a check declares (checks of the packs in scope: the wave's, or every pack of the catalog)
    that no wave's specification holds: a check no run ever judges it by. Unknown ids too (``usine validate`` refuses
    them; a catalog loaded without the checks has not)."""
    packs = {catalog.wave(wave_id).pack} if wave_id else set(catalog.packs)
    held: set[str] = set()
    pinned: set[tuple[str, str]] = set()
    for wid, wave in catalog.waves.items():
        for code, wc in wave.categories.items():
            pinned.update(wc.referentials.items())
            held.update(a.requirement.id for a in catalog.specification(wid, code).requirements)
    versions: dict[str, list[tuple[str, str]]] = {}
    for key, ref in sorted(catalog.referentials.items()):
        for r in ref.requirements:
            versions.setdefault(r.id, []).append(key)
    out = []
    for cid, d in sorted(declared.items()):
        if d.pack not in packs:
            continue
        for rid in d.verifies:
            if rid in held:
                continue
            where = versions.get(rid, [])
            if not where:
                why = "which no referential of the catalog has"
            elif not any(key in pinned for key in where):
                why = (f"which only {', '.join(f'{i}@{v}' for i, v in where)} ha{'s' if len(where) == 1 else 've'}, "
                       "a version no wave pins")
            else:
                why = "which every wave pinning it leaves out (excluded, or of no category the wave labels)"
            out.append(f"check {cid} declares it verifies {rid}, {why}: no run ever judges it by this check")
    return out
