"""A payment run: events streamed into the ledger, installations settled once, orders and reports written.

1. Intake: each events file's signed segments are verified first (``authenticate``: which lines the
   infrastructure vouches for, and for which sources); then each line → refused unless proven and of a
   source its key vouches for (nothing about it recorded), parsed, validated (envelope, data),
   de-duplicated against the ledger by (source, id), judged (wave, time, funding window, label, price,
   rule) and recorded with its outcome; counted events update their installation's state. Commits
   every ``commit_every`` events; after the last file, each installation's count is set from the store.
   Intake runs on an embedded DuckDB (``engine``, the default) or on Apache Spark (``spark_engine``,
   ``RunOptions.engine = "spark"``): the same outcomes, ledger and reports.
2. Settlement: installations whose proof of use is met are paid in the order their proof completed
   (event time), within the cap per software; each payment is recorded with the events that prove it.
3. Orders: payments of vendors with bank details go into a new batch (pain.001 + CSV); the others are
   held and reported. A batch is recorded before its files are written, and re-written by the next run
   if the files were not, so an order is never lost.
4. Reports: refusals (CSV + JSON), totals per vendor, a summary.

Re-running on the same files pays nothing twice and changes no payment; a run killed at any point
leaves a ledger that the next run completes to the state of one clean run.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from conformity.catalog import Catalog
from conformity.errors import InputError
from conformity.files import private_dir, real_path
from conformity.infrastructure_keys import InfrastructureKeys
from conformity.labels import iso
from conformity.payments import parquet, reasons
from conformity.payments.authenticate import FileProof, authenticate
from conformity.payments.eligibility import WaveRules
from conformity.payments.engine import DEFAULT_MEMORY_BYTES, Counters, Engine
from conformity.payments.envelope import format_us, to_us
from conformity.payments.files import atomic_output
from conformity.payments.labelbook import (
    LabelBook,
    check_not_older,
    load_labelbook,
    revocation_keys,
    revocations_digest,
)
from conformity.payments.ledger import CAP_REACHED, PENDING, Ledger
from conformity.payments.orders import (
    ORDERS_CSV,
    PROOFS_JSONL,
    TOTALS_CSV,
    pain_file_name,
    write_orders_csv,
    write_pain001,
    write_proofs,
    write_totals_csv,
)
from conformity.payments.payees import Account
from conformity.payments.report import Refusal, RefusalReport
from conformity.payments.store import EventStore, adopt_legacy_events
from conformity.signing import KeyRing

SUMMARY_JSON = "summary.json"
SUMMARY_FORMAT = "usine.pay-run/1"
_LOW = (-(1 << 62), "", "", 0)
#: the engines of intake (``--engine``)
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything a payment run reads."""

    wave: str
    labels: Path
    events: tuple[Path, ...]
    ledger: Path
    out: Path
    keys: KeyRing
    infrastructure: InfrastructureKeys
    payer: Account
    payees: dict[str, Account]
    as_of: dt.datetime
    revocations: Path | None = None  # default: LABELS/revocations.json
    commit_every: int = 200_000  # lines per intake batch (one transaction), at least; ends at a segment's end
    settle_page: int = 500
    engine: str = "duckdb"  # or "spark": the same intake on an Apache Spark cluster (conformity.payments.spark_engine)
    spark_master: str = "local[*]"  # the Spark master URL (engine "spark")
    memory_limit: int = DEFAULT_MEMORY_BYTES  # bytes of DuckDB's buffer pool (``engine.memory_bytes``); more spills
    #: vendor → the IBAN the agency confirmed out of band although the vendor's last order went to another one
    #: (``--confirm-iban VENDOR=IBAN``; the run stops unless ``payees`` gives the vendor that IBAN); any other vendor's
    #: changed IBAN holds its orders (``bank-details-changed``)
    confirmed_ibans: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RunStats(Counters):
    """What one run did, for the summary: intake's counters, then settlement's."""

    refused: int = 0
    paid: int = 0
    paid_cents: int = 0
    cap_reached: int = 0
    batches: list[str] = field(default_factory=list)
    held: int = 0
    held_cents: int = 0
    outputs: list[str] = field(default_factory=list)
    proofs: list[FileProof] = field(default_factory=list)

    @property
    def auth_seconds(self) -> float:
        """Time spent verifying the events files' signed segments."""
        return sum(p.seconds for p in self.proofs)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PaymentRun:
    """One run over one ledger; ``execute()`` does all four steps."""

    def __init__(self, catalog: Catalog, options: RunOptions, progress: Callable[[str], None] | None = None):
        self.o = options
        self.progress = progress or (lambda _msg: None)
        self.rules = WaveRules.of(catalog.wave(options.wave))
        #: the data kinds the wave's pack declares (pack.toml ``data_kinds``): an event of another kind is invalid
        self.kinds = frozenset(catalog.packs[catalog.wave(options.wave).pack].data_kinds)
        self.known_waves = frozenset(catalog.waves)
        self.as_of_us = to_us(options.as_of)
        self.stats = RunStats()
        for path in options.events:
            if not path.is_file():
                raise InputError("events file not found", file=path)
            if parquet.is_parquet(path):  # its layout, before the ledger is touched (read again from intake's copy)
                parquet.check(path)
        out, labels = real_path(options.out), real_path(options.labels)
        if out == labels or out.is_relative_to(labels):
            raise InputError(f"the output folder {options.out} is the labels folder {options.labels} or inside it: the "
                             "next run would read its summary.json and refusals.json as labels; choose another --out",
                             where="--out")
        unknown = sorted(set(options.confirmed_ibans) - set(options.payees))
        if unknown:  # a typo would leave the vendor's orders held while the agency believes them confirmed
            raise InputError(f"vendor {unknown[0]!r} ({len(unknown)} in all) is not in the payees file: --confirm-iban "
                             "confirms the IBAN the payees file gives a vendor", where="--confirm-iban")
        for vendor, iban in sorted(options.confirmed_ibans.items()):
            if options.payees[vendor].iban != iban:  # the file changed after the agency checked the account
                raise InputError(f"the payees file gives vendor {vendor!r} the IBAN {options.payees[vendor].iban}, "
                                 f"not {iban}, the one confirmed: the file changed since that account was checked, or "
                                 "another one was; check the account the file gives with the vendor through a known "
                                 "channel before confirming it", where="--confirm-iban")
        if options.engine not in ENGINES:
            raise InputError(f"unknown engine {options.engine!r}: one of {', '.join(ENGINES)}", where="--engine")
        if options.engine == "spark":  # before the ledger is touched: what is missing, why, how to install it
            from conformity.payments.spark_engine import require_spark

            require_spark()
        at = max(options.as_of, dt.datetime.now(dt.UTC))  # the revocation list must be current now and at as-of
        self.book: LabelBook = load_labelbook(options.labels, options.keys, at=at, revocations=options.revocations)

    # ------------------------------------------------------------------ the run
    def execute(self) -> RunStats:
        with Ledger(self.o.ledger) as ledger:
            self.ledger = ledger
            if self.book.revocation_list is not None:  # before this run is recorded: nothing written if refused
                check_not_older(self.book.revocation_list, Path(self.book.revocations_file), ledger.revocation_lists())
            private_dir(self.o.out)  # payment orders carry IBANs: folder 0700, files 0600 (atomic_output's mkstemp)
            if ledger.took_over is not None:
                self.progress(f"the lease of run {ledger.took_over.run} (pid {ledger.took_over.holder.pid}, "
                              f"since {ledger.took_over.started}) was taken over: that process is gone")
            inputs = {"labels": str(self.o.labels), "events": [str(p) for p in self.o.events],
                      "label_files": self.book.files, "labels_valid": sum(1 for _ in self.book.labels()),
                      "revocations": self._revocations_recorded(),
                      "infrastructure_keys": sorted(self.o.infrastructure.sources),
                      "confirmed_ibans": dict(sorted(self.o.confirmed_ibans.items()))}
            self.run_id = ledger.begin_run(self.rules.id, format_us(self.as_of_us), _now(), json.dumps(inputs))
            self.report = RefusalReport(self.o.out)
            store = EventStore(self.o.ledger, ledger.db)
            removed = store.remove_unregistered()
            if removed:
                self.progress(f"removed {len(removed)} event file(s) of a run killed before its commit")
            ledger.begin()
            adopted = adopt_legacy_events(store, ledger.db, self.run_id)
            ledger.commit()
            if adopted:
                self.progress(f"{adopted:,} events recorded by an earlier version moved to the event store")
            try:
                self._record_labels()
                try:
                    self.engine = self._engine(ledger, store)
                except BaseException:  # an engine that could not start (Spark) leaves no scratch folder in --out
                    shutil.rmtree(self.o.out / f".scratch-{self.run_id}", ignore_errors=True)
                    raise
                try:
                    for path in self.o.events:
                        self._intake(path)
                    ledger.begin()
                    ledger.set_counts(self.engine.count_changes())
                    for name in (f.name for f in dataclass_fields(Counters)):
                        setattr(self.stats, name, getattr(self.engine.counters, name))
                    ledger.commit()
                    self._settle()
                finally:
                    self.engine.close()
                    shutil.rmtree(self.o.out / f".scratch-{self.run_id}", ignore_errors=True)
                self._orders()
                self._unpaid()
                self.stats.refused = sum(n for (kind, _), n in self.report.counts.items() if kind == "event")
                summary = self._summary()
                self.stats.outputs += [str(p) for p in self.report.finish(
                    {"run": self.run_id, "wave": self.rules.id, "as_of": format_us(self.as_of_us)})]
                summary["outputs"] = self.stats.outputs + [str(self.o.out / SUMMARY_JSON)]
                write_json(self.o.out / SUMMARY_JSON, summary)
                ledger.finish_run(self.run_id, _now(), json.dumps(summary))
            except BaseException:
                self.report.discard()
                raise
        return self.stats

    # ------------------------------------------------------------------ step 1: intake
    def _engine(self, ledger: Ledger, store: EventStore) -> Engine:
        args = (ledger, store, self.rules, self.book, self.label_rows, self.known_waves, self.kinds, self.as_of_us,
                self.run_id, self.report, self.o.out / f".scratch-{self.run_id}", self.progress)
        if self.o.engine == "spark":
            from conformity.payments.spark_engine import SparkEngine

            self.progress(f"intake on Spark ({self.o.spark_master})")
            return SparkEngine(*args, master=self.o.spark_master, memory=self.o.memory_limit)
        return Engine(*args, memory=self.o.memory_limit)

    def _record_labels(self) -> None:
        self.label_rows: dict[str, int] = {}
        for label in self.book.labels():
            doc = label.doc
            self.label_rows[label.id] = self.ledger.add_label(
                label.id, label.vendor_id, doc["vendor"]["name"], label.software_id, doc["software"]["name"],
                json.dumps(doc, ensure_ascii=False, sort_keys=True))
        for problem in self.book.refused:
            self.report.add(Refusal("label", reasons.LABEL_INVALID, problem.message, file=problem.file))
        self.ledger.commit()

    def _intake(self, path: Path) -> None:
        name = str(path)
        self.progress(f"verifying the signed segments of {name}")
        # the sidecar only: the file is read once, each segment hashed as its lines are loaded (``loader``; Spark's
        # executors read a copy written on the way, a Parquet file's too: ``parquet.take``)
        proof = authenticate(path, self.o.infrastructure, read=False)
        self.stats.proofs.append(proof)
        self.ledger.begin()
        file_id = self.ledger.add_file(self.run_id, name)
        self.ledger.commit()
        self.progress(f"reading {name}")
        self.engine.file(path, file_id, proof, self.o.commit_every)
        self.progress(f"{proof.proven_lines:,} lines proven by {proof.proven_segments:,} of {proof.entries:,} "
                      f"segment(s) (signatures and chain checked in {proof.seconds:.1f} s)")

    # ------------------------------------------------------------------ step 2: settlement
    def _settle(self) -> None:
        ledger, rules, wave = self.ledger, self.rules, self.rules.id
        paid_by_software: dict[str, int] = {}
        after = _LOW
        created = _now()
        due_all = ledger.due(wave, _LOW, -1)
        self.engine.prepare_proofs([(d.rowid, *d.completion, *rules.threshold(d.category)) for d in due_all])
        del due_all
        while True:
            ledger.begin()
            page = ledger.due(wave, after, self.o.settle_page)
            if not page:
                ledger.commit()
                return
            proofs = self.engine.proofs([d.rowid for d in page])
            for due in page:
                after = (*due.completion, due.rowid)
                price = rules.price_cents(due.category, due.site_size)
                if price is None:  # the wave changed since the events were counted
                    continue
                if due.software_id not in paid_by_software:
                    paid_by_software[due.software_id] = ledger.software_paid_cents(wave, due.software_id)
                if paid_by_software[due.software_id] + price > rules.cap_cents:
                    if due.status != CAP_REACHED:
                        ledger.set_status(due.rowid, CAP_REACHED)
                    continue
                n, span = rules.threshold(due.category)
                ledger.pay(wave, due, price, rules.currency, n, span, self.run_id, created, proofs.get(due.rowid, []))
                paid_by_software[due.software_id] += price
                self.stats.paid += 1
                self.stats.paid_cents += price
            ledger.commit()

    # ------------------------------------------------------------------ step 3: orders
    def _orders(self) -> None:
        ledger, wave = self.ledger, self.rules.id
        # an IBAN other than the one the vendor's last order went to is a new account: its orders are held until
        # the agency confirms it (a payees file edited, or a forged "our bank details changed", pays nobody silently)
        changed = {v: last for v, last in ledger.ordered_accounts().items()
                   if v in self.o.payees and self.o.payees[v].iban != last[0]
                   and self.o.confirmed_ibans.get(v) != self.o.payees[v].iban}
        creditors = {v: (a.name, a.iban, a.bic) for v, a in self.o.payees.items() if v not in changed}
        payer = self.o.payer
        # the day the money is to move is the run's (UTC), whatever --as-of says of which events count: an as-of in the
        # past gave a requested execution date in the past (a bank rejects it), one in the future delayed the payment
        ledger.open_batch(wave, self.run_id, _now(), dt.datetime.now(dt.UTC).date().isoformat(),
                          json.dumps({"name": payer.name, "iban": payer.iban, "bic": payer.bic}), creditors)
        self._write_orders(ledger.unwritten_batches(wave))
        for p in ledger.payments("p.wave = ? AND p.batch IS NULL", (wave,)):
            self.stats.held += 1
            self.stats.held_cents += p["amount_cents"]
            vendor, held = p["vendor_id"], f"payment {p['id']} of {p['amount_cents'] / 100:.2f} {p['currency']} is held"
            if vendor in changed:
                last_iban, msg_id = changed[vendor]
                reason = reasons.BANK_DETAILS_CHANGED
                detail = (f"{held}: the payees file gives vendor {vendor!r} the IBAN {self.o.payees[vendor].iban}, "
                          f"not {last_iban} where its last order went (batch {msg_id}); check the change with the "
                          f"vendor through a known channel, then run again with --confirm-iban "
                          f"{vendor}={self.o.payees[vendor].iban}")
            else:
                reason, detail = reasons.NO_BANK_DETAILS, f"{held}: no bank details for vendor {vendor!r} in the payees file"
            self.report.add(Refusal("order", reason, detail, wave=wave, vendor_id=vendor,
                                    software_id=p["software_id"], site_id=p["site_id"]))

    def _write_orders(self, batches: list[Any]) -> None:
        """The batches' pain.001 files, the orders, proofs and totals; then the batches marked written, in one
        transaction. Should anything fail before it commits, the pain.001 files written are removed: a batch not marked
        written is written again, same MsgId, by the next run, and a file left here would be a second transmittable
        order of the same payments."""
        ledger, wave, out = self.ledger, self.rules.id, self.o.out
        batch_ids = tuple(b["id"] for b in batches)

        def rows() -> Any:
            for bid in batch_ids:
                for p in ledger.payments("p.batch = ?", (bid,)):
                    yield "ordered", p
            for p in ledger.payments("p.wave = ? AND p.batch IS NULL", (wave,)):
                yield "held", p

        written: list[Path] = []
        try:
            for batch in batches:
                snapshot = json.loads(batch["payer"])
                path = out / pain_file_name(batch["msg_id"])
                write_pain001(path, batch, Account(snapshot["name"], snapshot["iban"], snapshot["bic"]),
                              ledger.payments("p.batch = ?", (batch["id"],)))
                written.append(path)
                self.stats.batches.append(batch["msg_id"])
                self.stats.outputs.append(str(path))
            write_orders_csv(out / ORDERS_CSV, rows())
            write_proofs(out / PROOFS_JSONL, ((p, ledger.proof_events(p["id"])) for _, p in rows()))
            write_totals_csv(out / TOTALS_CSV, wave, ledger.vendor_totals(wave, self.run_id))
            self.stats.outputs += [str(out / ORDERS_CSV), str(out / PROOFS_JSONL), str(out / TOTALS_CSV)]
            ledger.mark_written(batch_ids, _now())  # last: once committed, the next run writes them no more
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ step 4: reports
    def _unpaid(self) -> None:
        wave, rules = self.rules.id, self.rules
        for _rowid, sw, site, vendor, category, size, status, counted, best in self.ledger.unpaid(wave):
            n, span = rules.threshold(category)
            days = span // (86_400 * 1_000_000)
            if status == CAP_REACHED:
                self.stats.cap_reached += 1
                paid = self.ledger.software_paid_cents(wave, sw)
                price = rules.price_cents(category, size) or 0
                detail = (f"software {sw} has {paid / 100:.2f} {rules.currency} paid of its cap "
                          f"{rules.cap_cents / 100:.2f}; this installation's price {price / 100:.2f} would exceed it")
                self.report.add(Refusal("installation", reasons.CAP_REACHED, detail, wave=wave, vendor_id=vendor,
                                        software_id=sw, site_id=site))
            elif status == PENDING:
                detail = (f"at most {best} of {n} counted events within {days} days "
                          f"({counted} counted in all)")
                self.report.add(Refusal("installation", reasons.THRESHOLD_NOT_MET, detail, wave=wave,
                                        vendor_id=vendor, software_id=sw, site_id=site))
            else:  # qualified but not settled: only when the wave lost the price since
                self.report.add(Refusal("installation", reasons.NO_PRICE,
                                        f"wave {wave} has no price for {category}/{size}", wave=wave,
                                        vendor_id=vendor, software_id=sw, site_id=site))

    def _revocations_recorded(self) -> dict[str, Any]:
        """What the ledger records of the list this run relies on: its summary and every revocation it holds (a later
        run's list must hold each of them: :func:`check_not_older`)."""
        assert self.book.revocation_list is not None
        return self._revocations_summary() | {"entries": revocation_keys(self.book.revocation_list)}

    def _revocations_summary(self) -> dict[str, Any]:
        found = self.book.revocation_list
        assert found is not None
        return {"file": self.book.revocations_file, "issued": iso(found.issued),
                "next_update": iso(found.next_update), "revocations": len(found.revocations),
                "sha256": revocations_digest(found)}

    def _summary(self) -> dict[str, Any]:
        s = self.stats
        return {
            "format": SUMMARY_FORMAT, "run": self.run_id, "wave": self.rules.id, "as_of": format_us(self.as_of_us),
            "ledger": str(self.o.ledger), "events_files": [str(p) for p in self.o.events],
            "revocation_list": self._revocations_summary(),
            "unfinished_earlier_runs": self.ledger.unfinished_runs(self.run_id),
            "lease_taken_over_from_run": self.ledger.took_over.run if self.ledger.took_over else None,
            "lines": s.lines, "lines_unproven": s.unproven,
            "authentication": [p.summary() for p in s.proofs], "events_counted": s.counted, "events_after_payment": s.after_payment,
            "events_other_waves": s.other_wave, "events_refused": s.refused,
            "installations_paid": s.paid, "amount_paid": f"{s.paid_cents / 100:.2f}", "currency": self.rules.currency,
            "installations_cap_reached": s.cap_reached, "batches": s.batches,
            "orders_held": s.held, "amount_held": f"{s.held_cents / 100:.2f}",
            "refusals": self.report.by_reason(), "ledger_rows": self.ledger.counts(),
        }


def write_json(path: Path, obj: Any) -> None:
    """A JSON document written atomically."""
    with atomic_output(path, encoding="utf-8") as fh:
        fh.write(json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def run_payments(catalog: Catalog, options: RunOptions, progress: Callable[[str], None] | None = None) -> RunStats:
    """Run the payment agency's job once (see the module docstring)."""
    return PaymentRun(catalog, options, progress).execute()
