"""Two payment runs that meet every refusal reason intake has, for tests that compare engines or ways of running.

The first file: payments, duplicates inside it, a conflicting duplicate, the same data under other ids, an
installation that disagrees with itself, lines the reference parser reads, every intake refusal, a revoked label, a
line that is not UTF-8 and two appended after sealing. The second: a qualification, after-payment events, repeats of
the first run's events, a conflict with one of them, the same data as one of them under another id, an edited segment
and a last line without its end.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

from conformity.catalog import load_catalog
from conformity.infrastructure_keys import load_keys
from conformity.labels import parse_time
from conformity.payments import RunOptions, RunStats, run_payments
from conformity.payments.payees import load_payees, load_payer
from conformity.segments import write_sealed
from conformity.signing import KeyRing
from tests.payments.builders import (
    AS_OF,
    INFRA,
    SEGMENT_LINES,
    T0,
    event,
    events_for,
    installation,
    line_of,
    modified,
    revocation,
)
from tests.payments.workspace import PAYER, Workspace

DAY = dt.timedelta(days=1)
A = installation("750100011", "M")
B = installation("750100012", "S", site_name="Hôpital Saint-Éloi")
C = installation("750100013", "L")
MEDIX = installation("750100014", "M", vendor="medi", software="medix", version="2.0")
NOLABEL = installation("750100015", "M", vendor="nobody", software="unlabelled")
D = installation("750100017", "S")


def first_file() -> list[Any]:
    a, b = events_for(A, 6), events_for(B, 5, first=100)
    lines: list[Any] = [*a, *b, *events_for(C, 3, first=200)]
    lines += events_for(MEDIX, 6, first=300)  # its label is revoked on day 3: the later events are refused
    lines += events_for(NOLABEL, 2, first=400)  # no-label
    lines += [a[0], a[1]]  # duplicates inside the file
    lines.append(modified(a[2], data__reference="changed"))  # conflicting duplicate
    lines += same_data([event(B, T0 + 2 * DAY, 150), event(B, T0 - DAY, 151)], b[3])  # B's data again: duplicate-data
    lines.append(same_data([event(C, T0 + 2 * DAY, 250)], b[3])[0])  # B's data from C: C's own, counted
    lines.append(modified(event(A, T0 + 20 * DAY, 50), data__site__size="L"))  # inconsistent installation
    lines.append(json.dumps(event(A, T0 + 8 * DAY, 51)))  # spaces: the reference parser, counted
    lines.append(line_of(event(A, T0 + 9 * DAY, 52)) + "\r")  # a CRLF line end: the reference parser, counted
    lines.append(modified(event(A, T0 + 3 * DAY, 53), data__bytes=-1))  # invalid-data (parser)
    lines.append(modified(event(A, T0 + 3 * DAY, 54), data__kind="fax"))  # invalid-data (kind not the pack's)
    lines.append(modified(event(A, T0 + 3 * DAY, 55), specversion="1.1"))  # wrong-envelope
    lines.append(modified(event(A, T0 + 3 * DAY, 56), data__wave="2099-W9"))  # unknown-wave
    lines.append(modified(event(A, T0 + 3 * DAY, 57), data__wave="2026-W3"))  # another wave: not refused here
    lines.append(event(A, dt.datetime(2027, 8, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC), 58))  # future-dated
    lines.append(event(A, dt.datetime(2026, 2, 1, tzinfo=dt.UTC), 59))  # outside the funding window
    lines.append(event(A, T0 + 4 * DAY, 60, source="urn:somebody:else"))  # source-untrusted
    lines.append(event(A, T0 + 4 * DAY, 61, document_type="00000-0"))  # not proof of use
    lines.append(modified(event(A, T0 + 4 * DAY, 62), data__site__id="0750100011"))  # A with a leading zero: inconsistent
    lines.append(modified(event(A, T0 + 4 * DAY, 63), data__site__id="750100011 "))  # A with a space: invalid-data
    lines += [modified(e, data__site__id="00750100017") for e in events_for(D, 2, first=600)]  # D, padded first
    lines += events_for(D, 2, first=610)  # then D as it is: inconsistent with the installation its padded id made
    lines += ["[1, 2]", "", '{"specversion": "1.0", "id": ']  # malformed, blank, malformed
    return lines


def second_file() -> list[Any]:
    lines: list[Any] = events_for(C, 3, start=T0 + 3 * DAY, first=210)  # C qualifies now
    lines += events_for(A, 2, start=T0 + 10 * DAY, first=70)  # A is paid: after-payment
    lines += [*events_for(A, 3), event(B, T0, 100)]  # repeats of the first run's events
    lines.append(modified(event(C, T0 + 4 * DAY, 220), data__site__id="000750100013"))  # C padded: inconsistent
    lines.append(modified(event(B, T0 + DAY, 101), data__reference="other"))  # conflicts with the first run's
    lines += same_data([event(C, T0 + 5 * DAY, 230)], event(C, T0, 200))  # C's data of the first run: duplicate-data
    lines += events_for(installation("750100016", "M"), 4, first=500)  # an edited segment (below)
    return lines


def same_data(events: list[dict[str, Any]], like: dict[str, Any]) -> list[dict[str, Any]]:
    """``events`` (their own ids and times) carrying the data of ``like``: its sha256 and reference."""
    return [modified(e, data__sha256=like["data"]["sha256"], data__reference=like["data"]["reference"])
            for e in events]


def workspace(root: Path) -> tuple[Workspace, Path, Path]:
    ws = Workspace(root)
    ws.label()
    medix = ws.label(vendor="medi", software="medix", versions=("2.0",))
    ws.revoke(revocation(medix["label_id"], T0 + 2 * DAY + dt.timedelta(hours=3), software="medix", version="2.0"))
    # the first file also carries a line that is not UTF-8 (one refused line on either engine, never a blank one)
    not_utf8 = line_of(event(A, T0 + 3 * DAY, 62)).encode("utf-8").replace(b"ACME", b"AC\xffME", 1)
    assert b"\xff" in not_utf8
    first = write_sealed(ws.root / "events" / "first.jsonl",
                         [line_of(x).encode("utf-8") for x in first_file()] + [not_utf8], INFRA, every=SEGMENT_LINES)
    with open(first, "a", encoding="utf-8") as fh:  # appended after sealing: event-unsigned
        fh.write(line_of(event(A, T0 + 5 * DAY, 90)) + "\n" + line_of(event(A, T0 + 5 * DAY, 91)) + "\n")
    second = ws.events("second.jsonl", second_file())
    text = second.read_text(encoding="utf-8").replace('"reference":"doc-750100016-503"', '"reference":"edited"')
    # its segment no longer hashes to the signed value; a last line without its end (unsigned)
    second.write_text(text + line_of(event(C, T0 + 9 * DAY, 220)), encoding="utf-8")
    return ws, first, second


def run(ws: Workspace, files: tuple[Path, ...], ledger: Path, out: Path, engine: str = "duckdb",
        master: str = "local[2]", commit_every: int = 200_000, **options: Any) -> RunStats:
    """The run of ``files`` (``options``: more of :class:`RunOptions`)."""
    chosen = RunOptions(wave="2026-W1", labels=ws.labels, events=files, ledger=ledger, out=out,
                        keys=KeyRing.from_paths([ws.key]), infrastructure=load_keys(ws.infrastructure),
                        payer=load_payer(PAYER), payees=load_payees(ws.payees), as_of=parse_time(AS_OF),
                        engine=engine, spark_master=master, commit_every=commit_every, **options)
    return run_payments(load_catalog(None), chosen)


STATS = ("lines", "unproven", "counted", "after_payment", "other_wave", "refused", "paid", "paid_cents",
          "cap_reached", "held", "held_cents")
TIMED = {"msg_id", "end_to_end_id", "created", "execution_date", "batch"}


def outputs(out: Path, stats: RunStats) -> dict[str, Any]:
    """What a run produced, without its paths, ledger ids and clock times."""
    def rows(name: str) -> list[dict[str, str]]:
        with open(out / name, encoding="utf-8", newline="") as fh:
            return [{k: v for k, v in r.items() if k not in TIMED} for r in csv.DictReader(fh)]

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("ledger", "outputs", "authentication", "batches"):
        summary.pop(key)
    proofs = [{k: v for k, v in json.loads(line).items() if k not in TIMED}
              for line in (out / "payment-proofs.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"stats": {k: getattr(stats, k) for k in STATS}, "batches": len(stats.batches),
            "refusals.csv": (out / "refusals.csv").read_bytes(), "refusals.json": (out / "refusals.json").read_bytes(),
            "orders": rows("payment-orders.csv"), "totals": rows("totals.csv"), "proofs": proofs, "summary": summary}
