"""``usine agency registry …``: list, show, revoke, export (open data for the public and the payment agency)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conformity.cli.agency_options import key_option, registry_option
from conformity.errors import InputError

if TYPE_CHECKING:
    from conformity.agency.registry import Registry

def _open(registry_path: Path | None) -> Registry:
    from conformity.agency.registry import Registry
    from conformity.agency.submit import default_registry

    path = registry_path or default_registry()
    if not path.is_file():
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=path)
    return Registry(path)


@click.group("registry")
def registry() -> None:
    """The registry of submissions and labels."""


@registry.command("list")
@click.option("--wave", "wave_id", help="Only this wave.")
@click.option("--state", type=click.Choice(["submitted", "verified", "labelled", "refused", "revoked", "expired"]),
              help="Only submissions in this state today (revoked and expired are computed).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@registry_option
def list_cmd(wave_id: str | None, state: str | None, as_json: bool, registry_path: Path | None) -> None:
    """Submissions, oldest first, with their state today."""
    from rich.console import Console
    from rich.table import Table

    now = dt.datetime.now(dt.UTC)
    with _open(registry_path) as reg:
        subs = reg.submissions(wave_id, state, now)
    if as_json:
        for s in subs:
            click.echo(json.dumps({"submission": s.id, "state": s.effective_state(now), "wave": s.wave,
                                   "category": s.category, "vendor": s.vendor_id, "software": s.software_id,
                                   "version": s.version, "label_id": s.label_id, "received": s.received}))
        return
    t = Table(title=f"{len(subs)} submission(s)", title_justify="left")
    for col in ("submission", "state", "wave", "category", "vendor", "software", "version", "label", "received"):
        t.add_column(col)
    for s in subs:
        t.add_row(s.id, s.effective_state(now), s.wave, s.category, s.vendor_id, s.software_name, s.version,
                  s.label_id or "", s.received)
    Console(width=160).print(t)


@registry.command("show")
@click.argument("ident")
@registry_option
def show_cmd(ident: str, registry_path: Path | None) -> None:
    """One submission (by its id or its label's id): decision, label, pending reviews, history."""
    now = dt.datetime.now(dt.UTC)
    with _open(registry_path) as reg:
        s = reg.get(ident)
        history = reg.history(s.id, *([s.label_id] if s.label_id else []))
        reviews = reg.reviews(s.label_id) if s.label_id else []
    d = s.decision
    click.echo(f"submission {s.id}: {s.effective_state(now)}")
    click.echo(f"  {s.software_name} {s.version} ({s.software_id}) by {s.vendor_name} ({s.vendor_id})")
    click.echo(f"  wave {s.wave}, category {s.category}; bundle {s.bundle_name} sha256 {s.bundle_sha256}")
    click.echo(f"  received {s.received}, decided {s.decided}")
    if s.label_id:
        click.echo(f"  label {s.label_id}, valid through {s.expires}"
                   + (f"; revoked {s.revoked}: {s.revoked_reason}" if s.revoked else ""))
    for f in d.get("failed", []):
        click.echo(f"  failed {f['id']} [{f['level']}] {f['title']}: {f['verdict']}")
    for _file, _where, message in d.get("reasons", []):
        click.echo(f"  reason: {message}")
    if reviews:
        click.echo(f"  reviews ({len(reviews)}):")
        for req, level, method, state, evidence in reviews:
            click.echo(f"    {req} [{level}, {method}] {state}: {evidence}")
    click.echo("  history:")
    for at, subject, state, detail in history:
        click.echo(f"    {at} {subject} {state}" + (f" — {detail}" if detail else ""))


@registry.command("revoke")
@click.argument("label_id")
@click.option("--reason", required=True, help="Why the label is revoked (published in revocations.json).")
@registry_option
def revoke_cmd(label_id: str, reason: str, registry_path: Path | None) -> None:
    """Revoke a label now (once; the reason and date are kept and published)."""
    with _open(registry_path) as reg:
        s = reg.revoke(label_id, reason, dt.datetime.now(dt.UTC))
    click.echo(f"revoked {label_id} ({s.software_name} {s.version}, {s.wave} {s.category}) on {s.revoked}: {reason}")
    click.echo("publish it: usine agency registry export --out DIR", err=True)


@registry.command("export")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for labelled.csv/.json, labels/ (label files + revocations.json), agency-key.pub.pem.")
@key_option
@registry_option
def export_cmd(out_dir: Path, key_path: Path | None, registry_path: Path | None) -> None:
    """Open data of the labelled software per wave and category, the label files and the signed revocation list."""
    from conformity.agency.export import export_registry
    from conformity.agency.submit import agency_signing_key, default_agency_key

    with _open(registry_path) as reg:
        done = export_registry(reg, agency_signing_key(key_path or default_agency_key()), out_dir)
    click.echo(f"exported {done.labels} label(s), {done.revoked} revoked, to {out_dir} "
               f"(payment agency: usine pay run --labels {out_dir / 'labels'} --agency-key {out_dir / 'agency-key.pub.pem'})")
