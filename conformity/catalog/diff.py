"""What changes between two waves, per category: the vendor's to-do list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformity.catalog.catalog import Catalog
from conformity.catalog.models import AppliedRequirement, Specification
from conformity.errors import InputError

COMPARED = ("title", "statement", "level", "kind", "proof", "references", "parameters")


@dataclass(frozen=True, slots=True)
class FieldChange:
    name: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class RequirementChange:
    before: AppliedRequirement
    after: AppliedRequirement
    fields: tuple[FieldChange, ...]

    @property
    def id(self) -> str:
        return self.after.id


@dataclass(slots=True)
class CategoryDiff:
    """Differences for one category; ``status`` says whether it exists in both waves."""

    category: str
    status: str  # "both" | "added" | "removed"
    pinned: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    added: list[AppliedRequirement] = field(default_factory=list)
    removed: list[AppliedRequirement] = field(default_factory=list)
    changed: list[RequirementChange] = field(default_factory=list)
    funding: list[FieldChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.pinned or self.added or self.removed or self.changed or self.funding) and self.status == "both"


@dataclass(slots=True)
class WaveDiff:
    wave_a: str
    wave_b: str
    categories: list[CategoryDiff]

    def to_json(self) -> dict[str, Any]:
        def applied(a: AppliedRequirement) -> dict[str, Any]:
            return {"id": a.id, "referential": a.requirement.referential, "version": a.requirement.version,
                    "level": a.level, "title": a.requirement.title}
        return {
            "format": "usine.wave-diff/1", "from": self.wave_a, "to": self.wave_b,
            "categories": [{
                "category": c.category, "status": c.status,
                "pinned": [{"referential": r, "from": a, "to": b} for r, a, b in c.pinned],
                "added": [applied(a) for a in c.added], "removed": [applied(a) for a in c.removed],
                "changed": [{"id": ch.id, "fields": [{"field": f.name, "from": f.before, "to": f.after} for f in ch.fields]}
                            for ch in c.changed],
                "funding": [{"field": f.name, "from": f.before, "to": f.after} for f in c.funding],
            } for c in self.categories],
        }


def _fields(a: AppliedRequirement) -> dict[str, str]:
    r = a.requirement
    return {"title": r.title, "statement": r.statement, "level": a.level, "kind": r.kind, "proof": r.proof.describe(),
            "references": "; ".join(r.references),
            "parameters": json.dumps(r.parameters, ensure_ascii=False, sort_keys=True) if r.parameters else ""}


def _funding(sa: Specification, sb: Specification) -> list[FieldChange]:
    fa, fb, cat = sa.wave.funding, sb.wave.funding, sa.category
    out = []
    sizes = sorted(set(fa.prices.get(cat, {})) | set(fb.prices.get(cat, {})))
    for size in sizes:
        pa, pb = fa.price(cat, size), fb.price(cat, size)
        if pa != pb:
            out.append(FieldChange(f"price {size}", f"{pa} €" if pa is not None else "-", f"{pb} €" if pb is not None else "-"))
    wa, wb = f"{fa.window_start} to {fa.window_end}", f"{fb.window_start} to {fb.window_end}"
    if wa != wb:
        out.append(FieldChange("window", wa, wb))
    if fa.cap_per_software != fb.cap_per_software:
        out.append(FieldChange("cap per software", f"{fa.cap_per_software} €", f"{fb.cap_per_software} €"))
    ra, rb = fa.proof_of_use(cat).describe(), fb.proof_of_use(cat).describe()
    if ra != rb:
        out.append(FieldChange("proof of use", ra, rb))
    return out


def diff_specs(sa: Specification, sb: Specification) -> CategoryDiff:
    cd = CategoryDiff(sa.category, "both")
    pa = sa.wave.categories[sa.category].referentials
    pb = sb.wave.categories[sb.category].referentials
    for rid in sorted(set(pa) | set(pb)):
        if pa.get(rid) != pb.get(rid):
            cd.pinned.append((rid, pa.get(rid), pb.get(rid)))
    ia = {a.id: a for a in sa.requirements}
    ib = {a.id: a for a in sb.requirements}
    cd.added = [ib[i] for i in ib if i not in ia]
    cd.removed = [ia[i] for i in ia if i not in ib]
    for i in ib:
        if i in ia:
            fa, fb = _fields(ia[i]), _fields(ib[i])
            changes = tuple(FieldChange(n, fa[n], fb[n]) for n in COMPARED if fa[n] != fb[n])
            if changes:
                cd.changed.append(RequirementChange(ia[i], ib[i], changes))
    cd.funding = _funding(sa, sb)
    return cd


def diff_waves(catalog: Catalog, wave_a: str, wave_b: str, category: str | None = None) -> WaveDiff:
    """Added, removed and changed requirements from ``wave_a`` to ``wave_b``, per category."""
    a, b = catalog.wave(wave_a), catalog.wave(wave_b)
    if a.pack != b.pack:
        raise InputError(f"{wave_a} is a wave of the {a.pack} pack and {wave_b} of the {b.pack} pack: a diff "
                         "compares two waves of one sector", where="wave")
    if category is not None:
        if category not in a.categories and category not in b.categories:
            raise InputError(f"category {category!r} is in neither {wave_a} nor {wave_b}", where="category")
        cats = [category]
    else:
        cats = list(dict.fromkeys([*a.categories, *b.categories]))
    out = []
    for cat in cats:
        if cat in a.categories and cat in b.categories:
            out.append(diff_specs(catalog.specification(wave_a, cat), catalog.specification(wave_b, cat)))
        elif cat in b.categories:
            spec = catalog.specification(wave_b, cat)
            out.append(CategoryDiff(cat, "added", added=list(spec.requirements),
                                    pinned=[(r, None, v) for r, v in b.categories[cat].referentials.items()]))
        else:
            spec = catalog.specification(wave_a, cat)
            out.append(CategoryDiff(cat, "removed", removed=list(spec.requirements),
                                    pinned=[(r, v, None) for r, v in a.categories[cat].referentials.items()]))
    return WaveDiff(wave_a, wave_b, out)
