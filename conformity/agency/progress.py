"""Wave progress: per category, vendors submitted / labelled / refused / revoked; requirement pass rates;
and, from a payment ledger, the funnel labelled → installed → data flowing → paid.

A vendor counts once per category, at its best status there: labelled (holds a valid label) > revoked
(its labels were revoked) > expired > pending (a run awaits reviews) > refused (only refusals so far).
Pass rates count every recorded submission's re-derived verdict of each automated requirement. In the funnel, "installed" is an
installation the ledger knows (data received at least once under a valid label), "data flowing" one
whose proof of regular use is met, "paid" one paid; each is counted in software and installations.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from conformity.agency.registry import Registry, iso
from conformity.catalog import Catalog
from conformity.errors import InputError

RANK = {"labelled": 0, "revoked": 1, "expired": 2, "pending": 3, "refused": 4, "verified": 5, "submitted": 6}


@dataclass(slots=True)
class CategoryProgress:
    category: str
    title: str
    submissions: int = 0
    vendors: Counter[str] = field(default_factory=Counter)  # best status → vendors
    software: set[str] = field(default_factory=set)
    software_labelled: set[str] = field(default_factory=set)

    @property
    def submitted(self) -> int:
        return sum(self.vendors.values())


@dataclass(frozen=True, slots=True)
class RequirementRate:
    requirement: str
    level: str
    evaluated: int
    passed: int
    failed: int
    errored: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.evaluated if self.evaluated else 0.0


@dataclass(slots=True)
class FunnelRow:
    category: str
    labelled: int = 0
    installed: tuple[int, int] = (0, 0)  # (software, installations)
    flowing: tuple[int, int] = (0, 0)
    paid: tuple[int, int] = (0, 0)
    amount_cents: int = 0
    currency: str = ""


@dataclass(slots=True)
class WaveProgress:
    wave: str
    title: str
    generated: str
    categories: list[CategoryProgress]
    requirements: list[RequirementRate]
    funnel: list[FunnelRow] | None = None
    ledger: str | None = None


def wave_progress(catalog: Catalog, registry: Registry, wave_id: str, ledger: Path | None = None,
                  now: dt.datetime | None = None) -> WaveProgress:
    """The progress of a wave from the registry (and a payment ledger, when given)."""
    now = now or dt.datetime.now(dt.UTC)
    wave = catalog.wave(wave_id)
    titles = catalog.packs[wave.pack].categories
    cats = {c: CategoryProgress(c, titles.get(c, c)) for c in wave.categories}
    best: dict[tuple[str, str], str] = {}
    labelled_software: dict[str, set[str]] = defaultdict(set)
    for s in registry.submissions(wave_id, now=now):
        cp = cats.setdefault(s.category, CategoryProgress(s.category, titles.get(s.category, s.category)))
        cp.submissions += 1
        cp.software.add(s.software_id)
        state = s.effective_state(now)
        key = (s.category, s.vendor_id)
        if key not in best or RANK[state] < RANK[best[key]]:
            best[key] = state
        if state == "labelled":
            labelled_software[s.category].add(s.software_id)
            cp.software_labelled.add(s.software_id)
    for (category, _vendor), state in best.items():
        cats[category].vendors[state] += 1
    out = WaveProgress(wave_id, wave.title, iso(now), list(cats.values()), requirement_rates(registry, wave_id))
    if ledger is not None:
        out.funnel = funnel(ledger, wave_id, list(cats), labelled_software)
        out.ledger = str(ledger)
    return out


def requirement_rates(registry: Registry, wave_id: str) -> list[RequirementRate]:
    """Automated requirements by how much they hurt: most failures (and errors) first."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    levels: dict[str, str] = {}
    for _cat, _sub, req, level, method, verdict in registry.results(wave_id):
        if method != "automated":
            continue
        counts[req][verdict] += 1
        levels[req] = "MUST" if "MUST" in (level, levels.get(req)) else level
    rates = [RequirementRate(r, levels[r], sum(c.values()), c["pass"] + c["not-applicable"], c["fail"],
                             c["error"] + c["not-exercised"])
             for r, c in counts.items()]
    return sorted(rates, key=lambda r: (-(r.failed + r.errored), r.pass_rate, r.requirement))


def check_ledger(path: Path) -> None:
    """InputError now for a payment ledger :func:`funnel` could not read (missing, not SQLite, another program's
    tables): what a service checks before it serves, read-only."""
    funnel(path, "", [], {})


def funnel(path: Path, wave_id: str, categories: list[str], labelled: dict[str, set[str]]) -> list[FunnelRow]:
    """Per category: labelled software, then installed / data flowing / paid (software, installations)."""
    if not path.is_file():
        raise InputError("payment ledger not found", file=path)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open the payment ledger: {exc}", file=path) from exc
    rows = {c: FunnelRow(c, len(labelled.get(c, ()))) for c in categories}
    try:
        for cat, sw, n, sw_flow, n_flow in db.execute(
                "SELECT category, count(DISTINCT software_id), count(*), "
                "count(DISTINCT CASE WHEN status != 'pending' THEN software_id END), sum(status != 'pending') "
                "FROM installations WHERE wave = ? GROUP BY category", (wave_id,)):
            row = rows.setdefault(cat, FunnelRow(cat, len(labelled.get(cat, ()))))
            row.installed, row.flowing = (sw, n), (sw_flow, n_flow or 0)
        for cat, sw, n, cents, currency in db.execute(
                "SELECT category, count(DISTINCT software_id), count(*), sum(amount_cents), max(currency) "
                "FROM payments WHERE wave = ? GROUP BY category", (wave_id,)):
            row = rows.setdefault(cat, FunnelRow(cat, len(labelled.get(cat, ()))))
            row.paid, row.amount_cents, row.currency = (sw, n), cents or 0, currency or ""
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a usine payment ledger: {exc}", file=path) from exc
    finally:
        db.close()
    return list(rows.values())
