"""The health pack's trace mutations all change the reference vendor's HOSPITAL runs (every category's scenarios
are among HOSPITAL's), of both health waves unless a mutation says otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from conformity import defects
from conformity.defects import Change

WAVES = ("2026-W1", "2027-W2")
CATEGORY = "HOSPITAL"


def mutation(mid: str, *, scenario: str, breaks: Iterable[str], waves: Iterable[str] = WAVES,
             category: str = CATEGORY, where: str = "") -> Callable[[Change], Change]:
    """:func:`conformity.defects.mutation` with the health pack's reference runs as defaults."""
    return defects.mutation(mid, scenario=scenario, breaks=breaks, waves=waves, category=category, where=where)
