"""pytest plugin: ``pytest --usine-vendor vendor.toml --usine-wave W`` runs a wave's checks as test items.

One item per applicable requirement (node id ``usine-WAVE-CATEGORY::REQ-ID``), so vendors keep
``-k``, ``-x`` and ``--junitxml`` (requirement ids go into <properties>). Only the scenarios
the selected items need are run, once, when the first item runs; each item then reports its
requirement's verdict derived from the traces.

The items are one sandbox run (one attempt counted, one seed, one bundle): with pytest-xdist they are one
``xdist_group``, so ``-n N --dist loadgroup`` gives them all to one worker, the vendor's other tests spreading
over the rest; any other distribution would make one run per worker and is refused as a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the plugin loads in every pytest session: the harness only when a wave is run
    from _pytest._code.code import TerminalRepr

    from conformity.harness.report import RequirementRow

STASH_RESULT = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("usine", "usine conformity run")
    group.addoption("--usine-vendor", metavar="TOML", help="Vendor manifest: run the wave's checks as test items.")
    group.addoption("--usine-wave", metavar="WAVE", help="Wave id (required with --usine-vendor).")
    group.addoption("--usine-category", metavar="C", help="Category (default: the manifest's).")
    group.addoption("--usine-only", action="append", default=[], metavar="SELECTOR",
                    help="Only these requirements, as usine run --only: an id (REF-001), a referential (REF) "
                         "or a glob (REF-01*); repeatable or comma-separated (-k still narrows the items).")
    group.addoption("--usine-seed", type=_seed, default=None,
                    help="Seed of fixtures and generated data, 0 to 2**128 - 1 (report.json's, to reproduce a run), "
                         "as usine run --seed (default: the sandbox draws it; a run with a chosen seed cannot be "
                         "labelled).")
    group.addoption("--usine-sandbox", metavar="URL", help="A running sandbox instead of an in-process one.")
    group.addoption("--usine-sandbox-token", metavar="TOKEN",
                    help="Your harness token for --usine-sandbox (default: $USINE_SANDBOX_TOKEN, as usine run).")
    group.addoption("--usine-sandbox-ca", metavar="PEM",
                    help="CA certificate of --usine-sandbox when it serves HTTPS with a private CA (as usine run "
                         "--sandbox-ca: a sandbox started with --test-pki DIR has it as DIR/ca.pem).")
    group.addoption("--usine-out", metavar="DIR", help="Also write report.json, junit-like report.html and bundle.zip here.")


def _seed(text: str) -> int:
    """A seed as ``usine run --seed`` takes it: an integer from 0 to 2**128 - 1 (any seed the sandbox draws)."""
    from conformity.runs import read_seed

    try:
        return read_seed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class UsineFailure(Exception):
    """A requirement's verdict is fail, error or not-exercised; carries the findings (the cause first)."""


class RequirementItem(pytest.Item):
    def __init__(self, *, row: RequirementRow, **kw: Any):
        super().__init__(**kw)
        self.row = row
        self.user_properties.extend([("requirement", row.id), ("level", row.level),
                                     ("proof", row.method), ("checks", ",".join(row.checks))])
        self.add_marker(pytest.mark.usine)
        self.add_marker(pytest.mark.xdist_group(XDIST_GROUP))  # one run: every item on one xdist worker
        self.keywords[row.id] = True
        self.keywords[row.level] = True

    def runtest(self) -> None:
        result = _run_once(self.session)
        row: RequirementRow | None = result["rows"].get(self.row.id)
        if row is None:
            raise UsineFailure(f"{self.row.id}: no verdict (the run did not cover it)")
        if row.verdict == "evidence-required":
            pytest.skip(f"{row.method} proof: {row.evidence or ''}")
        if row.verdict == "not-applicable":
            pytest.skip("not applicable: " + "; ".join(f["message"] for f in row.findings))
        if row.verdict in ("fail", "error", "not-exercised"):
            raise UsineFailure(_describe(row))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, UsineFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.row.ref} [{self.row.level}] {self.row.title}"


def _describe(row: RequirementRow) -> str:
    lines = [f"{row.id} [{row.level}] {row.title}: {row.verdict} (checks: {', '.join(row.checks)})"]
    for f in row.findings:
        where = f" [exchange {f['exchange']}]" if "exchange" in f else ""
        lines.append(f"  - {f['message']}{where}")
        if "expected" in f or "got" in f:
            lines.append(f"    expected: {json.dumps(f.get('expected'), ensure_ascii=False)}")
            lines.append(f"    got:      {json.dumps(f.get('got'), ensure_ascii=False)}")
    return "\n".join(lines)


class WaveCollector(pytest.Collector):
    def __init__(self, *, plan: Any, **kw: Any):
        super().__init__(**kw)
        self.plan = plan

    def collect(self) -> list[pytest.Item]:
        from conformity.harness.report import requirement_rows

        rows = requirement_rows(self.plan, _pending_verdicts(self.plan))
        return [RequirementItem.from_parent(self, name=r.id, row=r) for r in rows]


def _pending_verdicts(plan: Any) -> dict[str, Any]:
    from conformity.checks.model import Verdict

    return {c: Verdict("error") for c in plan.checks}


def _plan(config: pytest.Config) -> Any:
    from conformity.catalog import load_catalog
    from conformity.checks.packs import registered
    from conformity.harness.plan import make_plan
    from conformity.harness.vendor import load_vendor

    vendor = load_vendor(config.getoption("usine_vendor"))
    catalog = load_catalog(registered_checks=registered())
    plan = make_plan(catalog, config.getoption("usine_wave"), config.getoption("usine_category") or vendor.category,
                     tuple(config.getoption("usine_only") or ()))
    return vendor, catalog, plan


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the requirement items before -k / -m deselection sees the list."""
    if not config.getoption("usine_vendor"):
        return
    if not config.getoption("usine_wave"):
        raise pytest.UsageError("--usine-vendor needs --usine-wave")
    from conformity.errors import InputError, UsineError
    from conformity.harness.evidence import collect, vendor_sources
    from conformity.harness.vendor import driver_problem

    try:
        vendor, catalog, plan = _plan(config)
        collect(catalog, plan, vendor_sources(vendor.evidence))  # the manifest's evidence checked now, not per item
        unstartable = driver_problem(vendor)  # as usine run: not every item in error for a typo
        if unstartable is not None:
            raise InputError([unstartable])
    except UsineError as exc:  # a bad manifest, wave, --usine-only or evidence: said as pytest says usage errors
        raise pytest.UsageError(f"usine: {exc}") from None
    config.stash[STASH_RESULT] = {"vendor": vendor, "catalog": catalog, "plan": plan}
    collector = WaveCollector.from_parent(session, name=f"usine-{plan.wave}-{plan.category}", plan=plan)
    items.extend(collector.collect())


XDIST_GROUP = "usine"
SHARED_DISTRIBUTIONS = ("no", "loadgroup")  # xdist's --dist modes that keep one xdist_group on one worker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "usine: a requirement of a usine wave, run by the usine plugin")
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist's, known here with --strict-markers "
                                       "and no xdist installed")
    _refuse_split_runs(config)
    if config.getoption("usine_vendor") and getattr(config.option, "loadgroup", False):  # an xdist worker's
        config.pluginmanager.register(_OneWorker(), "usine-xdist-group")


def _refuse_split_runs(config: pytest.Config) -> None:
    """Refuse an xdist distribution that would spread the requirement items over workers.

    Each worker would make its own sandbox run of the items it got: N attempts counted for the software, N
    seeds, none covering the wave, and --usine-out written by whichever finished last. Checked in the
    controller (a worker's options say ``dist = "no"``) before any worker starts.
    """
    if not config.getoption("usine_vendor") or hasattr(config, "workerinput"):
        return
    dist = getattr(config.option, "dist", "no")
    if dist not in SHARED_DISTRIBUTIONS:
        raise pytest.UsageError(
            f"usine: --dist {dist} would spread the wave's requirement items over pytest-xdist workers, each "
            "making its own sandbox run (one attempt counted per worker, no run covering the wave); the items "
            "are one run: add --dist loadgroup (they then go to one worker, your other tests to the others) "
            "or run without -n")


class _OneWorker:
    """On an xdist worker under --dist loadgroup: the requirement items' ids end with ``@usine``, their group.

    That suffix is how xdist's scheduler keeps a group on one worker. xdist 3.8 writes it as ``item._nodeid``,
    which pytest 9.2 ignores (it keeps a structured ``item._id``: pytest-dev/pytest-xdist#1386); without it each
    item would be a group of its own and each worker would make its own run. Where neither way takes, the run
    is refused rather than split.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        suffix = f"@{XDIST_GROUP}"
        for item in items:
            if not isinstance(item, RequirementItem) or item.nodeid.endswith(suffix):
                continue
            try:
                from _pytest.nodeid import NodeId  # only the pytest versions whose ids are structured have it

                item._id = NodeId.parse(item.nodeid + suffix)
            except ImportError:
                item._nodeid = item.nodeid + suffix  # type: ignore[attr-defined]
            if not item.nodeid.endswith(suffix):
                raise pytest.UsageError(
                    "usine: this pytest and pytest-xdist cannot keep the requirement items on one worker "
                    "(--dist loadgroup did not group them), so each worker would make its own sandbox run: "
                    "run the usine items without -n")


def _run_once(session: pytest.Session) -> dict[str, Any]:
    """Run the scenarios of the selected requirements (once per process) and keep their verdicts."""
    state = session.config.stash[STASH_RESULT]
    if "rows" in state:
        return state
    if "error" in state:  # the run could not be made: each item says why, once, without trying again
        raise UsineFailure(state["error"])
    from conformity.errors import UsineError

    try:
        return _run(session, state)
    except UsineError as exc:
        state["error"] = f"usine: the run could not be made: {exc}"
        raise UsineFailure(state["error"]) from None


def _run(session: pytest.Session, state: dict[str, Any]) -> dict[str, Any]:
    from conformity.harness.evidence import collect, vendor_sources
    from conformity.harness.outputs import run_to_end, write_outputs
    from conformity.harness.plan import make_plan
    from conformity.harness.report import rows_of
    from conformity.harness.runner import Runner
    from conformity.harness.sandbox_access import connect, start_local

    selected = tuple(i.row.id for i in session.items if isinstance(i, RequirementItem))
    base = state["plan"]
    plan = make_plan(state["catalog"], base.wave, base.category, selected)
    attached, _notes = collect(state["catalog"], plan, vendor_sources(state["vendor"].evidence))
    url = session.config.getoption("usine_sandbox")
    token = session.config.getoption("usine_sandbox_token") or os.environ.get("USINE_SANDBOX_TOKEN", "")
    ca = session.config.getoption("usine_sandbox_ca")
    access = connect(url, token, Path(ca) if ca else None) if url else start_local()
    try:
        result = run_to_end(Runner(plan, state["vendor"], session.config.getoption("usine_seed"), access, attached))
    finally:
        access.close()
    report = result.report
    state["rows"] = {r.id: r for r in rows_of(report)}
    out = session.config.getoption("usine_out")
    if out:
        write_outputs(Path(out), result)
    return state
