"""Payment agency commands: ``usine pay run`` (events + labels → ledger, orders, refusals) and ``usine pay status``."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import click

from conformity.cli.common import get_catalog
from conformity.errors import InputError
from conformity.labels import parse_time
from conformity.paths import state_dir
from conformity.payments import RunOptions, run_payments
from conformity.payments.payees import load_payees, load_payer
from conformity.signing import KeyRing

ledger_option = click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
                             envvar="USINE_LEDGER",
                             help="SQLite ledger (default: $USINE_HOME/payments/ledger.sqlite3).")


def default_ledger() -> Path:
    return state_dir() / "payments" / "ledger.sqlite3"


def _event_files(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """Files as given; a folder stands for its ``*.jsonl`` files, sorted."""
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p])
    return tuple(out)


def _as_of(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        return parse_time(text)
    except ValueError as exc:
        raise InputError(f"--as-of must be an RFC 3339 time with a zone, e.g. 2027-06-30T23:59:59Z ({exc})",
                         where="--as-of") from exc


@click.group()
def pay() -> None:
    """The payment agency: pay each eligible installation once, on proof of use, and explain every refusal."""


@pay.command("run")
@click.option("--wave", "wave_id", required=True, help="The wave to pay (its prices, window, cap and rule).")
@click.option("--labels", "labels_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of label files (*.json, signed) and optionally revocations.json.")
@click.option("-e", "--events", "events", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Data-received events file (JSON lines), or a folder of *.jsonl; repeatable.")
@ledger_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/payments"),
              show_default=True, help="Folder for orders, totals, proofs, refusals and the summary.")
@click.option("--agency-key", "agency_keys", multiple=True, envvar="USINE_AGENCY_PUBKEY",
              type=click.Path(exists=True, path_type=Path),
              help="The labelling agency's public key (PEM) or a folder of them; repeatable.")
@click.option("--payer", "payer_file", required=True, envvar="USINE_PAYER",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The payment agency's account (TOML, format usine.payer/1).")
@click.option("--payees", "payees_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Vendors' bank details (TOML, format usine.payees/1); orders without are held.")
@click.option("--as-of", "as_of", help="Events later than this time are future-dated (default: now).")
@click.option("--commit-every", type=click.IntRange(1), default=50_000, show_default=True,
              help="Events per ledger transaction.")
@click.pass_context
def pay_run(ctx: click.Context, wave_id: str, labels_dir: Path, events: tuple[Path, ...], ledger_path: Path | None,
            out_dir: Path, agency_keys: tuple[Path, ...], payer_file: Path, payees_file: Path | None,
            as_of: str | None, commit_every: int) -> None:
    """Pay every installation of WAVE whose proof of use is met, once; write orders and the refusal report."""
    if not agency_keys:
        raise InputError("no agency key: give --agency-key PEM (or set USINE_AGENCY_PUBKEY)", where="--agency-key")
    catalog = get_catalog(ctx)
    options = RunOptions(
        wave=wave_id, labels=labels_dir, events=_event_files(events), ledger=ledger_path or default_ledger(),
        out=out_dir, keys=KeyRing.from_paths(agency_keys), payer=load_payer(payer_file),
        payees=load_payees(payees_file), as_of=_as_of(as_of), commit_every=commit_every)
    stats = run_payments(catalog, options, progress=lambda msg: click.echo(msg, err=True))
    refused = stats.refused
    click.echo(f"wave {wave_id}: {stats.lines} lines read, {stats.counted} events counted, {refused} refused, "
               f"{stats.after_payment} after payment, {stats.other_wave} of other waves")
    click.echo(f"paid {stats.paid} installation(s), {stats.paid_cents / 100:.2f}; "
               f"{stats.cap_reached} over the cap; {stats.held} order(s) held for missing bank details")
    for msg_id in stats.batches:
        click.echo(f"batch {msg_id}")
    click.echo(f"outputs in {out_dir} (ledger {options.ledger})")


@pay.command("status")
@ledger_option
def pay_status(ledger_path: Path | None) -> None:
    """Payments and installations in a ledger, per wave (read-only)."""
    path = ledger_path or default_ledger()
    if not path.is_file():
        raise InputError("no ledger here", file=path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT wave, status, count(*) FROM installations GROUP BY wave, status "
                          "ORDER BY wave, status").fetchall()
        money = db.execute("SELECT wave, currency, count(*), sum(amount_cents), sum(batch IS NULL) FROM payments "
                           "GROUP BY wave, currency ORDER BY wave").fetchall()
        runs = db.execute("SELECT count(*), sum(finished IS NULL) FROM runs").fetchone()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a usine payment ledger: {exc}", file=path) from exc
    finally:
        db.close()
    click.echo(f"ledger {path}: {runs[0]} run(s), {runs[1] or 0} unfinished")
    for wave, status, n in rows:
        click.echo(f"  {wave} installations {status}: {n}")
    for wave, currency, n, cents, held in money:
        click.echo(f"  {wave} payments: {n}, {cents / 100:.2f} {currency} ({held} held)")
