"""``usine agency …``: verify evidence bundles, decide (label or refusal), wave progress, the registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from conformity.cli.agency_options import key_option, registry_option, trust_option
from conformity.cli.agency_registry_cmds import registry
from conformity.cli.common import get_catalog, write_atomic
from conformity.cli.label_cmds import label
from conformity.errors import InputError

if TYPE_CHECKING:
    from conformity.catalog import Catalog


def _catalog(ctx: click.Context) -> Catalog:
    return get_catalog(ctx, with_checks=True)  # the agency re-runs every check


@click.group("agency")
def agency() -> None:
    """The labelling agency: verify bundles, re-derive verdicts, issue or refuse labels, keep the registry."""


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
        must = [r for r in v.rows if r["level"] == "MUST" and r["method"] == "automated"]
        failed = [r["id"] for r in must if r["verdict"] not in ("pass", "not-applicable")]
        click.echo(f"VERIFIED: {bundle.name} sha256 {v.bundle_sha256}: {who}")
        click.echo(f"  {len(v.rows)} requirement verdicts re-derived from {len(v.verdicts)} checks; "
                   f"{len(must) - len(failed)}/{len(must)} automated MUST passed"
                   + (f"; not passed: {', '.join(failed)}" if failed else ""))
        ctx.exit(0)
    click.echo(f"REFUSED: {bundle.name} sha256 {v.bundle_sha256}: {who}: {len(v.reasons)} reason(s)")
    for p in v.reasons:
        click.echo(f"  - {p}")
    ctx.exit(1)


@agency.command("decide")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@trust_option
@key_option
@registry_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/agency"),
              show_default=True, help="Folder for label-<id>.json or refusal-<submission>.json/.txt.")
@click.pass_context
def decide_cmd(ctx: click.Context, bundle: Path, trust: tuple[Path, ...], key_path: Path | None,
               registry_path: Path | None, out_dir: Path) -> None:
    """Verify BUNDLE, then issue a signed label (every applicable automated MUST passed) or a refusal.

    Recorded once in the registry (deciding the same bundle again gives the same answer). Exit 0 labelled,
    1 refused, 2 unreadable input.
    """
    from conformity.agency.decision import refusal_text
    from conformity.agency.submit import (
        decide_bundle,
        default_agency_key,
        default_registry,
        trusted_sandbox_keys,
    )

    catalog = _catalog(ctx)
    outcome = decide_bundle(bundle, catalog, trusted_sandbox_keys(trust), registry_path or default_registry(),
                            key_path or default_agency_key(), out_dir)
    again = "" if outcome.created or not outcome.recorded else f" (already decided on {outcome.doc.get('decided')})"
    if outcome.label is not None:
        lab = outcome.label
        click.echo(f"LABELLED{again}: {lab['software']['name']} {', '.join(lab['versions'])} ({lab['vendor']['id']}), "
                   f"{lab['wave']} {lab['category']}: label {lab['label_id']}, valid through {lab['expires']}")
        pending = outcome.doc.get("pending_reviews", [])
        if pending:
            click.echo(f"  {len(pending)} requirement(s) pending document/manual review: "
                       + ", ".join(p["id"] for p in pending))
        for warning in outcome.doc.get("warnings", []):
            click.echo(f"  note: {warning}")
    else:
        click.echo(refusal_text(outcome.doc).rstrip("\n") + again)
    for f in outcome.files:
        click.echo(f"wrote {f}", err=True)
    ctx.exit(0 if outcome.labelled else 1)


@agency.command("progress")
@click.option("--wave", "wave_id", required=True, help="The wave, e.g. 2026-W1.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a static HTML page.")
@click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path),
              help="The payment ledger (SQLite) for the funnel labelled → installed → data flowing → paid.")
@registry_option
@click.pass_context
def progress_cmd(ctx: click.Context, wave_id: str, html_path: Path | None, ledger: Path | None,
                 registry_path: Path | None) -> None:
    """Progress of a wave per category: vendors, requirement pass rates, and the payment funnel."""
    from rich.console import Console

    from conformity.agency.progress import wave_progress
    from conformity.agency.progress_view import print_progress, progress_html
    from conformity.agency.registry import Registry
    from conformity.agency.submit import default_registry

    catalog = _catalog(ctx)
    path = registry_path or default_registry()
    if not path.is_file():
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=path)
    with Registry(path) as registry:
        p = wave_progress(catalog, registry, wave_id, ledger)
    print_progress(p, Console(width=120))
    if html_path is not None:
        write_atomic(html_path, progress_html(p))
        click.echo(f"wrote {html_path}", err=True)


agency.add_command(registry)
__all__ = ["agency", "label"]
