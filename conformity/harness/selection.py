"""What ``--only`` selects among a wave × category's requirements: ids, referential ids and globs.

``REF-001`` (a requirement), ``REF`` (every applicable requirement of a pinned referential),
``REF-01*`` (a glob over requirement ids, ``fnmatch`` syntax); several may be given, or one
comma-separated list. Each selector must select something, and says why not: a malformed selector, a
referential the wave does not pin, a requirement excluded from the wave or not written for the category.
"""

from __future__ import annotations

import fnmatch
import re

from conformity.catalog import AppliedRequirement, Catalog, Specification
from conformity.errors import InputError, Problem

REQUIREMENT_ID = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]{3}$")
REFERENTIAL_ID = re.compile(r"^[A-Z][A-Z0-9]*$")
GLOB = re.compile(r"^[A-Z0-9*?\[\]!-]+$")
FORMS = "a requirement id (REF-001), a referential id (REF) or a glob over requirement ids (REF-01*)"


def selectors(only: tuple[str, ...] | list[str]) -> list[str]:
    """The selectors of repeated and comma-separated ``--only`` values, in order, without blanks or repeats."""
    return list(dict.fromkeys(part.strip() for value in only for part in value.split(",") if part.strip()))


def _why_not(catalog: Catalog, spec: Specification, rid: str) -> str:
    """Why a well-formed requirement id that the plan does not hold is not selectable."""
    where = f"{spec.wave.id} {spec.category}"
    if rid in spec.excluded:
        return f"{rid} is excluded from {where}: {spec.excluded[rid]}"
    prefix = rid.rsplit("-", 1)[0]
    pinned = {r.id: r for r in spec.referentials}
    if prefix in pinned:
        req = pinned[prefix].requirement(rid)
        if req is None:
            return f"{prefix} {pinned[prefix].version} (pinned by {where}) has no requirement {rid}"
        return f"{rid} does not apply to {where} (written for {', '.join(req.categories)})"
    versions = catalog.versions(prefix)
    if versions:
        return f"{rid}: referential {prefix} is not pinned by {where} (pinned: {', '.join(pinned)})"
    return f"{rid}: no referential {prefix} in the catalog (pinned by {where}: {', '.join(pinned)})"


def select(catalog: Catalog, spec: Specification, only: tuple[str, ...] | list[str]) -> list[AppliedRequirement]:
    """The applicable requirements ``only`` selects, in the specification's order (all of them when no ``--only``).

    InputError lists every selector that selects nothing, each with its reason; an ``--only`` given with nothing in
    it (``--only ""``, an unset variable in a CI script) is refused too, rather than read as "everything".
    """
    applied = list(spec.requirements)
    wanted = selectors(only)
    if not wanted:
        if only:
            raise InputError([Problem("", "--only", f"{', '.join(map(repr, only))} selects nothing: expected {FORMS}")])
        return applied
    ids = [a.id for a in applied]
    pinned = {r.id for r in spec.referentials}
    where = f"{spec.wave.id} {spec.category}"
    chosen: set[str] = set()
    problems = []
    for sel in wanted:
        if REQUIREMENT_ID.match(sel):
            found = [sel] if sel in ids else []
            why = "" if found else _why_not(catalog, spec, sel)
        elif REFERENTIAL_ID.match(sel):
            found = [i for i in ids if i.rsplit("-", 1)[0] == sel]
            why = "" if found else (
                f"referential {sel} has no requirement applicable to {where}" if sel in pinned
                else f"referential {sel} is not pinned by {where} (pinned: {', '.join(sorted(pinned))})"
                if catalog.versions(sel) else f"no referential {sel} in the catalog (pinned by {where}: "
                                              f"{', '.join(sorted(pinned))})")
        elif any(c in sel for c in "*?[") and GLOB.match(sel):
            found = fnmatch.filter(ids, sel)
            why = "" if found else f"pattern {sel!r} matches no requirement of {where}"
        else:
            hint = f" (did you mean {sel.upper()!r}?)" if sel.upper() != sel and (
                REQUIREMENT_ID.match(sel.upper()) or REFERENTIAL_ID.match(sel.upper())) else ""
            found, why = [], f"{sel!r} is malformed: expected {FORMS}{hint}"
        if why:
            problems.append(Problem("", "--only", why))
        chosen.update(found)
    if problems:
        raise InputError(problems)
    return [a for a in applied if a.id in chosen]
