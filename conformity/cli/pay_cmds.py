"""Payment agency commands: ``usine pay run`` (events + labels → ledger, orders, refusals) and ``usine pay status``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from conformity.cli.common import get_catalog, output_folder
from conformity.cli.params import RFC3339, LedgerPath, now_unless
from conformity.errors import InputError
from conformity.files import real_path
from conformity.infrastructure_keys import load_keys
from conformity.paths import state_dir
from conformity.payments import RunOptions, run_payments
from conformity.payments.engine import MEMORY_LIMIT, memory_bytes
from conformity.payments.lease import Lease
from conformity.payments.ledger import ledger_status, release_lease
from conformity.payments.payees import load_payees, load_payer, normal_iban
from conformity.payments.run import ENGINES
from conformity.signing import KeyRing

#: engine "spark": every core of this machine unless --spark-master says otherwise
DEFAULT_SPARK_MASTER = "local[*]"

ledger_option = click.option("--ledger", "ledger_path", type=LedgerPath(),
                             envvar="USINE_LEDGER",
                             help="SQLite ledger (default: $USINE_HOME/payments/ledger.sqlite3).")


def _memory_size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """``--memory-limit`` in bytes, or a usage error (exit 2) saying why."""
    try:
        size = memory_bytes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    physical = _physical_memory()
    if physical is not None and size > physical:
        raise click.BadParameter(f"{value!r} is more than this machine's memory ({physical // 2**20} MiB): DuckDB "
                                 "would spill past it to swap, or be killed, rather than to its scratch folder",
                                 ctx=ctx, param=param)
    return size


def _confirmations(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``--confirm-iban VENDOR=IBAN``s as vendor → IBAN (spaces removed, upper case), or a usage error (exit 2): a
    confirmation names the account checked, so that the payees file edited after the check orders to nobody."""
    confirmed: dict[str, str] = {}
    for value in values:
        vendor, sep, iban = value.partition("=")
        vendor, iban = vendor.strip(), normal_iban(iban)
        if not sep or not vendor or not iban:
            raise click.BadParameter(f"{value!r}: give the vendor and the IBAN checked with it, --confirm-iban "
                                     "VENDOR=IBAN (the account confirmed, not whichever the payees file holds when "
                                     "the run starts)", ctx=ctx, param=param)
        if confirmed.get(vendor, iban) != iban:
            raise click.BadParameter(f"vendor {vendor!r} is confirmed with two IBANs ({confirmed[vendor]}, {iban})",
                                     ctx=ctx, param=param)
        confirmed[vendor] = iban
    return confirmed


def _physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_ledger() -> Path:
    return state_dir() / "payments" / "ledger.sqlite3"


def _check_out(out: Path, events: tuple[Path, ...]) -> None:
    """--out may not be a folder given as --events, nor the folder of an events file given: the next run over it would
    read payment-proofs.jsonl as events."""
    for p in events:
        if p.is_dir() and real_path(p) == real_path(out):
            raise InputError(f"the output folder {out} is the events folder {p}: the next run over it would read "
                             "payment-proofs.jsonl as an events file; choose another --out", where="--out")
        if not p.is_dir() and real_path(p).parent == real_path(out):
            raise InputError(f"the output folder {out} is the folder of the events file {p}: payment-proofs.jsonl "
                             "would be written beside it, and a run over that folder would read it as an events file; "
                             "choose another --out", where="--out")


def _event_files(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """Files as given, each once; a folder stands for its ``*.jsonl`` and ``*.parquet`` files, sorted by name. A folder with
    none is an error (a wrong folder, or the infrastructure's files not there yet): a run that reads nothing would
    look like a run that found nothing to pay."""
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        found = sorted(f for f in [*p.glob("*.jsonl"), *p.glob("*.parquet")] if f.is_file())
        if not found:
            raise InputError("no events file (*.jsonl, *.parquet) in this folder", file=p, where="--events")
        out.extend(found)
    # a file named twice (again, through its folder or a link) is read once: read again, its every event would be
    # reported as a duplicate-event refusal, as if the infrastructure had sent it twice
    once: dict[Path, Path] = {}
    for f in out:
        once.setdefault(real_path(f), f)
    return tuple(once.values())


@click.group()
def pay() -> None:
    """The payment agency: pay each eligible installation once, on proof of use, and explain every refusal."""


RUN_EPILOG = """\b
Exit codes:
  0  the run finished (refusals are in refusals.csv / refusals.json)
  1  the engine failed (Spark out of memory, its JVM lost…): one line saying what it said and what to try;
     nothing of the file it was on is paid or written
  2  bad input: options, labels folder, keys, payees, ledger file, another revocation list under --labels,
     an events file that changed while the run read it
  3  the ledger is in use by another run (or has several names: hard links)
  4  no revocation list, or a stale one (next_update passed at the run's time), or one issued before the list
     an earlier run of this ledger relied on: nothing is read or paid
"""


@pay.command("run", epilog=RUN_EPILOG)
@click.option("--wave", "wave_id", required=True, help="The wave to pay (its prices, window, cap and rule).")
@click.option("--labels", "labels_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of label files (*.json, signed) with the revocation list LABELS/revocations.json.")
@click.option("--revocations", "revocations", type=click.Path(dir_okay=False, path_type=Path),
              help="The revocation list, when not LABELS/revocations.json (then none may be under --labels). "
                   "Required either way, and fresh: its next_update must be later than the run's time, the later "
                   "of --as-of and now (else exit 4).")
@click.option("--agency", "agency_url", envvar="USINE_AGENCY_URL",
              help="The labelling agency's service: its label feed and current revocation list are first mirrored "
                   "into --labels (then verified like any label folder).")
@click.option("--agency-ca", "agency_ca", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="CA certificate (PEM) to trust for --agency's TLS, besides the system's (an agency serving a "
                   "certificate of its own CA).")
@click.option("-e", "--events", "events", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Data-received events file, JSON lines or Parquet (usine's layout, conformity/schemas/"
                   "event-segments.md), with its signed segments FILE.segments beside it, or a folder of *.jsonl "
                   "and *.parquet; repeatable.")
@click.option("--infrastructure-keys", "infrastructure_keys", envvar="USINE_INFRASTRUCTURE_KEYS",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The infrastructure keys you trust and the event sources each vouches for (JSON, "
                   "usine.infrastructure-keys/1, as published at /.well-known/usine-infrastructure-keys). "
                   "Required: only events proven by these keys' signed segments are counted.")
@ledger_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/payments"),
              show_default=True, callback=output_folder, help="Folder for orders, totals, proofs, refusals and the summary.")
@click.option("--agency-key", "agency_keys", multiple=True, envvar="USINE_AGENCY_PUBKEY",
              type=click.Path(exists=True, path_type=Path),
              help="The labelling agency's public key (PEM) or a folder of them; repeatable. Required: the labels "
                   "and the revocation list are verified with it.")
@click.option("--payer", "payer_file", required=True, envvar="USINE_PAYER",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The payment agency's account (TOML, format usine.payer/1).")
@click.option("--payees", "payees_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Vendors' bank details (TOML, format usine.payees/1); orders without are held.")
@click.option("--confirm-iban", "confirmed_ibans", multiple=True, metavar="VENDOR=IBAN", callback=_confirmations,
              help="The agency checked (through a known channel) that IBAN, which --payees gives VENDOR, replaces the "
                   "one its last order went to: order to it (the run stops if --payees gives VENDOR another IBAN). "
                   "Without, that vendor's orders are held (bank-details-changed). Repeatable.")
@click.option("--as-of", "as_of", type=RFC3339, help="Events later than this time are future-dated (default: now).")
@click.option("--commit-every", type=click.IntRange(1), default=200_000, show_default=True,
              help="Lines per intake batch and ledger transaction, at least (a batch ends with a signed segment).")
@click.option("--engine", type=click.Choice(ENGINES), default="duckdb", show_default=True,
              help="Where intake runs: an embedded DuckDB on this machine, or Apache Spark (--spark-master; needs "
                   "the 'spark' extra and Java 17). Same payments, refusals and totals.")
@click.option("--spark-master", default=DEFAULT_SPARK_MASTER, show_default=True, metavar="URL",
              help="The Spark master URL of --engine spark (local[N], spark://host:7077, yarn, k8s://…); on a cluster "
                   "the events files, the ledger's folder and --out must be on a filesystem every executor mounts "
                   "at the same path.")
@click.option("--memory-limit", "memory_limit", default=MEMORY_LIMIT, show_default=True, metavar="SIZE",
              callback=_memory_size,
              help="DuckDB's memory for the run's tables and joins (256MB, 4GB, 2GiB; at least 64 MiB); beyond it, "
                   "DuckDB spills to a scratch folder under --out. A batch's lines and tables are held besides (10 M "
                   "events: 877 MiB of peak memory with the default; with 2GB, 1,032 MiB and 12 % less CPU).")
@click.pass_context
def pay_run(ctx: click.Context, wave_id: str, labels_dir: Path, revocations: Path | None, agency_url: str | None,
            agency_ca: Path | None, events: tuple[Path, ...],
            infrastructure_keys: Path | None, ledger_path: Path | None, out_dir: Path, agency_keys: tuple[Path, ...],
            payer_file: Path, payees_file: Path | None, as_of: dt.datetime | None, commit_every: int, engine: str,
            spark_master: str, memory_limit: int, confirmed_ibans: dict[str, str]) -> None:
    """Pay every installation of WAVE whose proof of use is met, once; write orders and the refusal report.

    Only events that the infrastructure's signed segments prove, from sources their key vouches for,
    are counted; the others are refused (event-unsigned, event-signature-invalid,
    event-segment-mismatch, event-chain-broken, source-untrusted) and never recorded.
    """
    if not agency_keys:
        raise InputError("no agency key: give --agency-key PEM (or set USINE_AGENCY_PUBKEY)", where="--agency-key")
    agency_ring = KeyRing.from_paths(agency_keys)
    if not len(agency_ring):  # a folder without any *.pem: every label and the revocation list would be "untrusted"
        raise InputError(f"no public key (*.pem) found in {', '.join(map(str, agency_keys))}: give the agency's "
                         "public key (PEM) or the folder holding it", where="--agency-key")
    if infrastructure_keys is None:
        raise InputError("no infrastructure keys: give --infrastructure-keys FILE (or set USINE_INFRASTRUCTURE_KEYS), "
                         "the keys whose signed segments prove the events; unauthenticated events are never paid",
                         where="--infrastructure-keys")
    if agency_ca is not None and not agency_url:
        raise InputError("--agency-ca is the CA of --agency's TLS: give --agency too, or no --agency-ca",
                         where="--agency-ca")
    _check_out(out_dir, events)
    catalog = get_catalog(ctx)
    catalog.wave(wave_id)  # an unknown wave said before the agency's feed is mirrored: a refused run writes nothing
    if agency_url:
        from conformity.files import trust_anchor
        from conformity.payments.agency_feed import sync_labels

        if revocations is not None:
            raise InputError("--agency brings the agency's current revocation list: give no --revocations with it",
                             where="--revocations")
        synced = sync_labels(agency_url, labels_dir,
                             verify=trust_anchor(agency_ca, "--agency-ca") if agency_ca is not None else True)
        click.echo(f"from {agency_url}: {synced.events} label event(s) read, {synced.labels} label(s) written into "
                   f"{labels_dir}, the current revocation list fetched", err=True)
    options = RunOptions(
        wave=wave_id, labels=labels_dir, events=_event_files(events), ledger=ledger_path or default_ledger(),
        out=out_dir, keys=agency_ring, infrastructure=load_keys(infrastructure_keys),
        payer=load_payer(payer_file), payees=load_payees(payees_file), as_of=now_unless(as_of), revocations=revocations,
        commit_every=commit_every, engine=engine, spark_master=spark_master, memory_limit=memory_limit,
        confirmed_ibans=confirmed_ibans)
    stats = run_payments(catalog, options, progress=lambda msg: click.echo(msg, err=True))
    refused = stats.refused
    click.echo(f"wave {wave_id}: {stats.lines} lines read ({stats.lines - stats.unproven} proven by signed segments), "
               f"{stats.counted} events counted, {refused} refused, {stats.after_payment} after payment, "
               f"{stats.other_wave} of other waves")
    click.echo(f"paid {stats.paid} installation(s), {stats.paid_cents / 100:.2f}; "
               f"{stats.cap_reached} over the cap; {stats.held} order(s) held for missing bank details")
    for msg_id in stats.batches:
        click.echo(f"batch {msg_id}")
    click.echo(f"outputs in {out_dir} (ledger {options.ledger})")


def _lease_line(held: Lease | None, path: Path) -> str:
    if held is None:
        return "  not in use"
    state = " (that process is gone: the next run takes the lease over)" if held.holder.gone() else ""
    return "  " + held.describe(path).split(" is ", 1)[1] + state


@pay.command("status")
@ledger_option
def pay_status(ledger_path: Path | None) -> None:
    """Payments and installations in a ledger, per wave, and the run holding it (read-only)."""
    path = ledger_path or default_ledger()
    if not path.is_file():
        raise InputError("no ledger here", file=path)
    status = ledger_status(path)
    click.echo(f"ledger {path}: {status.runs} run(s), {status.unfinished} unfinished")
    click.echo(_lease_line(status.lease, path))
    for wave, state, n in status.installations:
        click.echo(f"  {wave} installations {state}: {n}")
    for wave, currency, n, cents, held in status.payments:
        click.echo(f"  {wave} payments: {n}, {cents / 100:.2f} {currency} ({held} held)")


@pay.command("lease")
@ledger_option
@click.option("--release", "release_run", type=click.IntRange(0), metavar="RUN",
              help="Release the lease of run RUN (0: a run that had not started), which you know is dead: "
                   "e.g. it ran on another host. Refused if it is provably still running here.")
def pay_lease(ledger_path: Path | None, release_run: int | None) -> None:
    """Which run holds the ledger; release a dead run's lease explicitly.

    A run that died on this host is taken over by the next run by itself (its process is provably
    gone); a run from another host, container or boot needs an operator's word: --release RUN.

    Exit 0 shown or released, 2 no ledger there, 3 nothing released (run RUN does not hold the lease, is still
    running here, or no run holds it).
    """
    path = ledger_path or default_ledger()
    if not path.is_file():
        raise InputError("no ledger here", file=path)
    if release_run is None:
        click.echo(f"ledger {path}:" + _lease_line(ledger_status(path).lease, path)[1:])
        return
    released = release_lease(path, release_run)
    click.echo(f"released the lease of run {release_run} (pid {released.holder.pid} on {released.holder.host}, "
               f"since {released.started})")
