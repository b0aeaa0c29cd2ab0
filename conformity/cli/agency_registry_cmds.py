"""``usine agency registry …``: list, show, revoke, reinstate, export (open data for the public and the payment agency)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conformity.cli.agency_options import key_option, registry_option
from conformity.cli.common import output_folder
from conformity.errors import InputError

if TYPE_CHECKING:
    from conformity.agency.registry import Registry

def _open(registry_path: Path | str | None) -> Registry:
    from conformity.agency.registry import Registry
    from conformity.agency.submit import default_registry, registry_exists

    path = registry_path or default_registry()
    if not registry_exists(path):
        raise InputError("no registry here (decide a bundle first, or give --registry)", file=path)
    return Registry(path)


@click.group("registry")
def registry() -> None:
    """The registry of submissions and labels."""


@registry.command("list")
@click.option("--wave", "wave_id", help="Only this wave.")
@click.option("--state", type=click.Choice(["pending", "labelled", "refused", "revoked", "expired"]),
              help="Only submissions in this state today (revoked and expired are computed).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@registry_option
def list_cmd(wave_id: str | None, state: str | None, as_json: bool, registry_path: Path | str | None) -> None:
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
                                   "version": s.version, "run_id": s.run_id, "label_id": s.label_id,
                                   "received": s.received}))
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
def show_cmd(ident: str, registry_path: Path | str | None) -> None:
    """One submission (by its id or a label's id): the run, decision, evidence, reviews, labels, history."""
    now = dt.datetime.now(dt.UTC)
    with _open(registry_path) as reg:
        s = reg.get(ident)
        labels = reg.labels_of(s.id)
        history = reg.history(s.id, *[lab[0] for lab in labels])
        reviews = reg.reviews(s.id)
        evidence = reg.evidence(s.id)
        waivers = reg.waivers(s.id)
        block = reg.blocking_revocation(s.software_id, s.version, s.wave)
        # a pending run's pairs as they count now (a decided one's were judged when it was decided)
        persons = reg.persons(now) if s.state == "pending" else None
    d = s.decision
    click.echo(f"submission {s.id}: {s.effective_state(now)}")
    click.echo(f"  {s.software_name} {s.version} ({s.software_id}) by {s.vendor_name} ({s.vendor_id})")
    click.echo(f"  wave {s.wave}, category {s.category}; run {s.run_id or '(recorded before runs were identities)'}")
    click.echo(f"  first received {s.received} in bundle {s.bundle_name} sha256 {s.bundle_sha256}; decided {s.decided}")
    for label_id, issued, revoked, reinstated in labels:
        click.echo(f"  label {label_id} issued {issued}" + (f"; revoked {revoked}" if revoked else "")
                   + (f"; version reinstated {reinstated}" if reinstated else ""))
    if s.label_id and not s.revoked:
        click.echo(f"  current label {s.label_id}, valid through {s.expires}")
    if block is not None:
        click.echo(f"  version {s.version} blocked in {s.wave}: label {block.label_id} revoked {block.revoked}: "
                   f"{block.reason} (reinstate to lift)")
    for f in d.failed:
        click.echo(f"  failed {f.id} [{f.level}] {f.title}: {f.verdict}")
    for p in d.reasons:
        click.echo(f"  reason: {p.message}")
    for m in d.missing_evidence:
        click.echo(f"  no evidence for {m.id} [{m.level}, document]: refused")
    reviewable = [r for r in s.rows() if r.method in ("document", "manual")]
    if reviewable:
        current = {r.requirement: r for r in reviews}
        files: dict[str, list[Any]] = {}
        for e in evidence:
            files.setdefault(e.requirement, []).append(e)
        click.echo(f"  document/manual requirements ({len(reviewable)}):")
        for r in reviewable:
            latest = current.get(r.id)
            status = (f"{latest.verdict} by {latest.reviewer} at {latest.at}: {latest.reason}" if latest else
                      "not reviewed" + (" (SHOULD: does not block)" if r.level != "MUST" else
                                        " (labelled before reviews were required)" if s.state == "labelled" else ""))
            click.echo(f"    {r.id} [{r.level}, {r.method}] {status}")
            for e in files.get(r.id, []):
                click.echo(f"      evidence {e.file} ({e.media_type}, {e.bytes} bytes, sha256 {e.sha256})")
    if reviews:
        click.echo(f"  reviews, in the order recorded ({len(reviews)}; the latest of each requirement counts):")
        from conformity.agency.decision import confirmations
        from conformity.agency.persons import NOBODY_PAIRED

        latest_of = {rv.requirement: rv for rv in reviews}
        confirmed = {c.id: latest_of[req].reviewer for req, c in confirmations(reviews, persons or NOBODY_PAIRED).items()}
        for rv in reviews:
            click.echo(f"    #{rv.id} {rv.at} {rv.requirement} {rv.verdict} by {rv.reviewer}: {rv.reason}"
                       + ("" if rv.id == latest_of[rv.requirement].id else
                          f" (first review, confirmed by {confirmed[rv.id]})" if rv.id in confirmed
                          else " (superseded)"))
    for w in waivers.values():
        click.echo(f"  WAIVED by the agency: {w.requirement} ({w.verdict}) by {w.decider} on {w.at}: {w.reason}")
    click.echo("  history:")
    for at, subject, state, detail in history:
        click.echo(f"    {at} {subject} {state}" + (f" — {detail}" if detail else ""))


@registry.command("revoke")
@click.argument("label_id")
@click.option("--reason", required=True, help="Why the label is revoked (published in revocations.json).")
@registry_option
def revoke_cmd(label_id: str, reason: str, registry_path: Path | str | None) -> None:
    """Revoke a label now: its software version gets no new label in its wave until reinstated.

    Every label in force for the same software version and wave is revoked with it (reason and date
    kept and published). Exit 0 revoked, 2 unknown label or already revoked.
    """
    with _open(registry_path) as reg:
        done = reg.revoke(label_id, reason)  # dated holding the write lock
        s = reg.get(label_id)
    click.echo(f"revoked {', '.join(done)} ({s.software_name} {s.version}, {s.wave}) on {s.revoked}: {reason}")
    click.echo(f"version {s.version} of {s.software_id} gets no label in {s.wave} until: "
               f"usine agency registry reinstate {label_id} --reason TEXT", err=True)
    click.echo("publish it: usine agency registry export --out DIR", err=True)


@registry.command("reinstate")
@click.argument("label_id")
@click.option("--reason", required=True, help="Why the version may be labelled again (recorded in the history).")
@registry_option
def reinstate_cmd(label_id: str, reason: str, registry_path: Path | str | None) -> None:
    """Reinstate the software version of a revoked label in its wave: it may be labelled again.

    The revoked label stays revoked (the published revocation list never shrinks); deciding a run of
    the version then issues a new label, valid from its issue. Exit 0 reinstated, 2 unknown label, not
    revoked, or already reinstated.
    """
    with _open(registry_path) as reg:
        s = reg.reinstate(label_id, reason)
    click.echo(f"reinstated {s.software_name} {s.version} ({s.software_id}) in {s.wave}: label {label_id} stays "
               f"revoked; a decision may issue a new label: {reason}")
    click.echo(f"issue it: usine agency decide {s.id}", err=True)


@registry.command("export")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), callback=output_folder,
              help="Folder for labelled.csv/.json, labels/ (label files + revocations.json), agency-key.pub.pem.")
@key_option
@click.option("--retired-key", "retired_keys", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A former agency public key (PEM, repeatable): the labels it signed before the key was rotated "
                   "out are exported as they are; any other foreign signer is refused.")
@registry_option
def export_cmd(out_dir: Path, key_path: Path | None, retired_keys: tuple[Path, ...],
               registry_path: Path | str | None) -> None:
    """Open data of the labelled software per wave and category, the label files and the signed revocation list."""
    from conformity.agency.export import export_registry
    from conformity.agency.submit import agency_signing_key, default_agency_key
    from conformity.signing import VerifyKey

    path = key_path or default_agency_key()
    if not path.exists() and not path.is_symlink():  # a mistyped path would sign the lists with a new key nobody trusts
        raise InputError("no agency key there: the export signs the revocation list and the open data with the key "
                         "that signed the labels (a decision creates it); give --key the agency's key",
                         file=path, where="--key")
    key = agency_signing_key(path)
    retired = sorted({VerifyKey.from_file(p).kid for p in retired_keys} - {key.kid})
    with _open(registry_path) as reg:
        done = export_registry(reg, key, out_dir, retired=retired)
    trusted = " ".join(f"--agency-key AGENCY_PUB_{i}" for i in range(1, len(retired) + 1))
    click.echo(f"exported {done.labels} label(s), {done.revoked} revoked, to {out_dir} (payment agency: usine pay run "
               f"--labels {out_dir / 'labels'} --agency-key AGENCY_PUB{' ' + trusted if trusted else ''}, the "
               f"agency's public key{'s' if retired else ''} obtained from the agency itself, not the copy shipped "
               f"beside the labels: key id {key.kid}"
               + "".join(f", and {k} (retired, AGENCY_PUB_{i})" for i, k in enumerate(retired, 1)) + ")")
