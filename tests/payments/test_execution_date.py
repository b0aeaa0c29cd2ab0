"""The requested execution date of a pain.001 is the day of the run, not the day of --as-of."""

from __future__ import annotations

import datetime as dt

from conformity.xmlsafe import parse_xml
from tests.payments.builders import events_for, installation
from tests.payments.workspace import Workspace

PAIN = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}"


def execution_date(ws: Workspace, as_of: str) -> tuple[str, set[str]]:
    before = dt.datetime.now(dt.UTC).date()
    r = ws.run(ws.events(f"e{ws.runs}.jsonl", events_for(installation(f"75010001{ws.runs}", "M"), 5)), as_of=as_of)
    after = dt.datetime.now(dt.UTC).date()
    assert r.returncode == 0, r.stderr
    [path] = r.pain_files()
    doc = parse_xml(path.read_bytes(), source=str(path))
    return doc.findtext(f".//{PAIN}ReqdExctnDt/{PAIN}Dt"), {before.isoformat(), after.isoformat()}


def test_an_as_of_in_the_past_orders_for_today_not_for_a_past_day(ws: Workspace) -> None:
    """Before, the run paying events as of 2026-06-30 asked the bank to execute on 2026-06-30: a past date."""
    ws.label()
    date, today = execution_date(ws, "2026-06-30T00:00:00Z")
    assert date in today


def test_an_as_of_in_the_future_does_not_delay_the_payment(ws: Workspace) -> None:
    ws.label()
    date, today = execution_date(ws, "2027-06-30T23:59:59Z")
    assert date in today
