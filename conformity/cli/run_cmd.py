"""``usine run``: run a wave's tests for a vendor's software against the sandbox."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from conformity.cli.common import get_catalog, output_folder
from conformity.cli.params import BEARER_TOKEN
from conformity.errors import InputError, Problem
from conformity.runs import MAX_RUN_SEED


@click.command("run")
@click.option("--wave", "wave_id", required=True, help="Wave id, e.g. 2027-W2.")
@click.option("--vendor", "vendor_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The vendor manifest (vendor.toml); with --plan, --category is enough.")
@click.option("--category", "-c", help="Category (default: the manifest's).")
@click.option("--only", multiple=True, metavar="SELECTOR",
              help="Only these requirements: an id (REF-001), a referential (REF) or a glob (REF-01*); "
                   "repeatable, or comma-separated.")
@click.option("--plan", "plan_only", is_flag=True,
              help="Print what would run (requirements, scenarios and their steps, driver actions) and exit.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Format of --plan.")
@click.option("--seed", default=None, type=click.IntRange(0, MAX_RUN_SEED), help="Seed of fixtures and generated data, to "
              "reproduce a run (default: the sandbox draws it, keeps it secret while the run plays and reveals it at "
              "its end, in report.json). A run with a chosen seed cannot be labelled.")
@click.option("--out", "out_dir", default="usine-out", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              callback=output_folder)
@click.option("--evidence", "evidence", multiple=True, metavar="REQ-ID=FILE",
              help="Evidence for a document or manual requirement (PDF, PNG, JSON or UTF-8 text; repeatable; "
                   "adds to the [evidence] table of vendor.toml). Hashed into the signed traces, carried in bundle.zip.")
@click.option("--sandbox", "sandbox_url", help="Use a running sandbox at this URL instead of starting one.")
@click.option("--sandbox-token", envvar="USINE_SANDBOX_TOKEN", type=BEARER_TOKEN,
              help="Your harness token for --sandbox (issued by the agency for this software).")
@click.option("--sandbox-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA certificate of --sandbox when it serves HTTPS with a private CA.")
@click.pass_context
def run(ctx: click.Context, wave_id: str, vendor_path: Path | None, category: str | None, only: tuple[str, ...],
        plan_only: bool, fmt: str, seed: int | None,
        out_dir: Path, evidence: tuple[str, ...], sandbox_url: str | None, sandbox_token: str | None,
        sandbox_ca: Path | None) -> None:
    """Plan wave × category → requirements → checks, run every scenario, write reports and bundle.zip.

    Evidence files are checked before anything runs. Exit 0 only if every applicable automated MUST
    requirement passed; 1 otherwise; 2 on bad input (vendor manifest, evidence, options) or when the run
    cannot be made (the sandbox unreachable or untrusted, a harness token of another software).
    """
    from conformity.driverkit import placeholders_left
    from conformity.files import writable_folder
    from conformity.harness.evidence import collect, parse_option, vendor_sources
    from conformity.harness.outputs import OUTPUTS, run_to_end, write_outputs
    from conformity.harness.plan import make_plan
    from conformity.harness.report import summary_of
    from conformity.harness.runner import Runner, driver_pool
    from conformity.harness.sandbox_access import connect, start_local
    from conformity.harness.vendor import driver_problem, load_vendor
    from conformity.reporting.terminal import TerminalReporter

    catalog = get_catalog(ctx, with_checks=True)
    if vendor_path is None and not (plan_only and category):
        raise click.UsageError("--vendor is required (--plan needs --vendor or --category)")
    vendor = load_vendor(vendor_path) if vendor_path is not None else None
    if category is None and vendor is not None and vendor.category not in catalog.wave(wave_id).categories:
        raise InputError(f"{vendor_path}: its category {vendor.category!r} is not a category of wave {wave_id} "
                         f"({', '.join(catalog.wave(wave_id).categories)}): fill in vendor.toml's category, or give "
                         "--category", where="category")
    left = placeholders_left(vendor.identity()) if vendor is not None else []
    if vendor is not None and left:
        click.echo(f"note: {vendor.path} still says the driver kit's placeholder for {', '.join(left)}: the run works, "
                   "but its bundle names no vendor the agency knows; fill in your own (registration_id: the one the "
                   "agency gave your software)", err=True)
    plan = make_plan(catalog, wave_id, category or vendor.category, only)  # type: ignore[union-attr]  # vendor is set whenever category is None: --vendor is required with it (checked above)
    if plan_only:
        from conformity.reporting.plan import plan_json, plan_text

        click.echo(json.dumps(plan_json(plan), indent=2, ensure_ascii=False) if fmt == "json" else plan_text(plan),
                   nl=fmt == "json")
        return
    assert vendor is not None
    unstartable = driver_problem(vendor)
    problems: list[Problem] = [unstartable] if unstartable else []
    try:
        attached, notes = collect(catalog, plan, vendor_sources(vendor.evidence) + [parse_option(e) for e in evidence])
    except InputError as exc:  # every problem of the manifest and the evidence at once
        raise InputError(problems + exc.problems) from None
    if problems:
        raise InputError(problems)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if sandbox_url and not sandbox_token:
        raise click.UsageError("--sandbox needs --sandbox-token (or USINE_SANDBOX_TOKEN)")
    made = not out_dir.exists()
    writable_folder(out_dir, OUTPUTS)  # before the run, not after it
    drivers = driver_pool(plan, vendor)  # the first driver processes start up while the sandbox does
    try:
        access = connect(sandbox_url, sandbox_token or "", sandbox_ca) if sandbox_url else start_local()
    except BaseException:
        drivers.close()
        if made:  # the --out folder this run made, still empty: a run that could not be made leaves none
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    reporter = TerminalReporter(plan)
    try:
        result = run_to_end(Runner(plan, vendor, seed, access, attached, driver_pool=drivers), reporter.handle)
    finally:
        drivers.close()  # done by the run already, unless it never started
        access.close()
    paths = write_outputs(out_dir, result)
    click.echo(f"reports: {paths['report.html']}, {paths['report.json']}, {paths['junit.xml']}", err=True)
    click.echo(f"evidence bundle: {paths['bundle.zip']}" + (f" (with {len(attached.files)} evidence file(s) for "
               f"{len({f.requirement for f in attached.files})} requirement(s))" if attached.files else ""), err=True)
    ctx.exit(0 if summary_of(result.report).passed else 1)
