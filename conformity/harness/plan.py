"""The plan of a run: wave × category → applicable requirements → checks → scenarios."""

from __future__ import annotations

from dataclasses import dataclass

from conformity.catalog import AppliedRequirement, Catalog, Specification
from conformity.checks.registry import CHECKS
from conformity.errors import InputError
from conformity.harness.selection import select


@dataclass(frozen=True, slots=True)
class PlannedRequirement:
    applied: AppliedRequirement
    checks: tuple[str, ...]  # empty for document / manual proofs

    @property
    def id(self) -> str:
        return self.applied.id


@dataclass(frozen=True, slots=True)
class Plan:
    spec: Specification
    requirements: tuple[PlannedRequirement, ...]
    checks: tuple[str, ...]
    scenarios: tuple[str, ...]

    @property
    def wave(self) -> str:
        return self.spec.wave.id

    @property
    def category(self) -> str:
        return self.spec.category

    def referential_versions(self) -> dict[str, str]:
        return {r.id: r.version for r in self.spec.referentials}


def make_plan(catalog: Catalog, wave: str, category: str, only: tuple[str, ...] | list[str] = ()) -> Plan:
    """Plan a run; ``only`` narrows it (requirement ids, referential ids, globs: :mod:`conformity.harness.selection`)."""
    spec = catalog.specification(wave, category)
    applied = select(catalog, spec, only)
    planned: list[PlannedRequirement] = []
    checks: list[str] = []
    for a in applied:
        ids = a.requirement.proof.checks
        missing = [c for c in ids if c not in CHECKS]
        if missing:
            raise InputError(f"{a.id} names check(s) {', '.join(missing)} that are not registered", where=a.requirement.ref)
        planned.append(PlannedRequirement(a, ids))
        checks.extend(ids)
    check_ids = tuple(dict.fromkeys(checks))
    scenarios = tuple(dict.fromkeys(s for c in check_ids for s in CHECKS.get(c).scenarios))
    return Plan(spec, tuple(planned), check_ids, scenarios)
