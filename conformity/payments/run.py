"""A payment run: events streamed into the ledger, installations settled once, orders and reports written.

1. Intake: each events file's signed segments are verified first (``authenticate``: which lines the
   infrastructure vouches for, and for which sources); then each line → refused unless proven and of a
   source its key vouches for (nothing about it recorded), parsed, validated (envelope, data),
   de-duplicated against the ledger by (source, id), judged (wave, time, funding window, label, price,
   rule) and recorded with its outcome; counted events update their installation's state. Commits
   every ``commit_every`` events.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformity.catalog import Catalog
from conformity.errors import InputError
from conformity.files import private_dir
from conformity.infrastructure_keys import InfrastructureKeys
from conformity.labels import iso
from conformity.payments import reasons
from conformity.payments.authenticate import FileProof, Reread, Span, authenticate
from conformity.payments.eligibility import WaveRules
from conformity.payments.envelope import format_us, to_us
from conformity.payments.files import atomic_output
from conformity.payments.intake import Event, Rejected, parse_event, read_lines
from conformity.payments.labelbook import LabelBook, load_labelbook
from conformity.payments.ledger import CAP_REACHED, PAID, PENDING, QUALIFIED, Installation, Ledger, Recorded
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
from conformity.payments.proof import best_count, earliest_completion
from conformity.payments.report import Refusal, RefusalReport
from conformity.signing import KeyRing

SUMMARY_JSON = "summary.json"
SUMMARY_FORMAT = "usine.pay-run/1"
_LOW = (-(1 << 62), "", "", 0)


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
    commit_every: int = 50_000
    settle_page: int = 500


@dataclass(slots=True)
class RunStats:
    """What one run did, for the summary."""

    lines: int = 0
    unproven: int = 0
    counted: int = 0
    after_payment: int = 0
    other_wave: int = 0
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
        at = max(options.as_of, dt.datetime.now(dt.UTC))  # the revocation list must be current now and at as-of
        self.book: LabelBook = load_labelbook(options.labels, options.keys, at=at, revocations=options.revocations)

    # ------------------------------------------------------------------ the run
    def execute(self) -> RunStats:
        private_dir(self.o.out)  # payment orders carry IBANs: folder 0700, files 0600 (atomic_output's mkstemp)
        with Ledger(self.o.ledger) as ledger:
            self.ledger = ledger
            if ledger.took_over is not None:
                self.progress(f"the lease of run {ledger.took_over.run} (pid {ledger.took_over.holder.pid}, "
                              f"since {ledger.took_over.started}) was taken over: that process is gone")
            inputs = {"labels": str(self.o.labels), "events": [str(p) for p in self.o.events],
                      "label_files": self.book.files, "labels_valid": sum(1 for _ in self.book.labels()),
                      "revocations": self._revocations_summary(),
                      "infrastructure_keys": sorted(self.o.infrastructure.sources)}
            self.run_id = ledger.begin_run(self.rules.id, format_us(self.as_of_us), _now(), json.dumps(inputs))
            self.report = RefusalReport(self.o.out)
            try:
                self._record_labels()
                for path in self.o.events:
                    self._intake(path)
                ledger.commit()
                ledger.forget_installations()
                self._settle()
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
        ledger, name = self.ledger, str(path)
        self.progress(f"verifying the signed segments of {name}")
        proof = authenticate(path, self.o.infrastructure)
        self.stats.proofs.append(proof)
        self.progress(f"{proof.proven_lines:,} lines proven by {proof.proven_segments:,} of {proof.entries:,} "
                      f"segment(s) in {proof.seconds:.1f} s")
        spans, k = proof.spans, 0
        span = spans[0]
        file_id = ledger.add_file(self.run_id, name)
        pending = 0
        self.progress(f"reading {name}")
        for line, raw in read_lines(path, wrap=lambda fh: Reread(fh, proof)):
            self.stats.lines += 1
            while span.last is not None and line > span.last:
                k += 1
                span = spans[k]
            item = parse_event(raw)
            if span.reason is not None:
                self._unproven(item, span.reason, span.detail, name, line)
            elif isinstance(item, Rejected):
                self.report.add(Refusal("event", item.reason, item.detail, name, line, item.source, item.id))
            elif item.source not in span.sources:
                self._unproven(item, reasons.SOURCE_UNTRUSTED, _untrusted(item.source, span), name, line)
            else:
                self._event(item, file_id, name, line)
            pending += 1
            if self.stats.lines % 1_000_000 == 0:
                self.progress(f"{self.stats.lines:,} lines read")
            if pending >= self.o.commit_every and (span.reason is not None or line == span.last):
                ledger.commit()  # only at the end of a proven span: its bytes were checked again (Reread)
                pending = 0
        ledger.commit()

    def _unproven(self, item: Event | Rejected, reason: str, detail: str, file: str, line: int) -> None:
        """A line the infrastructure does not vouch for: reported with what it claims, never recorded."""
        self.stats.unproven += 1
        if isinstance(item, Event):
            self._refuse(item, reason, detail, file, line)
        else:
            self.report.add(Refusal("event", reason, detail, file, line, item.source, item.id))

    def _refuse(self, ev: Event, reason: str, detail: str, file: str, line: int) -> None:
        d = ev.data
        self.report.add(Refusal("event", reason, detail, file, line, ev.source, ev.id, format_us(ev.time_us),
                                d["wave"], d["vendor_id"], d["software"]["id"], d["software"]["version"],
                                d["site"]["id"]))

    def _event(self, ev: Event, file_id: int, file: str, line: int) -> None:
        data = ev.data
        if data["wave"] != self.rules.id:
            if data["wave"] in self.known_waves:
                self.stats.other_wave += 1
            else:
                self._refuse(ev, reasons.UNKNOWN_WAVE, f"wave {data['wave']!r} is not in the catalog", file, line)
            return
        if data["kind"] not in self.kinds:
            self._refuse(ev, reasons.INVALID_DATA, f"kind {data['kind']!r} is not a data kind of the wave's pack "
                                                   f"({', '.join(sorted(self.kinds))})", file, line)
            return
        if ev.time_us > self.as_of_us:
            self._refuse(ev, reasons.FUTURE_DATED, f"event time {format_us(ev.time_us)} is after the run's as-of "
                                                   f"time {format_us(self.as_of_us)}", file, line)
            return
        self.ledger.begin()
        j = self._judge(ev)
        if j.outcome == reasons.COUNTED and j.inst is None:
            previous = self.ledger.recorded(ev.source, ev.id)  # before creating an installation for it
            if previous is not None:
                self._again(ev, previous, file_id, file, line)
                return
            j.inst = self.ledger.create_installation(self.rules.id, data, self.run_id)
        if self.ledger.insert_event(ev.source, ev.id, ev.digest, ev.time_us, j.outcome, j.inst_row, j.label_row,
                                    self.run_id, file_id, line):
            self._apply(ev, j, file, line)
            return
        previous = self.ledger.recorded(ev.source, ev.id)
        if previous is not None:
            self._again(ev, previous, file_id, file, line)

    def _judge(self, ev: Event) -> Judgement:
        """The outcome of an event of this wave, from the labels, the wave and its installation; writes nothing."""
        verdict = self.rules.evaluate(ev.data, ev.time_us, self.book)
        if verdict.reason is not None or verdict.label is None:
            return Judgement(verdict.reason or reasons.NO_LABEL, verdict.detail)
        data = ev.data
        inst = self.ledger.installation(self.rules.id, data["software"]["id"], data["site"]["id"])
        label_row = self.label_rows[verdict.label.id]
        if inst is None:
            return Judgement(reasons.COUNTED, "", None, label_row)
        mismatch = inst.mismatch(data)
        if mismatch:
            return Judgement(reasons.INCONSISTENT_INSTALLATION, mismatch)
        return Judgement(reasons.AFTER_PAYMENT if inst.status == PAID else reasons.COUNTED, "", inst, label_row)

    def _apply(self, ev: Event, j: Judgement, file: str, line: int) -> None:
        """The consequences of a newly decided outcome: count it, or report it."""
        if j.outcome == reasons.AFTER_PAYMENT:
            self.stats.after_payment += 1
        elif j.outcome == reasons.COUNTED and j.inst is not None and j.label_row is not None:
            self.stats.counted += 1
            self._count(ev, j.inst, j.label_row)
        else:
            self._refuse(ev, j.outcome, j.detail, file, line)

    def _again(self, ev: Event, previous: Recorded, file_id: int, file: str, line: int) -> None:
        """An event whose (source, id) is already recorded: duplicate, conflict, or a refusal judged again."""
        where = f"run {previous.run}, {previous.file} line {previous.line}"
        if previous.digest != ev.digest:
            self._refuse(ev, reasons.CONFLICTING_DUPLICATE, f"same source and id as the event recorded at {where}, "
                                                            "with different content", file, line)
            return
        if previous.outcome in _SETTLED or previous.run == self.run_id:
            self._refuse(ev, reasons.DUPLICATE_EVENT, f"already recorded at {where} ({previous.outcome})", file, line)
            return
        j = self._judge(ev)  # refused by an earlier run: labels or the ledger may have changed since
        if j.outcome == reasons.COUNTED and j.inst is None:
            j.inst = self.ledger.create_installation(self.rules.id, ev.data, self.run_id)
        self.ledger.update_event(ev.source, ev.id, j.outcome, j.inst_row, j.label_row, self.run_id, file_id, line)
        self._apply(ev, j, file, line)

    def _count(self, ev: Event, inst: Installation, label_row: int) -> None:
        """A counted event: the installation's count, best window and earliest completion of its proof."""
        inst.counted += 1
        inst.dirty = True
        key = (ev.time_us, ev.source, ev.id)
        if inst.completion is not None and key > inst.completion:
            return  # cannot be part of the proof: the proof ends at the earliest completion
        self.ledger.add_candidate(inst.rowid, key, label_row, ev.raw)
        n, span = self.rules.threshold(inst.category)
        keys = self.ledger.window(inst.rowid, ev.time_us - span, ev.time_us + span, inst.completion)
        pos = keys.index(key)
        inst.best = max(inst.best, best_count(keys, pos, span))
        completion = earliest_completion(keys, pos, n, span)
        if completion is not None and (inst.completion is None or completion < inst.completion):
            inst.completion = completion
            if inst.status == PENDING:
                inst.status = QUALIFIED

    # ------------------------------------------------------------------ step 2: settlement
    def _settle(self) -> None:
        ledger, rules, wave = self.ledger, self.rules, self.rules.id
        paid_by_software: dict[str, int] = {}
        after = _LOW
        created = _now()
        while True:
            ledger.begin()
            page = ledger.due(wave, after, self.o.settle_page)
            if not page:
                ledger.commit()
                return
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
                ledger.pay(wave, due, price, rules.currency, n, span, self.run_id, created)
                paid_by_software[due.software_id] += price
                self.stats.paid += 1
                self.stats.paid_cents += price
            ledger.commit()

    # ------------------------------------------------------------------ step 3: orders
    def _orders(self) -> None:
        ledger, wave, out = self.ledger, self.rules.id, self.o.out
        creditors = {v: (a.name, a.iban, a.bic) for v, a in self.o.payees.items()}
        payer = self.o.payer
        ledger.open_batch(wave, self.run_id, _now(), self.o.as_of.date().isoformat(),
                          json.dumps({"name": payer.name, "iban": payer.iban, "bic": payer.bic}), creditors)
        batches = ledger.unwritten_batches(wave)
        for batch in batches:
            snapshot = json.loads(batch["payer"])
            path = out / pain_file_name(batch["msg_id"])
            write_pain001(path, batch, Account(snapshot["name"], snapshot["iban"], snapshot["bic"]),
                          ledger.payments("p.batch = ?", (batch["id"],)))
            self.stats.batches.append(batch["msg_id"])
            self.stats.outputs.append(str(path))
        batch_ids = tuple(b["id"] for b in batches)

        def rows() -> Any:
            for bid in batch_ids:
                for p in ledger.payments("p.batch = ?", (bid,)):
                    yield "ordered", p
            for p in ledger.payments("p.wave = ? AND p.batch IS NULL", (wave,)):
                yield "held", p

        write_orders_csv(out / ORDERS_CSV, rows())
        write_proofs(out / PROOFS_JSONL, ((p, ledger.proof_events(p["id"])) for _, p in rows()))
        write_totals_csv(out / TOTALS_CSV, wave, ledger.vendor_totals(wave, self.run_id))
        self.stats.outputs += [str(out / ORDERS_CSV), str(out / PROOFS_JSONL), str(out / TOTALS_CSV)]
        for batch in batches:
            ledger.mark_written(batch["id"], _now())
        for p in ledger.payments("p.wave = ? AND p.batch IS NULL", (wave,)):
            self.stats.held += 1
            self.stats.held_cents += p["amount_cents"]
            self.report.add(Refusal("order", reasons.NO_BANK_DETAILS,
                                    f"payment {p['id']} of {p['amount_cents'] / 100:.2f} {p['currency']} is held: "
                                    f"no bank details for vendor {p['vendor_id']!r} in the payees file",
                                    wave=wave, vendor_id=p["vendor_id"], software_id=p["software_id"],
                                    site_id=p["site_id"]))

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

    def _revocations_summary(self) -> dict[str, Any]:
        found = self.book.revocation_list
        assert found is not None
        return {"file": self.book.revocations_file, "issued": iso(found.issued),
                "next_update": iso(found.next_update), "revocations": len(found.revocations)}

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


_SETTLED = (reasons.COUNTED, reasons.AFTER_PAYMENT)


def _untrusted(source: str, span: Span) -> str:
    vouched = ", ".join(sorted(span.sources)) or "none"
    return (f"source {source!r} is not one that segment {span.seq}'s signing key vouches for (and the segment "
            f"declares): {vouched}")


@dataclass(slots=True)
class Judgement:
    """An event's outcome (counted, after-payment or a refusal code) and what it applies to."""

    outcome: str
    detail: str = ""
    inst: Installation | None = None
    label_row: int | None = None

    @property
    def inst_row(self) -> int | None:
        return self.inst.rowid if self.inst is not None and self.outcome in _SETTLED else None


def write_json(path: Path, obj: Any) -> None:
    """A JSON document written atomically."""
    with atomic_output(path, encoding="utf-8") as fh:
        fh.write(json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def run_payments(catalog: Catalog, options: RunOptions, progress: Callable[[str], None] | None = None) -> RunStats:
    """Run the payment agency's job once (see the module docstring)."""
    return PaymentRun(catalog, options, progress).execute()
