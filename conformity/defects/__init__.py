"""Defects that prove the judge discriminates: one-defect variants of a compliant run, each declaring exactly
which automated MUST and SHOULD requirements it breaks.

A judge is worth how rarely it is wrong, in both directions: a defect that no check sees, and a refusal
that blames requirements the software meets. Two kinds of defects measure it:

* **trace mutations** (registered here by each pack, in its ``conformity.packs.<pack>.defects``): a change to a
  copy of the reference vendor's recorded traces, as the trace of a software with that one defect reads
  (a forged ID token accepted, a hash that does not match, a secret in a log);
* **defective vendors** (``examples/vendors/<pack>/defective/<name>/``): the reference software with one defect
  switched on, run for real; ``expected.toml`` beside its ``vendor.toml`` lists what the run must fail.

Each declaration is exact (the failed MUST and SHOULD requirements are those listed, no more, no less; tests
prove it: a SHOULD fails no run, but the report shows it failed, so its check must fail exactly when it should), and
``usine coverage --strict`` reports the automated MUST and SHOULD requirements no defect breaks alone. A defective
vendor's ``expected.toml`` lists both levels in one list, as a mutation's ``breaks`` does (see
:class:`VendorExpectation`). Two
requirements of different referentials that state one rule on the same evidence (``same_rule``) cannot
be broken one without the other; the pack says which and why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity.catalog.loader import read_toml
from conformity.checks.evaluate import EvalContext, evaluate_checks
from conformity.checks.model import Verdict
from conformity.checks.registry import CHECKS, Registry
from conformity.checks.trace import TraceViews
from conformity.defects.edit import TraceEdit
from conformity.errors import InputError, Problem

__all__ = ["MUTATIONS", "Mutation", "TraceEdit", "VendorExpectation", "apply", "mutation", "proves_alone",
           "same_rule", "SAME_RULE", "vendor_expectations", "rejudge"]

#: what a mutation does to one scenario's trace; returns the seq of the exchange or note a finding must quote
Change = Callable[[TraceEdit], "float | None"]


@dataclass(frozen=True, slots=True)
class Mutation:
    """A realistic defect written as a change to a recorded trace, and what it breaks."""

    id: str
    scenario: str
    change: Change
    breaks: tuple[str, ...]
    #: the waves whose reference run it applies to (the requirements it breaks are pinned there)
    waves: tuple[str, ...]
    #: the category of the reference run it changes
    category: str
    #: what the quoting finding's ``where`` contains (empty: any finding quoting the changed exchange)
    where: str = ""
    description: str = ""


MUTATIONS: Registry[Mutation] = Registry("mutation")


def mutation(mid: str, *, scenario: str, breaks: Iterable[str], waves: Iterable[str], category: str,
             where: str = "") -> Callable[[Change], Change]:
    """Register ``change`` as mutation ``mid`` of ``scenario``'s trace (of the reference run of ``category`` in
    ``waves``), breaking exactly ``breaks``."""
    broken = tuple(breaks)
    if not broken:
        raise ValueError(f"mutation {mid!r} must declare the requirements it breaks")

    def register(change: Change) -> Change:
        doc = (change.__doc__ or "").strip().splitlines()
        MUTATIONS.register(mid, Mutation(mid, scenario, change, broken, tuple(waves), category, where,
                                         doc[0] if doc else ""))
        return change

    return register


#: pairs of requirements that state one rule on the same evidence → why
SAME_RULE: dict[frozenset[str], str] = {}


def same_rule(a: str, b: str, why: str) -> None:
    """Declare that requirements ``a`` and ``b`` state one rule on the same evidence (no defect breaks one alone)."""
    SAME_RULE[frozenset((a, b))] = why


def proves_alone(breaks: Iterable[str], requirement: str) -> bool:
    """Whether a defect breaking ``breaks`` breaks ``requirement`` alone (besides requirements stating the same rule)."""
    broken = set(breaks)
    return requirement in broken and all(r == requirement or frozenset((r, requirement)) in SAME_RULE for r in broken)


def apply(m: Mutation, traces: Mapping[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], float | None]:
    """The run's traces with ``m`` applied to a copy of its scenario's trace, and the seq its finding must quote."""
    if m.scenario not in traces:
        raise KeyError(f"mutation {m.id}: the run has no trace of scenario {m.scenario!r}")
    changed = copy.deepcopy(traces[m.scenario])
    seq = m.change(TraceEdit(changed, {s: t for s, t in traces.items() if s != m.scenario}))
    return {**traces, m.scenario: changed}, seq


def rejudge(check_ids: Iterable[str], traces: Mapping[str, dict[str, Any]], ctx: EvalContext,
            before: Mapping[str, Verdict], changed: str, shared: TraceViews | None = None) -> dict[str, Verdict]:
    """Every check's verdict once scenario ``changed`` differs: the checks reading it again, the others as before.

    ``shared``: the views of the run's traces, kept from one mutation to the next (the unchanged traces' views, and
    what the checks derive from them, are made once; the changed trace's are dropped after)."""
    ids = list(check_ids)
    again = [c for c in ids if changed in CHECKS.get(c).scenarios or CHECKS.get(c).reads_all]
    try:
        return {**{c: before[c] for c in ids}, **evaluate_checks(again, traces, ctx, shared)}
    finally:
        if shared is not None:
            shared.forget(traces[changed])


# ---------------------------------------------------------------------------------------------
# defective vendors


@dataclass(frozen=True, slots=True)
class VendorExpectation:
    """What one run of a shipped defective vendor must conclude: exactly the ``failed`` automated MUST and SHOULD
    requirements fail, and exactly those ``not_exercised`` (their situation never happened because of the defect:
    e.g. no document was accepted, so none could be replaced); none is in error.

    Both lists name MUSTs and SHOULDs alike; which is which is the level the run's wave × category gives each
    (a wave may promote a SHOULD to a MUST), as for a mutation's ``breaks``. A SHOULD's failure blocks no label, but
    the report shows it to the vendor: a failed SHOULD the vendor does not list is a check firing where it should
    not, or a defect that is not the one its README says."""

    vendor: str
    manifest: Path
    wave: str
    category: str
    failed: tuple[str, ...]
    not_exercised: tuple[str, ...] = ()


EXPECTED = "expected.toml"


def vendor_expectations(folder: Path) -> list[VendorExpectation]:
    """The expectations of every defective vendor under ``folder`` (``<name>/expected.toml``, ``[[runs]]``)."""
    out: list[VendorExpectation] = []
    problems: list[Problem] = []
    for path in sorted(folder.glob(f"*/{EXPECTED}")):
        data = read_toml(path, problems)
        if data is None:
            continue
        runs = data.get("runs")
        if not isinstance(runs, list) or not runs:
            problems.append(Problem(str(path), "runs", "expected at least one [[runs]] table"))
            continue
        for i, run in enumerate(runs):
            try:
                out.append(VendorExpectation(path.parent.name, path.parent / "vendor.toml", str(run["wave"]),
                                             str(run["category"]), tuple(str(r) for r in run["failed"]),
                                             tuple(str(r) for r in run.get("not_exercised", ()))))
            except (KeyError, TypeError, AttributeError) as exc:
                problems.append(Problem(str(path), f"runs[{i}]", f"needs wave, category and failed, "
                                                                  f"optionally not_exercised ({exc})"))
    if problems:
        raise InputError(problems)
    return out
