"""Cross-file rules of the catalog: what a JSON Schema alone cannot say."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from conformity.catalog.catalog import version_key
from conformity.catalog.schema import meta_problem
from conformity.errors import InputError, Problem

if TYPE_CHECKING:
    from conformity.catalog.catalog import Catalog
    from conformity.catalog.models import Pack, Referential, Requirement, Wave, WaveCategory


@dataclass(frozen=True, slots=True)
class DeclaredCheck:
    """What a registered check says of itself: its pack, the requirement ids it verifies, the scenarios it needs that
    no pack registered."""

    pack: str
    verifies: tuple[str, ...]
    unknown_scenarios: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Registered:
    """What the installed packs registered: their ids, and their checks by id (:func:`conformity.checks.packs.registered`)."""

    packs: frozenset[str]
    checks: Mapping[str, DeclaredCheck]


@lru_cache(maxsize=4096)
def _schema_problem(canonical: str) -> tuple[str, str] | None:
    """Why an action's schema (canonical JSON) is not a valid JSON Schema (where, message), or None. Once per distinct
    schema: half of the catalog's action schemas repeat another's, and the meta-schema check is most of a load."""
    exc = meta_problem(json.loads(canonical))
    return None if exc is None else (".".join(str(x) for x in exc.absolute_path), exc.message)


def _referential_problems(ref: Referential, catalog: Catalog, broken: AbstractSet[tuple[str, str]]) -> list[Problem]:
    f = str(ref.path)
    out: list[Problem] = []
    pack = catalog.packs.get(ref.pack)
    counts = Counter(r.id for r in ref.requirements)
    for i, req in enumerate(ref.requirements):
        where = f"requirements[{i}]"
        if counts[req.id] > 1:
            out.append(Problem(f, f"{where}.id", f"duplicate requirement id {req.id} ({counts[req.id]} times in this file)"))
        if not req.id.startswith(ref.id + "-"):
            out.append(Problem(f, f"{where}.id", f"requirement id {req.id} must start with the referential id {ref.id}-"))
        if pack is not None:
            for j, cat in enumerate(req.categories):
                if cat not in pack.categories:
                    out.append(Problem(f, f"{where}.categories[{j}]", f"unknown category {cat!r} "
                                                                      f"(pack {pack.id}: {', '.join(pack.categories)})"))
    actions = Counter(a.name for a in ref.actions)
    for i, a in enumerate(ref.actions):
        if actions[a.name] > 1:
            out.append(Problem(f, f"actions[{i}].name", f"duplicate action name {a.name}"))
        for part in ("input", "output"):
            problem = _schema_problem(json.dumps(getattr(a, part), sort_keys=True))
            if problem is not None:
                where, message = problem
                out.append(Problem(f, f"actions[{i}].{part}" + (f".{where}" if where else ""),
                                   f"not a valid JSON Schema: {message}"))
    if (ref.id, ref.supersedes) not in broken:  # a version that failed to load is reported already
        out.extend(_supersedes_problems(catalog, ref))
    if pack is None:
        out.append(Problem(f, "", f"referential is in pack folder {ref.pack!r}, which has no valid pack.toml"))
    return out


def _pack_problems(pack: Pack, catalog: Catalog) -> list[Problem]:
    """Each referential a data kind names as covering it is one of the pack's own."""
    own = {rid for (rid, _), ref in catalog.referentials.items() if ref.pack == pack.id}
    return [Problem(str(pack.path), f"data_kinds.{kind}.referentials[{i}]",
                    f"referential {rid} is not one of pack {pack.id}'s (its referentials: {', '.join(sorted(own)) or 'none'})")
            for kind, covering in pack.covered_by.items() for i, rid in enumerate(covering) if rid not in own]


def _supersedes_problems(catalog: Catalog, ref: Referential) -> list[Problem]:
    """A version supersedes an older, existing version of the same referential (so a chain can never loop)."""
    f, older = str(ref.path), ref.supersedes
    if not older:
        return []
    if older == ref.version:
        return [Problem(f, "supersedes", f"{ref.id}@{ref.version} supersedes itself")]
    if (ref.id, older) not in catalog.referentials:
        return [Problem(f, "supersedes", f"supersedes {ref.id}@{older}, which does not exist")]
    if version_key(older) >= version_key(ref.version):
        return [Problem(f, "supersedes", f"{ref.id}@{ref.version} supersedes {older}, which is not an older version "
                                          "(a supersedes chain must go back in versions, never loop)")]
    return []


def _selection_problem(req_id: str, code: str, pinned: dict[str, Requirement], wc: WaveCategory) -> str | None:
    """Why a wave cannot name this requirement for this category (None: it can)."""
    if req_id not in pinned:
        versions = ", ".join(f"{k}@{v}" for k, v in wc.referentials.items())
        return f"requirement {req_id} is not in the pinned versions ({versions})"
    if code not in pinned[req_id].categories:
        return (f"requirement {req_id} does not apply to category {code} "
                f"(it applies to {', '.join(pinned[req_id].categories)})")
    return None


def _idle_pins(catalog: Catalog, wave: Wave, code: str, wc: WaveCategory) -> list[Problem]:
    """A referential the category pins must give its specification at least one requirement: a pin is what makes the
    label cover a data kind (``Wave.uncovered``), so a pin that requires nothing would let the wave pay for data the
    label never tested (and a category of such pins only would be labelled on nothing)."""
    out = []
    listed = None if wc.selection == "applicable" else set(wc.selection)
    for rid, version in wc.referentials.items():
        ref = catalog.referentials.get((rid, version))
        if ref is None:
            continue
        given = [r.id for r in ref.requirements if code in r.categories and r.id not in wc.exclude
                 and (listed is None or r.id in listed)]
        if not given:
            out.append(Problem(str(wave.path), f"categories.{code}.referentials.{rid}",
                               f"pins {rid}@{version}, which requires nothing of category {code} here (none of its "
                               "requirements applies to it, or each is excluded or left out of the list): unpin it, "
                               "or name what it requires"))
    return out


def _wave_problems(wave: Wave, catalog: Catalog, broken: AbstractSet[tuple[str, str]]) -> list[Problem]:
    f = str(wave.path)
    out: list[Problem] = []
    pack = catalog.packs.get(wave.pack)
    if pack is None:
        return [Problem(f, "pack", f"unknown pack {wave.pack!r} (known: {', '.join(catalog.packs) or 'none'})")]
    if wave.previous and wave.previous not in catalog.waves:
        out.append(Problem(f, "previous", f"previous wave {wave.previous!r} does not exist"))
    elif wave.previous and catalog.waves[wave.previous].pack != wave.pack:
        out.append(Problem(f, "previous", f"previous wave {wave.previous} is of pack "
                                          f"{catalog.waves[wave.previous].pack}, not {wave.pack}: a wave raises the bar "
                                          "of its own pack's previous wave"))
    elif wave.previous and catalog.waves[wave.previous].open >= wave.open:
        out.append(Problem(f, "previous", f"previous wave {wave.previous} does not open before this one"))
    if not (wave.open <= wave.submission_deadline <= wave.label_valid_until):
        out.append(Problem(f, "dates", "dates must satisfy open <= submission_deadline <= label_valid_until"))
    fu = wave.funding
    if fu.window_start > fu.window_end:
        out.append(Problem(f, "funding.window", "funding window starts after it ends"))
    pinned_ids = {r.id for wc in wave.categories.values() for rid, version in wc.referentials.items()
                  if (ref := catalog.referentials.get((rid, version))) is not None for r in ref.requirements}
    for i, rid in enumerate(sorted(wave.non_waivable)):
        if rid not in pinned_ids and not any(key in broken for wc in wave.categories.values()
                                             for key in wc.referentials.items()):
            out.append(Problem(f, f"waivers.non_waivable[{i}]", f"requirement {rid} is in none of the versions the "
                                                                "wave pins"))
    for code, wc in wave.categories.items():
        base = f"categories.{code}"
        if code not in pack.categories:
            out.append(Problem(f, base, f"unknown category {code!r} (pack {pack.id}: {', '.join(pack.categories)})"))
            continue
        pinned = {}
        if any(key in broken for key in wc.referentials.items()):
            continue  # a pinned file failed to load and was reported; do not cascade
        for rid, version in wc.referentials.items():
            ref = catalog.referentials.get((rid, version))
            if ref is None:
                have = ", ".join(catalog.versions(rid)) or "none"
                out.append(Problem(f, f"{base}.referentials.{rid}",
                                   f"pins {rid}@{version}, which does not exist (versions of {rid}: {have})"))
                continue
            if ref.published > wave.open:
                out.append(Problem(f, f"{base}.referentials.{rid}",
                                   f"{rid}@{version} is published {ref.published}, after the wave opens ({wave.open})"))
            if ref.status == "draft":
                out.append(Problem(f, f"{base}.referentials.{rid}", f"{rid}@{version} is a draft; a wave pins published versions"))
            if ref.pack != wave.pack:
                out.append(Problem(f, f"{base}.referentials.{rid}", f"{rid} belongs to pack {ref.pack}, not {wave.pack}"))
            pinned.update({r.id: r for r in ref.requirements})
        if len(pinned) == 0:
            continue

        named = [(rid, f"{base}.requirements[{i}]") for i, rid in enumerate(wc.selection)] \
            if wc.selection != "applicable" else []
        named += [(rid, f"{base}.exclude[{i}].id") for i, rid in enumerate(wc.exclude)]
        promoted = [(rid, f"{base}.promote[{i}]") for i, rid in enumerate(sorted(wc.promote))]
        resolved = set()
        for rid, where in named + promoted:
            problem = _selection_problem(rid, code, pinned, wc)
            if problem:
                out.append(Problem(f, where, problem))
            else:
                resolved.add(where)
        if wc.selection != "applicable":  # what an explicit list leaves out, nothing promotes or excludes
            listed = set(wc.selection)
            verbs = {f"{base}.promote": "promotes", f"{base}.exclude": "excludes"}
            for rid, where in named + promoted:
                verb = verbs.get(where.split("[", 1)[0])
                if verb and where in resolved and rid not in listed:
                    out.append(Problem(f, where, f"{verb} {rid}, which this category's list leaves out "
                                                 f"({base}.requirements): add it to the list, or drop this entry"))
        for rid, where in promoted:
            if where in resolved and pinned[rid].level != "SHOULD":
                out.append(Problem(f, where, f"requirement {rid} is already MUST; only SHOULD can be promoted"))
            if rid in wc.exclude:
                out.append(Problem(f, where, f"requirement {rid} is both promoted and excluded"))
        out.extend(_idle_pins(catalog, wave, code, wc))
        for i, rid in enumerate(wc.exclude):
            req = pinned.get(rid)
            if rid in wave.non_waivable:
                out.append(Problem(f, f"{base}.exclude[{i}].id", f"requirement {rid} is excluded, but this wave "
                                                                 "declares it non-waivable (waivers.non_waivable)"))
            elif req is not None and req.level == "MUST" and req.kind in wave.non_waivable_kinds:
                out.append(Problem(f, f"{base}.exclude[{i}].id", f"requirement {rid} is a {req.kind} MUST, a kind "
                                                                 "this wave declares non-waivable "
                                                                 "(waivers.non_waivable_kinds): it cannot be excluded"))
        prices = fu.prices.get(code)
        if prices is None:
            out.append(Problem(f, f"funding.prices.{code}", f"no prices for category {code}"))
        else:
            for size in pack.site_sizes:
                if size not in prices:
                    out.append(Problem(f, f"funding.prices.{code}.{size}", f"no price for site size {size}"))
    for code, prices in fu.prices.items():
        if code not in wave.categories:
            out.append(Problem(f, f"funding.prices.{code}", f"prices for {code!r}, which is not a category of this wave"))
            continue
        for size in prices:
            if size not in pack.site_sizes:
                out.append(Problem(f, f"funding.prices.{code}.{size}", f"unknown site size {size!r} "
                                                                       f"(pack {pack.id}: {', '.join(pack.site_sizes)})"))
    rules = [("funding.proof_of_use.default", fu.proof_of_use_default)]
    for code, rule in fu.proof_of_use_by_category.items():
        if code not in wave.categories:
            out.append(Problem(f, f"funding.proof_of_use.by_category.{code}", f"{code!r} is not a category of this wave"))
        rules.append((f"funding.proof_of_use.by_category.{code}", rule))
    falling_back = [code for code in wave.categories if code not in fu.proof_of_use_by_category]
    for where, rule in rules:
        counted_for = falling_back if where.endswith(".default") else [where.rsplit(".", 1)[1]]
        for i, kind in enumerate(rule.kinds):
            for code in counted_for:
                why = wave.uncovered(pack, code, kind) if kind in pack.data_kinds and code in wave.categories else None
                if why:
                    how = "falls back on this rule, which counts" if where.endswith(".default") else "counts"
                    out.append(Problem(f, f"{where}.kinds[{i}]", f"category {code} {how} {kind} data, which its label "
                                                                 f"does not cover: {why}; an installation would be "
                                                                 "paid for data it was never tested on"))
        if rule.document_types and not pack.typed_kinds & set(rule.kinds):
            out.append(Problem(f, f"{where}.document_types", "document types are set but no counted kind carries a "
                                                             f"type (typed kinds of pack {pack.id}: "
                                                             f"{', '.join(sorted(pack.typed_kinds)) or 'none'})"))
        for i, kind in enumerate(rule.kinds):
            if kind not in pack.data_kinds:
                out.append(Problem(f, f"{where}.kinds[{i}]", f"unknown data kind {kind!r} "
                                                             f"(pack {pack.id}: {', '.join(pack.data_kinds)})"))
    return out


def _lowered_problems(wave: Wave, catalog: Catalog) -> list[Problem]:
    """A wave raises the bar of its previous one: what was MUST there, still in this wave's pinned versions for the
    category, is MUST here too (not excluded, left out of the list, or back to SHOULD)."""
    out: list[Problem] = []
    previous = catalog.waves[wave.previous] if wave.previous else None
    if previous is None:
        return out
    for code, wc in wave.categories.items():
        if code not in previous.categories:
            continue
        try:
            before, now = catalog.specification(previous.id, code), catalog.specification(wave.id, code)
        except (KeyError, InputError):  # a pinned version or a named requirement is missing: reported already
            continue
        levels = {a.requirement.id: a.level for a in now.requirements}
        pinned = {r.id for ref in now.referentials for r in ref.requirements if code in r.categories}
        for a in before.requirements:
            rid = a.requirement.id
            if a.level == "MUST" and rid in pinned and levels.get(rid) != "MUST":
                how = "excluded" if rid in wc.exclude else ("SHOULD" if rid in levels else "left out")
                out.append(Problem(str(wave.path), f"categories.{code}", f"requirement {rid} was MUST in the previous "
                                                                         f"wave {previous.id} and is {how} here: a "
                                                                         "wave raises the bar, never lowers it"))
    return out


def _declared_problems(catalog: Catalog, registered: Registered) -> list[Problem]:
    """What the registered checks say of themselves agrees with the catalog: each requirement id a check declares
    exists in its own pack and names the check in its proof (and back), each scenario it needs is registered, and
    every pack of the catalog is installed."""
    out: list[Problem] = []
    owner = {r.id: (ref.pack, ref) for ref in catalog.referentials.values() for r in ref.requirements}
    naming: dict[str, set[str]] = {}
    for ref in catalog.referentials.values():
        for i, req in enumerate(ref.requirements):
            for j, cid in enumerate(req.proof.checks):
                naming.setdefault(cid, set()).add(req.id)
                declared = registered.checks.get(cid)
                if declared is not None and req.id not in declared.verifies:
                    out.append(Problem(str(ref.path), f"requirements[{i}].proof.checks[{j}]",
                                       f"check {cid!r} is named by {req.id} but declares it verifies "
                                       f"{', '.join(declared.verifies)}, not {req.id}"))
    for cid, declared in sorted(registered.checks.items()):
        where = f"check {cid} (pack {declared.pack or 'unknown'})"
        out.extend(Problem(where, "scenario", f"runs scenario {name!r}, which no installed pack registers")
                   for name in declared.unknown_scenarios)
        if declared.pack not in catalog.packs:
            continue  # a pack whose data this catalog does not hold: nothing to compare with
        for rid in declared.verifies:
            if rid not in owner:
                out.append(Problem(where, "verifies", f"declares it verifies {rid}, which no referential of the "
                                                      "catalog has"))
            elif owner[rid][0] != declared.pack:
                out.append(Problem(where, "verifies", f"declares it verifies {rid}, a requirement of pack "
                                                      f"{owner[rid][0]} ({owner[rid][1].path})"))
            elif rid not in naming.get(cid, ()):
                out.append(Problem(where, "verifies", f"declares it verifies {rid}, but no version of {rid} names it "
                                                      "in its proof"))
    for pid, pack in sorted(catalog.packs.items()):
        if pid not in registered.packs:
            out.append(Problem(str(pack.path), "id", f"pack {pid} has data in the catalog but no installed plug-in "
                                                     f"(installed: {', '.join(sorted(registered.packs)) or 'none'}): "
                                                     "its checks, scenarios and services are missing"))
    return out


def cross_check(catalog: Catalog, registered_checks: Registered | AbstractSet[str] | None = None, *,
                broken: AbstractSet[tuple[str, str]] = frozenset()) -> list[Problem]:
    """Every cross-file problem of a catalog; ``broken`` = (id, version) of files already reported.

    ``registered_checks``: what the installed packs registered (:class:`Registered`: checked both ways), or only the
    check ids that exist (each check a requirement names must be one of them)."""
    out: list[Problem] = []
    for pack in catalog.packs.values():
        out.extend(_pack_problems(pack, catalog))
    for ref in catalog.referentials.values():
        out.extend(_referential_problems(ref, catalog, broken))
    for wave in catalog.waves.values():
        out.extend(_wave_problems(wave, catalog, broken))
    if not out:
        for wave in catalog.waves.values():
            out.extend(_lowered_problems(wave, catalog))
    ids = registered_checks.checks if isinstance(registered_checks, Registered) else registered_checks
    if ids:
        for ref in catalog.referentials.values():
            for i, req in enumerate(ref.requirements):
                for j, check in enumerate(req.proof.checks):
                    if check not in ids:
                        out.append(Problem(str(ref.path), f"requirements[{i}].proof.checks[{j}]",
                                           f"check {check!r} named by {req.id} is not registered"))
    if isinstance(registered_checks, Registered):
        out.extend(_declared_problems(catalog, registered_checks))
    return out
