"""``usine agency …``: verify evidence bundles, decide (label, pending, refusal), reviews, wave progress, the registry."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conformity.cli.agency_options import key_option, registry_option, same_person_option, trust_option
from conformity.cli.agency_registry_cmds import registry
from conformity.cli.agency_review_cmds import evidence_cmd, review_cmd
from conformity.cli.agency_serve_cmds import account, serve_cmd, webhook
from conformity.cli.common import get_catalog, output_file, output_folder
from conformity.cli.label_cmds import label
from conformity.cli.params import LedgerPath
from conformity.errors import InputError
from conformity.files import write_atomic

if TYPE_CHECKING:
    from conformity.catalog import Catalog

SUBMISSION_ID = re.compile(r"^(sub_[0-9a-f]{20}|lbl_[A-Za-z0-9]{8,64})$")  # a submission, or a label issued for it


def _catalog(ctx: click.Context) -> Catalog:
    return get_catalog(ctx, with_checks=True)  # the agency re-runs every check


@click.group("agency")
def agency() -> None:
    """The labelling agency: verify bundles, re-derive verdicts, review evidence, issue or refuse labels, keep the registry."""


@agency.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@trust_option
@click.pass_context
def verify_cmd(ctx: click.Context, bundle: Path, trust: tuple[Path, ...]) -> None:
    """Verify BUNDLE and re-derive every verdict from its signed traces.

    Exit 0 verified, 1 refused (every reason listed), 2 unreadable input.
    """
    from conformity.agency.submit import trusted_sandbox_keys
    from conformity.agency.verify import verify_bundle

    catalog = _catalog(ctx)
    v = verify_bundle(bundle, catalog, trusted_sandbox_keys(trust))
    m = v.manifest or {}
    who = (f"{m['software']['name']} {m['software']['version']} ({m['vendor']['id']}), {m['wave']} {m['category']}"
           if m else "(no readable manifest)")
    if v.ok:
        must = [r for r in v.rows if r.must_automated]
        failed = [r.id for r in must if not r.settled]
        click.echo(f"VERIFIED: {bundle.name} sha256 {v.bundle_sha256}: {who}")
        click.echo(f"  run {v.identity.run_id} (submission {v.identity.submission_id}); {len(v.rows)} requirement "
                   f"verdicts re-derived from {len(v.verdicts)} checks; {len(must) - len(failed)}/{len(must)} "
                   "automated MUST passed" + (f"; not passed: {', '.join(failed)}" if failed else ""))
        click.echo(f"  {len(v.evidence)} evidence file(s) bound to the run for "
                   f"{len({e.requirement for e in v.evidence})} document/manual requirement(s), for review")
        ctx.exit(0)
    click.echo(f"REFUSED: {bundle.name} sha256 {v.bundle_sha256}: {who}: {len(v.reasons)} reason(s)")
    for p in v.reasons:
        click.echo(f"  - {p}")
    ctx.exit(1)


@agency.command("decide")
@click.argument("target", metavar="BUNDLE|SUBMISSION")
@trust_option
@key_option
@registry_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/agency"),
              show_default=True, callback=output_folder,
              help="Folder for label-<id>.json, refusal-|pending-|revoked-<submission>.json/.txt, or "
                   "already-labelled-<submission>.json (a run of a version that holds a label: nothing issued).")
@click.option("--waive", "waive", multiple=True, metavar="REQ-ID",
              help="Waive this applicable automated MUST the run did not pass (repeatable): an explicit decision, "
                   "published in the signed label and the registry's history; refused for what the wave marks "
                   "non-waivable, and after a final decision.")
@click.option("--reason", "waive_reason", default="", help="Why the requirements given with --waive are waived.")
@click.option("--decider", default="", help="Who decides the waiver (recorded with it).")
@same_person_option
@click.pass_context
def decide_cmd(ctx: click.Context, target: str, trust: tuple[Path, ...], key_path: Path | None,
               registry_path: Path | str | None, out_dir: Path, waive: tuple[str, ...], waive_reason: str,
               decider: str, same_person: dt.timedelta) -> None:
    """Decide on a run: a signed label only when every applicable MUST is passed or accepted on review.

    TARGET is a bundle (verified first) or the id of a recorded submission or of a label issued for it
    (decided again from the registry, e.g. once its reviews are recorded). A run is known by what was tested, never by the zip's
    bytes: the same run in any packaging gets its recorded decision back and nothing is issued.

    Exit 0 labelled (now or before), 1 refused, 2 unreadable input, 3 revoked (the version's label in
    this wave was revoked and not reinstated: nothing issued), 4 pending (reviews awaited).
    """
    from conformity.agency.submit import (
        WaiverRequest,
        decide_bundle,
        decide_submission,
        default_agency_key,
        default_registry,
        trusted_sandbox_keys,
        usable_agency_key,
    )

    registry_path, key_path = registry_path or default_registry(), usable_agency_key(key_path or default_agency_key())
    catalog = _catalog(ctx)
    if waive_reason and not waive:
        raise click.UsageError("--reason goes with --waive REQ-ID")
    request = WaiverRequest(tuple(dict.fromkeys(waive)), waive_reason, decider)
    bundle = Path(target)
    if not bundle.exists() and not SUBMISSION_ID.match(target):
        raise InputError(f"{target}: no such bundle file, nor the id of a submission (sub_ and 20 hexadecimal "
                         "digits) or of a label (lbl_…)", where="TARGET")
    if bundle.is_file() or not SUBMISSION_ID.match(target):
        outcome = decide_bundle(bundle, catalog, trusted_sandbox_keys(trust), registry_path, key_path, out_dir,
                                waive=request, same_person=same_person)
    else:
        outcome = decide_submission(target, catalog, registry_path, key_path, out_dir, waive=request,
                                    same_person=same_person)
    doc, d = outcome.decision, outcome.decision.decision
    if d.outcome == "labelled":
        again = (f" (already decided on {doc.already})" if doc.already else
                 " (this version already holds a label: none issued for this run)" if doc.labelled_by else "")
        who = doc.who  # the run's identity (JSON)
        sw, run = who["software"], who.get("run") or {}
        click.echo(f"LABELLED{again}: {sw['name']} {sw['version']} ({who['vendor']['id']}), {who['wave']} "
                   f"{who['category']}: label {doc.label_id}"
                   + (f", valid through {outcome.label['expires']}" if outcome.label else ""))
        if run.get("id"):
            click.echo(f"  run {run['id']} (submission {d.submission}); {len(d.reviewed)} requirement(s) "
                       "reviewed" + (f"; SHOULD not reviewed (not blocking): {', '.join(d.not_reviewed)}"
                                     if d.not_reviewed else ""))
        for w in d.waived:
            click.echo(f"  WAIVED by the agency: {w.requirement} ({w.verdict}) by {w.decider}: {w.reason}")
        for warning in d.warnings:
            click.echo(f"  note: {warning}")
    else:
        click.echo(doc.text().rstrip("\n"))
    for f in outcome.files:
        click.echo(f"wrote {f}", err=True)
    ctx.exit(outcome.exit_code)


@agency.command("progress")
@click.option("--wave", "wave_id", required=True, help="The wave, e.g. 2026-W1.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Also write a static HTML page.")
@click.option("--ledger", type=LedgerPath(),
              help="The payment ledger (SQLite) for the funnel labelled → installed → data flowing → paid.")
@registry_option
@click.pass_context
def progress_cmd(ctx: click.Context, wave_id: str, html_path: Path | None, ledger: Path | None,
                 registry_path: Path | str | None) -> None:
    """Progress of a wave per category: vendors, requirement pass rates, and the payment funnel."""
    from rich.console import Console

    from conformity.agency.progress import wave_progress
    from conformity.agency.progress_view import print_progress, progress_html
    from conformity.agency.registry import Registry
    from conformity.agency.submit import default_registry, registry_exists

    catalog = _catalog(ctx)
    path = registry_path or default_registry()
    if not registry_exists(path):
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=path)
    with Registry(path) as registry:
        p = wave_progress(catalog, registry, wave_id, ledger)
    print_progress(p, Console(width=120))
    if html_path is not None:
        write_atomic(html_path, progress_html(p))
        click.echo(f"wrote {html_path}", err=True)


agency.add_command(registry)
agency.add_command(review_cmd)
agency.add_command(evidence_cmd)
agency.add_command(serve_cmd)
agency.add_command(account)
agency.add_command(webhook)
__all__ = ["agency", "label"]
