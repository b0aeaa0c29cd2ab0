"""Which requirements the declared defects break alone, wave by wave (``usine coverage --strict`` uses it).

A defect is proven against the automated MUST **and SHOULD** requirements of its wave × category: a SHOULD check
that no defect fails could be unable to fail, and a report would never show it (a SHOULD's failure blocks no label,
but the report shows it to the vendor, so it must be right in both directions too).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from conformity import plugins
from conformity.catalog.catalog import Catalog
from conformity.catalog.models import Level
from conformity.defects import MUTATIONS, proves_alone, vendor_expectations

if TYPE_CHECKING:
    from conformity.harness.report import RequirementRow


def load_pack_defects(root: Path | None = None) -> list[str]:
    """Register the trace mutations (with the checks and scenarios) of every installed pack; the packs' ids."""
    return list(plugins.register_all())


def defective_vendors_dirs(root: Path) -> list[Path]:
    """Each installed pack's defective vendors under ``root`` (``examples/vendors/<pack>/defective``), those present."""
    found = [root / "examples" / "vendors" / pack / "defective" for pack in plugins.installed()]
    return [d for d in found if d.is_dir()]


#: the levels whose automated requirements every declared defect is proven against, and a wave's defects must cover
PROVEN_LEVELS: tuple[Level, ...] = ("MUST", "SHOULD")


def automated(catalog: Catalog, wave: str, category: str, levels: Iterable[str] = PROVEN_LEVELS) -> set[str]:
    """The automated requirements of a wave × category at ``levels`` (as the wave applies them: after promotion)."""
    if category not in catalog.wave(wave).categories:
        return set()
    wanted = set(levels)
    return {a.id for a in catalog.specification(wave, category).requirements
            if a.level in wanted and a.requirement.proof.method == "automated"}


def must_automated(catalog: Catalog, wave: str, category: str) -> set[str]:
    """The automated MUST requirements of a wave × category."""
    return automated(catalog, wave, category, ("MUST",))


def should_automated(catalog: Catalog, wave: str, category: str) -> set[str]:
    """The automated SHOULD requirements of a wave × category."""
    return automated(catalog, wave, category, ("SHOULD",))


def by_level(catalog: Catalog, wave: str, category: str, ids: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
    """``ids`` split as a wave × category holds them (sorted): its automated MUSTs, its automated SHOULDs, and the
    others (a declaration naming one of those says nothing a run of that wave × category could show)."""
    must, should = must_automated(catalog, wave, category), should_automated(catalog, wave, category)
    listed = sorted(set(ids))
    return ([r for r in listed if r in must], [r for r in listed if r in should],
            [r for r in listed if r not in must and r not in should])


def unsettled(rows: Iterable[RequirementRow], level: str) -> tuple[list[str], list[str], list[str]]:
    """The automated requirements of ``level`` a run's rows show failed, in error and not exercised (sorted): for
    MUST, the summary's ``failed_must``, ``errored_must`` and ``not_exercised_must``; for SHOULD, what the report shows
    as failed SHOULDs (rows of that level and verdict)."""
    mine = [r for r in rows if r.level == level and r.method == "automated"]

    def ids(verdict: str) -> list[str]:
        return sorted(r.id for r in mine if r.verdict == verdict)

    return ids("fail"), ids("error"), ids("not-exercised")


def broken_alone(catalog: Catalog, vendors: Iterable[Path] = ()) -> dict[tuple[str, str], list[str]]:
    """(wave, requirement id) → the defects that break it alone there (``mutation:<id>``, ``vendor:<name>``).

    A defect's declared requirements are counted where its wave × category holds them as automated MUSTs or SHOULDs.
    """
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    declared: list[tuple[str, str, str, tuple[str, ...]]] = [
        (f"mutation:{m.id}", wave, m.category, m.breaks) for _, m in MUTATIONS.items() for wave in m.waves]
    for folder in vendors:
        declared += [(f"vendor:{folder.parent.name}/{v.vendor}", v.wave, v.category, v.failed)
                     for v in vendor_expectations(folder)]
    for name, wave, category, breaks in declared:
        if wave not in catalog.waves:
            continue
        here = [r for r in breaks if r in automated(catalog, wave, category)]
        for rid in here:
            if proves_alone(here, rid):
                found[(wave, rid)].append(name)
    return dict(found)


def uncovered(catalog: Catalog, vendors: Iterable[Path] = ()) -> dict[str, list[str]]:
    """Wave → the automated MUST and SHOULD requirements (of any category) no declared defect breaks alone."""
    alone = broken_alone(catalog, vendors)
    out = {}
    for wave in sorted(catalog.waves):
        ids = set().union(*(automated(catalog, wave, c) for c in catalog.wave(wave).categories))
        missing = sorted(r for r in ids if not alone.get((wave, r)))
        if missing:
            out[wave] = missing
    return out


def requirement_key(requirement_id: str) -> str:
    """How a test id names a requirement: ``REF_003`` for REF-003 (what ``pytest -k`` selects it by)."""
    return requirement_id.replace("-", "_")


def mutation_case_id(wave: str, breaks: Iterable[str], mutation_id: str) -> str:
    """The id of the test proving a trace mutation fails exactly what it declares on a wave's reference run."""
    return f"{wave}-{'+'.join(requirement_key(r) for r in breaks)}-{mutation_id}"


def vendor_case_id(vendor: str, wave: str, failed: Iterable[str]) -> str:
    """The id of the test proving a defective vendor's run fails exactly what its ``expected.toml`` lists."""
    return f"{vendor}-{wave}->{'+'.join(requirement_key(r) for r in failed)}"


def proving_tests(catalog: Catalog, vendors: Iterable[Path] = ()) -> dict[tuple[str, str], list[str]]:
    """(wave, requirement id) → the ids of the tests proving a declared defect breaks it there: each trace mutation's
    and each defective vendor's that declares it, in the waves of the catalog."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, m in MUTATIONS.items():
        for wave in m.waves:
            if wave in catalog.waves:
                for rid in m.breaks:
                    found[(wave, rid)].append(mutation_case_id(wave, m.breaks, m.id))
    for folder in vendors:
        for v in vendor_expectations(folder):
            if v.wave in catalog.waves:
                for rid in v.failed:
                    found[(v.wave, rid)].append(vendor_case_id(v.vendor, v.wave, v.failed))
    return dict(found)
