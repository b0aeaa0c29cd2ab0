"""`usine pay run` as the payment agency runs it: paid once, amounts from the wave, re-runs, later files."""

from __future__ import annotations

import datetime as dt
import sqlite3

from tests.payments.builders import T0, events_for, installation
from tests.payments.workspace import Workspace, ledger_state

DAY = dt.timedelta(days=1)


def test_happy_path_pays_each_installation_once_at_the_wave_price(ws: Workspace) -> None:
    ws.label()  # acme-ehr 3.2, HOSPITAL, 2026-W1
    ws.label(vendor="medilab", software="medilab-lab", category="LAB", versions=("1.0",))
    a, b = installation("750100011", "M"), installation("690200022", "L")
    lab = installation("111000001", "S", vendor="medilab", software="medilab-lab", category="LAB", version="1.0")
    events = events_for(a, 6) + events_for(b, 5) + events_for(lab, 3, document_type="11502-2")
    r = ws.run(ws.events("day1.jsonl", events))
    assert r.returncode == 0, r.stderr
    amounts = {(o["software_id"], o["site_id"]): (o["amount"], o["status"]) for o in r.orders}
    # 2026-W1 prices: HOSPITAL M 62,000, HOSPITAL L 115,000, LAB S 7,000 (euros)
    assert amounts == {("acme-ehr", "750100011"): ("62000.00", "ordered"),
                       ("acme-ehr", "690200022"): ("115000.00", "ordered"),
                       ("medilab-lab", "111000001"): ("7000.00", "ordered")}
    s = r.summary
    assert s["installations_paid"] == 3 and s["amount_paid"] == "184000.00" and s["events_counted"] == 14
    assert s["refusals"] == {}
    totals = {t["vendor_id"]: t for t in r.csv("totals.csv")}
    assert totals["acme"]["amount_this_run"] == "177000.00" and totals["acme"]["paid_total"] == "2"
    assert totals["medilab"]["amount_total"] == "7000.00"
    assert len(r.pain_files()) == 1
    state = ledger_state(ws.ledger)
    assert len(state["payments"]) == 3
    # each payment is recorded with the events that proved it: the rule's min_events (HOSPITAL 5, LAB 3)
    proofs = {(p[1], p[2]): [e[1] for e in p[8]] for p in state["payments"]}
    assert proofs[("acme-ehr", "750100011")] == [f"evt-acme-ehr-750100011-{i}" for i in range(5)]
    assert len(proofs[("medilab-lab", "111000001")]) == 3
    assert "paid 3 installation(s)" in r.stdout


def test_rerun_on_the_same_file_pays_nothing_twice(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(installation("750100011"), 7))
    first = ws.run(f)
    assert first.summary["installations_paid"] == 1
    before = ledger_state(ws.ledger)
    again = ws.run(f)
    assert again.returncode == 0, again.stderr
    assert again.summary["installations_paid"] == 0 and again.summary["batches"] == []
    assert again.reasons() == {"duplicate-event": 7}
    assert again.orders == [] and again.pain_files() == []
    assert ledger_state(ws.ledger)["payments"] == before["payments"]


def test_overlapping_files_pay_nothing_twice(ws: Workspace) -> None:
    ws.label()
    a, b = installation("750100011", "M"), installation("690200022", "S")
    ea, eb = events_for(a, 8), events_for(b, 8)
    first = ws.events("first.jsonl", ea[:6] + eb[:3])
    overlap = ws.events("overlap.jsonl", ea[4:] + eb[:8])
    r1 = ws.run(first)
    assert [o["site_id"] for o in r1.orders] == ["750100011"]
    r2 = ws.run(first, overlap)
    assert [(o["site_id"], o["amount"]) for o in r2.orders] == [("690200022", "28000.00")]
    assert r2.reasons() == {"duplicate-event": 9 + 2 + 3}  # first again, a's 4-5 and b's 0-2 in the overlap
    r3 = ws.run(overlap, first)
    assert r3.summary["installations_paid"] == 0
    db = sqlite3.connect(ws.ledger)
    assert db.execute("SELECT count(*), sum(amount_cents) FROM payments").fetchone() == (2, 9_000_000)


def test_threshold_not_met_then_met_by_a_later_file(ws: Workspace) -> None:
    ws.label()
    inst = installation("750100011", "L")
    events = events_for(inst, 5, every=DAY * 2)
    r1 = ws.run(ws.events("monday.jsonl", events[:3]))
    assert r1.summary["installations_paid"] == 0
    unpaid = [x for x in r1.refusals if x["kind"] == "installation"]
    assert [(x["reason"], x["site_id"]) for x in unpaid] == [("threshold-not-met", "750100011")]
    assert "at most 3 of 5 counted events within 30 days" in unpaid[0]["detail"]
    r2 = ws.run(ws.events("tuesday.jsonl", events[3:]))
    assert [(o["site_id"], o["amount"]) for o in r2.orders] == [("750100011", "115000.00")]
    assert r2.reasons("installation") == {}


def test_events_spread_wider_than_the_rule_days_do_not_pay(ws: Workspace) -> None:
    ws.label()
    inst = installation("750100011", "S")
    sparse = events_for(inst, 6, every=DAY * 8)  # 5 events span 32 days > 30
    r = ws.run(ws.events("sparse.jsonl", sparse))
    assert r.summary["installations_paid"] == 0
    assert r.reasons("installation") == {"threshold-not-met": 1}
    dense = [events_for(inst, 1, start=T0 + DAY * 8 * 2 + DAY, first=100)[0]]  # between the 3rd and 4th
    r2 = ws.run(ws.events("dense.jsonl", dense))
    assert r2.summary["installations_paid"] == 1


def test_events_of_another_known_wave_are_left_for_that_wave(ws: Workspace) -> None:
    ws.label()
    ws.label(wave="2027-W2", versions=("4.0",))
    w1 = events_for(installation("750100011"), 5)
    w2 = events_for(installation("750100011", wave="2027-W2", version="4.0"), 20,
                    start=dt.datetime(2027, 4, 1, tzinfo=dt.UTC), first=50,
                    document_type="11490-0")  # 2027-W2's HOSPITAL proof of use: the real LDL-SES code
    f = ws.events("both.jsonl", w1 + w2)
    r1 = ws.run(f)
    assert r1.summary["installations_paid"] == 1 and r1.summary["events_other_waves"] == 20
    assert r1.reasons() == {}
    r2 = ws.run(f, wave="2027-W2", as_of="2027-12-31T00:00:00Z")
    assert [(o["wave"], o["amount"]) for o in r2.orders] == [("2027-W2", "48000.00")]


def test_status_command_reads_the_ledger(ws: Workspace) -> None:
    import subprocess
    import sys

    ws.label()
    ws.run(ws.events("e.jsonl", events_for(installation("750100011"), 5)))
    proc = subprocess.run([sys.executable, "-m", "conformity", "pay", "status", "--ledger", str(ws.ledger)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "2026-W1 installations paid: 1" in proc.stdout and "62000.00 EUR" in proc.stdout


def test_events_option_takes_a_folder_of_jsonl_files(ws: Workspace) -> None:
    ws.label()
    events = events_for(installation("750100011"), 5)
    ws.events("a.jsonl", events[:2])
    ws.events("b.jsonl", events[2:])
    (ws.root / "events" / "notes.txt").write_text("not an events file")
    r = ws.run(ws.root / "events")
    assert r.returncode == 0, r.stderr
    assert r.summary["events_files"] == [str(ws.root / "events" / n) for n in ("a.jsonl", "b.jsonl")]
    assert r.summary["installations_paid"] == 1


def test_housing_events_are_paid_like_health_ones(ws: Workspace) -> None:
    """A housing-pack wave (2026-W3): DPE filings prove use of a diagnostician's software; a kind of
    another pack is invalid-data for it, and a housing kind is invalid-data for a health wave."""
    ws.label(software="acme-dpe", category="DIAGNOSTICIAN", wave="2026-W3")
    site = installation("SIRET-1", "M", software="acme-dpe", category="DIAGNOSTICIAN", wave="2026-W3")
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    dpe = events_for(site, 6, start=start, kind="dpe", document_type="DPE-2.6")
    stray = events_for(site, 1, start=start, first=100, kind="document")
    r = ws.run(ws.events("housing.jsonl", dpe + stray), wave="2026-W3")
    assert r.returncode == 0, r.stderr
    assert [(o["software_id"], o["site_id"], o["amount"]) for o in r.orders] == [("acme-dpe", "SIRET-1", "1800.00")]
    assert r.summary["events_counted"] == 6
    [refused] = [x for x in r.refusals if x["kind"] == "event"]
    assert refused["reason"] == "invalid-data" and refused["event_id"] == "evt-acme-dpe-SIRET-1-100"
    assert "kind 'document' is not a data kind of the wave's pack (consumption_transfer, dpe, quote, works)" == \
        refused["detail"]
    health = ws.run(ws.events("stray.jsonl", events_for(installation("750100011"), 1, kind="dpe")))
    assert health.reasons() == {"invalid-data": 1}


def test_an_adviser_is_paid_for_consumption_transfers_never_for_dpes(ws: Workspace) -> None:
    """QA: an ADVISER installation was paid for DPEs, a kind its label does not cover (it fell back on the wave's
    default rule). Its rule now counts only what its label covers: consumption transfers (CONSENT)."""
    ws.label(software="acme-adv", category="ADVISER", wave="2026-W3")
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    filing = installation("SIRET-A", "S", software="acme-adv", category="ADVISER", wave="2026-W3")
    transferring = installation("SIRET-B", "S", software="acme-adv", category="ADVISER", wave="2026-W3")
    events = events_for(filing, 6, start=start, kind="dpe", document_type=None) + \
        events_for(filing, 6, start=start, first=10, kind="quote", document_type=None) + \
        events_for(transferring, 5, start=start, kind="consumption_transfer", document_type=None)
    r = ws.run(ws.events("advisers.jsonl", events), wave="2026-W3")
    assert r.returncode == 0, r.stderr
    assert [(o["site_id"], o["amount"]) for o in r.orders] == [("SIRET-B", "700.00")]
    assert r.summary["installations_paid"] == 1
