"""The catalog's models: packs, referentials and their requirements, waves and funding."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Level = Literal["MUST", "SHOULD"]
ProofMethod = Literal["automated", "document", "manual"]


@dataclass(frozen=True, slots=True)
class Pack:
    """A domain pack (sector): categories, site sizes and data kinds."""

    id: str
    title: str
    description: str
    categories: dict[str, str]
    site_sizes: dict[str, str]
    data_kinds: dict[str, str]
    path: Path
    #: the data kinds whose events carry a type code a funding rule may count (``typed = true``)
    typed_kinds: frozenset[str] = frozenset()
    #: data kind → the referentials whose label covers that data (``data_kinds.<kind>.referentials``)
    covered_by: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Proof:
    """How a requirement is proven: automated checks, or a document / manual review."""

    method: ProofMethod
    checks: tuple[str, ...] = ()
    evidence: str = ""

    def describe(self) -> str:
        if self.method == "automated":
            return "automated: " + ", ".join(self.checks)
        return f"{self.method}: {self.evidence}"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One testable statement of one referential version."""

    id: str
    title: str
    statement: str
    level: Level
    kind: str
    categories: tuple[str, ...]
    proof: Proof
    referential: str
    version: str
    rationale: str = ""
    references: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def ref(self) -> str:
        """The requirement's versioned reference, e.g. ``REF@1.0#REF-012``."""
        return f"{self.referential}@{self.version}#{self.id}"


@dataclass(frozen=True, slots=True)
class Action:
    """An action the harness may ask a vendor's driver to perform."""

    name: str
    description: str
    input: dict[str, Any]
    output: dict[str, Any]
    referential: str
    version: str


@dataclass(frozen=True, slots=True)
class Referential:
    """One version of a referential."""

    id: str
    version: str
    pack: str
    title: str
    owner: str
    status: str
    published: dt.date
    summary: str
    supersedes: str | None
    changes: str
    requirements: tuple[Requirement, ...]
    actions: tuple[Action, ...]
    path: Path

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.version)

    def requirement(self, req_id: str) -> Requirement | None:
        for r in self.requirements:
            if r.id == req_id:
                return r
        return None


@dataclass(frozen=True, slots=True)
class ProofOfUse:
    """The payment rule: which events, how many, within how many days of the first."""

    kinds: tuple[str, ...]
    min_events: int
    within_days: int
    document_types: tuple[str, ...] = ()

    def describe(self) -> str:
        types = f" (document types {', '.join(self.document_types)})" if self.document_types else ""
        return (f"{self.min_events} data-received event(s) of kind {' or '.join(self.kinds)}{types} "
                f"within {self.within_days} days of the first")


@dataclass(frozen=True, slots=True)
class Funding:
    """The funding schedule the payment agency applies for a wave."""

    currency: str
    window_start: dt.date
    window_end: dt.date
    cap_per_software: int
    prices: dict[str, dict[str, int]]
    proof_of_use_default: ProofOfUse
    proof_of_use_by_category: dict[str, ProofOfUse]

    def proof_of_use(self, category: str) -> ProofOfUse:
        return self.proof_of_use_by_category.get(category, self.proof_of_use_default)

    def price(self, category: str, site_size: str) -> int | None:
        return self.prices.get(category, {}).get(site_size)


@dataclass(frozen=True, slots=True)
class WaveCategory:
    """A category of a wave: pinned referential versions and the requirements that apply."""

    code: str
    referentials: dict[str, str]
    selection: Literal["applicable"] | tuple[str, ...]
    exclude: dict[str, str]
    promote: frozenset[str]


@dataclass(frozen=True, slots=True)
class Wave:
    """A labelling wave (vague)."""

    id: str
    title: str
    pack: str
    description: str
    previous: str | None
    open: dt.date
    submission_deadline: dt.date
    label_valid_until: dt.date
    categories: dict[str, WaveCategory]
    funding: Funding
    path: Path
    non_waivable: frozenset[str] = frozenset()
    non_waivable_kinds: frozenset[str] = frozenset()

    def uncovered(self, pack: Pack, category: str, kind: str) -> str | None:
        """Why ``category``'s label in this wave does not cover data of ``kind`` (None: it does): none of the
        referentials the pack says cover that kind is pinned for the category."""
        wc = self.categories.get(category)
        if wc is None:
            return f"wave {self.id} has no category {category} (categories: {', '.join(self.categories)})"
        covering = pack.covered_by.get(kind, ())
        if not covering:
            return f"pack {pack.id} has no data kind {kind!r} (kinds: {', '.join(pack.data_kinds)})"
        if set(covering) & set(wc.referentials):
            return None
        return (f"{kind} data is covered by the label of {' or '.join(covering)}, which wave {self.id} does not pin "
                f"for category {category} (it pins {', '.join(wc.referentials)})")

    def waiver_refusal(self, requirement: Requirement) -> str | None:
        """Why the agency may not waive ``requirement`` in this wave, or None if it may."""
        if requirement.id in self.non_waivable:
            return f"{self.id} marks {requirement.id} non-waivable"
        if requirement.kind in self.non_waivable_kinds:
            return f"{self.id} marks every {requirement.kind} requirement non-waivable"
        return None


@dataclass(frozen=True, slots=True)
class AppliedRequirement:
    """A requirement as it applies in a wave and category (level after promotion)."""

    requirement: Requirement
    level: Level

    @property
    def id(self) -> str:
        return self.requirement.id

    @property
    def promoted(self) -> bool:
        return self.level != self.requirement.level


@dataclass(frozen=True, slots=True)
class Specification:
    """The consolidated specification of one wave for one category."""

    wave: Wave
    category: str
    category_title: str
    referentials: tuple[Referential, ...]
    requirements: tuple[AppliedRequirement, ...]
    excluded: dict[str, str] = field(default_factory=dict)

    def by_referential(self) -> list[tuple[Referential, list[AppliedRequirement]]]:
        out = []
        for ref in self.referentials:
            reqs = [a for a in self.requirements if a.requirement.referential == ref.id]
            out.append((ref, reqs))
        return out

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for ref in self.referentials for a in ref.actions)
