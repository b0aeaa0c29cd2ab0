"""Every refusal reason, each from a bad input of its own, as `usine pay run` reports it (CSV and JSON)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformity.segments import seal_file
from tests.payments.builders import (
    AGENCY,
    FORGER,
    INFRA,
    T0,
    event,
    events_for,
    installation,
    label_fields,
    revocation,
    signed_label,
    tampered,
)
from tests.payments.mixed import same_data
from tests.payments.workspace import REPO, Workspace, ledger_state

DAY = dt.timedelta(days=1)
HOSPITAL_M = installation("750100011", "M")


def only(r: Any, reason: str, kind: str = "event") -> list[dict[str, Any]]:
    return [x for x in r.refusals if x["kind"] == kind and x["reason"] == reason]


def test_refusal_csv_and_json_say_the_same(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", ["nope", *events_for(HOSPITAL_M, 2)])
    r = ws.run(f)
    rows = r.csv("refusals.csv")
    assert [(x["kind"], x["reason"], x["line"]) for x in rows] == \
        [(x["kind"], x["reason"], str(x["line"] or "")) for x in r.refusals]
    doc = json.loads((r.out / "refusals.json").read_text())
    assert doc["format"] == "usine.refusals/1" and doc["counts"]["event"] == {"malformed": 1}
    assert doc["counts"]["installation"] == {"threshold-not-met": 1}


# ---------------------------------------------------------------------------------------------- malformed
def test_malformed_lines_are_reported_with_file_and_line_number(ws: Workspace) -> None:
    ws.label()
    good = events_for(HOSPITAL_M, 5)
    path = ws.root / "events" / "mixed.jsonl"
    path.parent.mkdir(parents=True)
    lines = [json.dumps(good[0]).encode(), b"{not json", b"", b"[1, 2, 3]", json.dumps(good[1]).encode(),
             b'{"specversion": "1.0", "x": NaN}', b"\xff\xfe not utf-8", json.dumps(good[2]).encode(),
             b'"just a string"', b"{" + b" " * (1 << 20) + b"}", json.dumps(good[3]).encode(),
             json.dumps(good[4]).encode()[:-7]]  # a truncated last line, no newline
    path.write_bytes(b"\n".join(lines))
    seal_file(path, INFRA)  # the infrastructure vouches for these bytes, bad lines included
    r = ws.run(path)
    assert r.returncode == 0, r.stderr
    bad = only(r, "malformed")
    assert [(x["file"], x["line"]) for x in bad] == [(str(path), n) for n in (2, 4, 6, 7, 9, 10)]
    # the truncated last line has no LF: no segment can cover it
    assert [(x["line"], x["reason"]) for x in r.refusals if x["line"] == 12] == [(12, "event-unsigned")]
    details = [x["detail"] for x in bad]
    assert "not valid JSON" in details[0] and "not a JSON object" in details[1] and "NaN" in details[2]
    assert "not UTF-8" in details[3] and "longer than" in details[5]
    assert r.summary["events_counted"] == 4 and r.summary["installations_paid"] == 0


def test_a_repeated_key_is_malformed_not_read_one_way(ws: Workspace) -> None:
    """A line naming a member twice means one thing to a parser that keeps the last and another to one that keeps the
    first (an auditor re-reading the proofs): such a line is refused, never counted as whichever one usine read."""
    ws.label()
    good = events_for(HOSPITAL_M, 6)
    lines = [json.dumps(e, separators=(",", ":")) for e in good]
    lines[1] = lines[1].replace('"data":{', '"data":{"site":{"id":"130300033","size":"S","name":"Other"},', 1)
    lines[3] = lines[3][:-1] + f',"id":{json.dumps(good[4]["id"] + "-again")}}}'
    r = ws.run(ws.events("e.jsonl", lines))
    assert r.returncode == 0, r.stderr
    bad = only(r, "malformed")
    assert [x["line"] for x in bad] == [2, 4], r.refusals
    assert all("appears twice" in x["detail"] for x in bad), bad
    assert r.summary["events_counted"] == 4 and r.summary["installations_paid"] == 0


# ---------------------------------------------------------------------------------------------- envelope
DROP = object()  # the member is removed

#: one bad envelope a name: the members it sets (DROP: removes), in order
ENVELOPE_CHANGES: dict[str, dict[str, Any]] = {
    "specversion-0.3": {"specversion": "0.3"},
    "no-id": {"id": DROP},
    "empty-source": {"source": ""},
    "other-type": {"type": "com.example.something"},
    "data-base64": {"data_base64": "e30=", "data": DROP},
    "data-and-data-base64": {"data_base64": "e30="},
    "bad-extension-name": {"traceParent": "00-abc"},
    "extension-object": {"partner": {"nested": True}},
    "time-not-rfc3339": {"time": "01/06/2026 09:00"},
    "no-time": {"time": DROP},
    "subject-differs": {"subject": "ins_other"},
    "xml-content": {"datacontenttype": "text/xml"},
    "dataschema-relative": {"dataschema": "schemas/data.json"},
}


def _change(doc: dict[str, Any], members: dict[str, Any]) -> None:
    """Set (or, for DROP, remove) each member of ``doc`` in place; a dotted name reaches into a nested object."""
    for name, value in members.items():
        *parents, last = name.split(".")
        target = doc
        for parent in parents:
            target = target[parent]
        if value is DROP:
            del target[last]
        else:
            target[last] = value


@pytest.mark.parametrize("change", list(ENVELOPE_CHANGES))
def test_wrong_envelope(ws: Workspace, change: str) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 5)
    events[2] = copy.deepcopy(events[2])
    _change(events[2], ENVELOPE_CHANGES[change])
    r = ws.run(ws.events("e.jsonl", events))
    bad = only(r, "wrong-envelope")
    assert [(x["line"], x["file"]) for x in bad] == [(3, str(ws.root / "events" / "e.jsonl"))], r.refusals
    assert r.summary["installations_paid"] == 0  # 4 good events of 5 needed


def test_an_accepted_extension_attribute_is_fine(ws: Workspace) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 5)
    for ev in events:
        ev["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = ws.run(ws.events("e.jsonl", events))
    assert r.summary["installations_paid"] == 1 and r.refusals == []


#: one invalid event data a name: the members of ``data`` it sets (DROP: removes)
DATA_CHANGES: dict[str, dict[str, Any]] = {
    "missing-reference": {"reference": DROP},
    "bad-size": {"site.size": "medium"},
    "bad-kind": {"kind": "fax"},
    "extra-key": {"price": 1_000_000},
    "negative-bytes": {"bytes": -1},
}


@pytest.mark.parametrize("change", list(DATA_CHANGES))
def test_invalid_data(ws: Workspace, change: str) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 5)
    _change(events[0]["data"], DATA_CHANGES[change])
    r = ws.run(ws.events("e.jsonl", events))
    bad = only(r, "invalid-data")
    assert len(bad) == 1 and bad[0]["line"] == 1 and bad[0]["event_id"] == events[0]["id"]
    assert r.summary["installations_paid"] == 0


# ---------------------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("how", ["forged", "unsigned", "edited-after-signing", "not-a-label"])
def test_label_invalid(ws: Workspace, how: str) -> None:
    if how == "forged":
        doc = ws.label(key=FORGER)
    else:
        label = signed_label()
        doc = label.doc
        if how == "unsigned":
            content: Any = doc
        elif how == "edited-after-signing":
            content = tampered(label.signed, versions=["3.2", "9.9"])
        else:
            content = AGENCY.sign_document({**doc, "format": "usine.bundle/1"})
        (ws.labels / f"{doc['label_id']}.json").write_text(json.dumps(content))
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 5)))
    assert r.returncode == 0, r.stderr
    files = only(r, "label-invalid", kind="label")
    assert [x["file"] for x in files] == [str(ws.labels / f"{doc['label_id']}.json")]
    assert r.reasons() == {"label-invalid": 5}
    assert r.summary["installations_paid"] == 0


@pytest.mark.parametrize("target", ["loop.json", "missing.json"])
def test_a_label_link_to_nothing_is_a_refused_label_file(ws: Workspace, target: str) -> None:
    """A symbolic link among the labels that leads nowhere (a loop, a missing file): a label file refused, saying
    so; the run goes on (no traceback)."""
    ws.label()
    (ws.labels / "loop.json").symlink_to(target)
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 5)))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    [refused] = only(r, "label-invalid", kind="label")
    assert refused["file"] == str(ws.labels / "loop.json") and "symbolic link" in refused["detail"]
    assert r.summary["installations_paid"] == 1


def test_no_label(ws: Workspace) -> None:
    ws.label()  # for acme-ehr, not for the other software
    other = installation("750100011", software="other-ehr", vendor="other")
    r = ws.run(ws.events("e.jsonl", events_for(other, 5) + events_for(HOSPITAL_M, 5)))
    assert r.reasons() == {"no-label": 5} and r.summary["installations_paid"] == 1
    assert "no valid label for vendor other, software other-ehr" in only(r, "no-label")[0]["detail"]


def test_label_of_another_vendor_does_not_cover(ws: Workspace) -> None:
    ws.label(vendor="impostor")
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 5)))
    assert r.reasons() == {"no-label": 5}


def test_version_not_covered(ws: Workspace) -> None:
    ws.label(versions=("3.1", "3.2"))
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", version="3.3"), 5)))
    assert r.reasons() == {"version-not-covered": 5}


def test_label_revoked_after_some_events(ws: Workspace) -> None:
    doc = ws.label()
    revoked_at = T0 + DAY * 2 + dt.timedelta(hours=1)  # after the 3rd daily event
    ws.revoke(revocation(doc["label_id"], revoked_at))
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 6)))
    assert r.reasons() == {"label-revoked": 3} and r.summary["events_counted"] == 3
    assert r.reasons("installation") == {"threshold-not-met": 1}


def test_revocation_list_that_does_not_verify_stops_the_run(ws: Workspace) -> None:
    doc = ws.label()
    ws.revoke(revocation(doc["label_id"], "2026-06-01T00:00:00Z", reason="x"), key=FORGER)
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 5)))
    assert r.returncode == 2 and "revocations.json" in r.stderr and "untrusted key" in r.stderr
    assert not ws.ledger.exists()  # stopped before touching the ledger


def test_label_expired(ws: Workspace) -> None:
    ws.label(expires="2026-06-03")  # valid through June 3rd: events of June 1-3 count
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 6)))
    assert r.reasons() == {"label-expired": 3} and r.summary["events_counted"] == 3


def test_label_not_yet_valid(ws: Workspace) -> None:
    ws.label(issued="2026-06-03T00:00:00Z")
    r = ws.run(ws.events("e.jsonl", events_for(HOSPITAL_M, 7)))
    assert r.reasons() == {"label-not-yet-valid": 2} and r.summary["installations_paid"] == 1


def test_a_later_run_with_the_missing_label_counts_refused_events(ws: Workspace) -> None:
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))
    r1 = ws.run(f)
    assert r1.reasons() == {"no-label": 5}
    ws.label()
    r2 = ws.run(f)
    assert r2.summary["installations_paid"] == 1 and r2.reasons() == {}


# ---------------------------------------------------------------------------------------------- the event itself
def test_unknown_wave(ws: Workspace) -> None:
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", wave="2031-W9"), 2)))
    assert r.reasons() == {"unknown-wave": 2}
    assert "'2031-W9' is not in the catalog" in r.refusals[0]["detail"]


def test_future_dated_events_are_counted_by_a_later_run(ws: Workspace) -> None:
    ws.label()
    f = ws.events("e.jsonl", events_for(HOSPITAL_M, 5))
    r1 = ws.run(f, as_of="2026-06-03T12:00:00Z")
    assert r1.reasons() == {"future-dated": 2} and r1.summary["events_counted"] == 3
    r2 = ws.run(f, as_of="2026-06-30T00:00:00Z")
    assert r2.reasons() == {"duplicate-event": 3} and r2.summary["installations_paid"] == 1


def test_duplicate_event_in_one_file(ws: Workspace) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 4)
    r = ws.run(ws.events("e.jsonl", [*events, events[1], events[1]]))
    dup = only(r, "duplicate-event")
    assert [x["line"] for x in dup] == [5, 6] and "line 2" in dup[0]["detail"]
    assert r.summary["installations_paid"] == 0  # 4 distinct events, 5 needed


def test_conflicting_duplicate_same_id_different_content(ws: Workspace) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 5)
    twin = copy.deepcopy(events[4])
    twin["data"]["bytes"] += 1
    r = ws.run(ws.events("e.jsonl", [*events[:4], twin, events[4]]))
    conflict = only(r, "conflicting-duplicate")
    assert [x["line"] for x in conflict] == [6] and "line 5" in conflict[0]["detail"]
    assert r.summary["installations_paid"] == 1


def test_same_content_reserialized_is_a_duplicate_not_a_conflict(ws: Workspace) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 5)
    reordered = json.dumps(dict(reversed(list(events[0].items()))), indent=None)
    r = ws.run(ws.events("e.jsonl", [*events, reordered]))
    assert r.reasons() == {"duplicate-event": 1}


def test_outside_the_funding_window(ws: Workspace) -> None:
    ws.label(issued="2026-01-01T00:00:00Z")  # 2026-W1 funding window: 2026-03-01 to 2027-12-31
    early = events_for(HOSPITAL_M, 5, start=dt.datetime(2026, 2, 20, tzinfo=dt.UTC))
    r = ws.run(ws.events("e.jsonl", early), as_of="2028-06-01T00:00:00Z")
    assert r.reasons() == {"outside-window": 5}
    late = events_for(HOSPITAL_M, 5, start=dt.datetime(2028, 1, 1, tzinfo=dt.UTC), first=10)
    r2 = ws.run(ws.events("late.jsonl", late), as_of="2028-06-01T00:00:00Z")
    assert r2.reasons() == {"outside-window": 5}
    assert "outside the funding window 2026-03-01 to 2027-12-31" in r2.refusals[0]["detail"]


def test_no_price_for_the_site_size(ws: Workspace) -> None:
    ws.label()
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", "XL"), 5)))
    assert r.reasons() == {"no-price": 5}


def test_kind_or_document_type_not_counted_by_the_rule(ws: Workspace) -> None:
    ws.label(vendor="medilab", software="medilab-lab", category="LAB", versions=("1.0",))
    lab = installation("111000001", "S", vendor="medilab", software="medilab-lab", category="LAB", version="1.0")
    messages = events_for(lab, 3, kind="message", document_type=None)  # LAB counts documents of type 11502-2 only
    other_type = events_for(lab, 3, first=10, document_type="34106-7")
    r = ws.run(ws.events("e.jsonl", messages + other_type))
    assert r.reasons() == {"not-proof-of-use": 6}



def test_data_without_a_document_type_is_refused_as_such(ws: Workspace) -> None:
    """A message carrying no typed document (its event's document_type null), of a kind the rule counts when typed
    (2026-W1 HOSPITAL: messages and documents of three types), was refused as of "document type None"."""
    ws.label(category="HOSPITAL", versions=("1.0",))
    hospital = installation("111000002", "S", category="HOSPITAL", version="1.0")
    untyped = events_for(hospital, 2, kind="message", document_type=None)
    other_type = events_for(hospital, 2, first=10, document_type="00000-0")
    r = ws.run(ws.events("e.jsonl", untyped + other_type))
    assert r.reasons() == {"not-proof-of-use": 4}
    details = sorted({refusal["detail"] for refusal in r.refusals})
    assert details == ["document type 00000-0 is not counted for HOSPITAL (counted: 34106-7, 11502-2, 18748-4)",
                       "message data with no document type is not counted for HOSPITAL (counted: documents of "
                       "type 34106-7, 11502-2, 18748-4)"], details


def test_inconsistent_installation(ws: Workspace) -> None:
    ws.label()
    first = events_for(installation("750100011", "S"), 3)
    bigger = events_for(installation("750100011", "L"), 3, start=T0 + DAY * 3, first=3)
    r = ws.run(ws.events("e.jsonl", first + bigger))
    assert r.reasons() == {"inconsistent-installation": 3}
    assert "site size 'L' differs from the installation's 'S'" in r.refusals[0]["detail"]


@pytest.mark.parametrize(("site", "spelling"), [
    ("750100011", " 750100011"), ("750100011", "750100011 "), ("750100011", "750100011\t"),
    ("750100011", "750100011\u200b"), ("750100011", "\uff17\uff15\uff10\uff11\uff10\uff10\uff10\uff11\uff11"),
    ("750100011", "7501000\u0661\u0661"), ("2A0100011", "2a0100011"), ("2A0100011", "2\u0391\u0030100011")])
def test_a_site_spelled_another_way_is_refused_never_paid_as_another_installation(ws: Workspace, site: str,
                                                                                     spelling: str) -> None:
    """A vendor's software reporting the same site under another spelling (spaces, invisible or full-width
    characters, other digits, lower case, a look-alike letter) would otherwise be a second installation, paid twice."""
    ws.label()
    twin = installation(spelling, "M")
    r = ws.run(ws.events("e.jsonl", events_for(installation(site, "M"), 5) + events_for(twin, 5, first=100)))
    assert r.returncode == 0, r.stderr
    assert [o["site_id"] for o in r.orders] == [site]
    bad = only(r, "invalid-data")
    assert len(bad) == 5 and all(x["detail"].startswith("site.id: ") for x in bad), bad[:1]


@pytest.mark.parametrize("order", ["padded-first", "padded-later", "later-run"])
def test_a_site_id_with_leading_zeros_added_or_dropped_is_the_same_site(ws: Workspace, order: str) -> None:
    """Site ids that differ only by leading zeros are one site (no identifier scheme holds both): the spelling
    seen second is an inconsistent installation, never a second one paid again."""
    ws.label()
    plain = events_for(installation("750100011", "M"), 5)
    padded = events_for(installation("00750100011", "M"), 5, first=100)
    first, second = (padded, plain) if order == "padded-first" else (plain, padded)
    if order == "later-run":
        r = ws.run(ws.events("a.jsonl", first))
        assert [o["site_id"] for o in r.orders] == ["750100011"]
        r = ws.run(ws.events("b.jsonl", second))
        assert r.orders == [] or all(o["site_id"] == "750100011" for o in r.orders)
        assert r.summary["installations_paid"] == 0
    else:
        r = ws.run(ws.events("e.jsonl", first + second))
        assert [o["site_id"] for o in r.orders] == [first[0]["data"]["site"]["id"]]
    bad = only(r, "inconsistent-installation")
    assert len(bad) == 5, r.refusals
    assert "site id" in bad[0]["detail"] and "differs from the installation's" in bad[0]["detail"], bad[0]


# ---------------------------------------------------------------------------------------------- installations, orders
@pytest.fixture
def small_cap(tmp_path: Path) -> Path:
    """A catalog whose 2026-W1 cap per software is 160,000 euros."""
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "referentials", root / "referentials")
    shutil.copytree(REPO / "waves", root / "waves")
    wave = root / "waves" / "2026-W1.toml"
    text = wave.read_text(encoding="utf-8")
    assert "cap_per_software = 8_000_000" in text
    wave.write_text(text.replace("cap_per_software = 8_000_000", "cap_per_software = 160_000"), encoding="utf-8")
    return root


def test_cap_reached_leaves_the_installation_unpaid(ws: Workspace, small_cap: Path) -> None:
    ws.catalog = small_cap
    ws.label()
    sites = [installation(f"75010001{i}", "M") for i in range(3)]  # 3 x 62,000 > 160,000
    events = [ev for i, s in enumerate(sites) for ev in events_for(s, 5, start=T0 + DAY * 10 * i)]
    r = ws.run(ws.events("e.jsonl", events))
    assert [o["site_id"] for o in r.orders] == ["750100010", "750100011"]  # first proven, first paid
    capped = only(r, "cap-reached", kind="installation")
    assert [x["site_id"] for x in capped] == ["750100012"]
    assert "124000.00 EUR paid of its cap 160000.00" in capped[0]["detail"]
    small = events_for(installation("750100019", "S"), 5, start=T0 + DAY * 40)  # 28,000 still fits the cap
    r2 = ws.run(ws.events("more.jsonl", small))
    assert [o["site_id"] for o in r2.orders] == ["750100019"]
    assert [x["site_id"] for x in only(r2, "cap-reached", kind="installation")] == ["750100012"]


def test_orders_without_bank_details_are_held_and_reported_then_ordered(ws: Workspace, tmp_path: Path) -> None:
    ws.label(vendor="newcomer", software="new-ehr")
    inst = installation("750100011", "M", vendor="newcomer", software="new-ehr")
    f = ws.events("e.jsonl", events_for(inst, 5))
    r1 = ws.run(f)
    assert [(o["status"], o["msg_id"], o["iban"]) for o in r1.orders] == [("held", "", "")]
    held = only(r1, "no-bank-details", kind="order")
    assert len(held) == 1 and held[0]["vendor_id"] == "newcomer" and r1.pain_files() == []
    payees = tmp_path / "payees.toml"
    payees.write_text('format = "usine.payees/1"\n[vendors.newcomer]\nname = "Newcomer SAS"\n'
                      'iban = "FR76 3000 4000 0312 3456 7890 143"\nbic = "BNPAFRPPXXX"\n', encoding="utf-8")
    ws.payees = payees
    r2 = ws.run(f)
    assert [(o["status"], o["iban"], o["amount"]) for o in r2.orders] == \
        [("ordered", "FR7630004000031234567890143", "62000.00")]
    assert len(r2.pain_files()) == 1 and r2.summary["installations_paid"] == 0  # paid once, in run 1


def test_a_vendor_s_iban_changed_since_its_last_order_is_held_until_confirmed(ws: Workspace, tmp_path: Path) -> None:
    """Bank details swapped in the payees file (a forged "our account changed" letter) never redirect a payment
    silently: the vendor's orders are held, saying both accounts, until the agency confirms the new one."""
    ws.label()
    r1 = ws.run(ws.events("a.jsonl", events_for(HOSPITAL_M, 5)))
    assert [(o["status"], o["iban"]) for o in r1.orders] == [("ordered", "FR7630004000031234567890143")]
    swapped = tmp_path / "payees.toml"
    swapped.write_text(ws.payees.read_text(encoding="utf-8").replace(  # type: ignore[union-attr]
        'iban = "FR7630004000031234567890143"', 'iban = "FR7610011000201234567890188"'), encoding="utf-8")
    ws.payees = swapped
    f2 = ws.events("b.jsonl", events_for(installation("690200022", "L"), 5))
    r2 = ws.run(f2)
    assert r2.returncode == 0, r2.stderr
    assert [(o["status"], o["iban"], o["site_id"]) for o in r2.orders] == [("held", "", "690200022")]
    assert r2.pain_files() == [] and r2.summary["orders_held"] == 1
    held = only(r2, "bank-details-changed", kind="order")
    assert len(held) == 1 and held[0]["vendor_id"] == "acme", r2.refusals
    assert "FR7610011000201234567890188" in held[0]["detail"] and "FR7630004000031234567890143" in held[0]["detail"]
    assert "--confirm-iban acme=FR7610011000201234567890188" in held[0]["detail"]
    r3 = ws.run(f2, extra=("--confirm-iban", "acme=FR7610011000201234567890188"))
    assert r3.returncode == 0, r3.stderr
    assert [(o["status"], o["iban"]) for o in r3.orders] == [("ordered", "FR7610011000201234567890188")]
    assert len(r3.pain_files()) == 1
    r4 = ws.run(ws.events("c.jsonl", events_for(installation("130300033", "S"), 5)))  # the new account, now known
    assert [(o["status"], o["iban"]) for o in r4.orders] == [("ordered", "FR7610011000201234567890188")]


# ---------------------------------------------------------------------------------------------- bad command inputs
def test_no_agency_key_exits_2(ws: Workspace) -> None:
    args = ws.args((ws.events("e.jsonl", []),), ws.root / "o", "2027-01-01T00:00:00Z", "2026-W1")
    i = args.index("--agency-key")
    del args[i:i + 2]
    env = {k: v for k, v in os.environ.items() if k != "USINE_AGENCY_PUBKEY"}
    proc = subprocess.run([sys.executable, "-m", "conformity", *args], capture_output=True, text=True, check=False,
                          env=env)
    assert proc.returncode == 2 and "no agency key" in proc.stderr


def test_a_second_run_on_a_busy_ledger_exits_3(ws: Workspace) -> None:
    from conformity.payments.ledger import Ledger

    with Ledger(ws.ledger):
        r = ws.run(ws.events("e.jsonl", []))
    assert r.returncode == 3 and "is in use by a run starting since" in r.stderr


def test_bad_payees_file_exits_2_with_every_problem(ws: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "payees.toml"
    bad.write_text('format = "usine.payees/1"\n[vendors.a]\nname = "A"\niban = "FR7630004000031234567890144"\n'
                   'bic = "BNPAFRPP"\n[vendors.b]\nname = "B"\niban = "FR76"\nbic = "nope"\n', encoding="utf-8")
    ws.payees = bad
    r = ws.run(ws.events("e.jsonl", []))
    assert r.returncode == 2
    assert "vendors.a.iban" in r.stderr and "check digits" in r.stderr
    assert "vendors.b.iban" in r.stderr and "vendors.b.bic" in r.stderr


def test_unknown_wave_option_exits_2(ws: Workspace) -> None:
    r = ws.run(ws.events("e.jsonl", []), wave="2099-W1")
    assert r.returncode == 2 and "unknown wave '2099-W1'" in r.stderr


def test_not_a_ledger_exits_2(ws: Workspace) -> None:
    ws.ledger.write_bytes(b"this is not SQLite at all, just some bytes" * 100)
    r = ws.run(ws.events("e.jsonl", []))
    assert r.returncode == 2 and str(ws.ledger) in r.stderr


def test_one_event_builder_sanity() -> None:
    ev = event(HOSPITAL_M, T0, 1)
    assert ev["id"] == "evt-acme-ehr-750100011-1" and ev["data"]["site"]["size"] == "M"
    assert label_fields()["wave"] == "2026-W1"


# ---------------------------------------------------------------------------------------------- the same data again
def test_the_same_data_under_distinct_ids_counts_once(ws: Workspace) -> None:
    """Proof of use asks for N distinct pieces of data: five events of one installation carrying the same data
    (its sha256) under five ids are one piece, never a payment; five distinct pieces are."""
    ws.label()
    events = events_for(HOSPITAL_M, 5)  # HOSPITAL: 5 counted events within 30 days
    r = ws.run(ws.events("copies.jsonl", same_data(events, events[0])))
    assert r.reasons() == {"duplicate-data": 4} and r.summary["events_counted"] == 1
    assert r.summary["installations_paid"] == 0
    dup = only(r, "duplicate-data")
    assert [x["line"] for x in dup] == [2, 3, 4, 5]  # the first copy read counts
    assert events[0]["data"]["sha256"] in dup[0]["detail"] and events[0]["id"] in dup[0]["detail"]
    other = ws.run(ws.events("distinct.jsonl", events_for(installation("690200022", "M"), 5)))
    assert other.reasons() == {} and other.summary["installations_paid"] == 1


def test_the_same_data_from_another_installation_is_its_own(ws: Workspace) -> None:
    ws.label()
    mine, theirs = events_for(HOSPITAL_M, 5), events_for(installation("690200022", "M"), 5)
    r = ws.run(ws.events("e.jsonl", [*mine, *same_data(theirs, mine[0])[:1], *theirs[1:]]))
    assert r.reasons() == {} and r.summary["installations_paid"] == 2


def test_the_same_data_in_a_later_run_is_refused(ws: Workspace) -> None:
    ws.label()
    events = events_for(HOSPITAL_M, 6)
    r1 = ws.run(ws.events("day1.jsonl", events[:4]))
    assert r1.summary["events_counted"] == 4 and r1.summary["installations_paid"] == 0
    copy_of_first = same_data(events[4:5], events[0])  # a new id, a later time, the data of the first
    r2 = ws.run(ws.events("day2.jsonl", copy_of_first))
    assert r2.reasons() == {"duplicate-data": 1} and r2.summary["installations_paid"] == 0
    assert events[0]["id"] in only(r2, "duplicate-data")[0]["detail"]
    r3 = ws.run(ws.events("day2.jsonl", copy_of_first))  # presented again: judged again (as refused events are), refused
    assert r3.reasons() == {"duplicate-data": 1} and r3.summary["installations_paid"] == 0
    r4 = ws.run(ws.events("day3.jsonl", events[5:6]))  # a fifth distinct piece of data
    assert r4.reasons() == {} and r4.summary["installations_paid"] == 1


@pytest.mark.parametrize("every", [1, 2, 50_000])
def test_the_same_data_across_batches_and_files_of_one_run(ws: Workspace, every: int) -> None:
    """Copies in later batches of a file, and in a later file of the same run, are refused like copies in one batch."""
    ws.label()
    events = events_for(HOSPITAL_M, 8)
    first = ws.events("a.jsonl", [*events[:3], *same_data(events[3:5], events[1])], every=1)
    second = ws.events("b.jsonl", [*same_data(events[5:7], events[2]), events[7]], every=1)
    stats = ws.run_inproc(first, second, commit_every=every)
    assert stats.counted == 4  # events 0, 1, 2 and 7: four distinct pieces of data, five needed
    state = ledger_state(ws.ledger)
    assert state["payments"] == []
    ((*_, status, counted, _best, _q_time, _q_source, _q_id),) = state["installations"]
    assert (status, counted) == ("pending", 4)
