"""Payment orders: CSV (csv module), ISO 20022 pain.001.001.09 credit transfers (lxml, streamed), totals, proofs.

One credit transfer per paid installation; one pain.001 message per batch, named by its MsgId. The
payer (debtor) is the payment agency, the payees (creditors) are the vendors. Orders whose vendor
has no bank details are *held*: listed in the CSV and the refusal report, never in a pain.001 file.
Every text field of the pain.001 keeps to the EPC rules (:mod:`conformity.payments.epc`: Latin
character set, names 70, remittance 140, identifiers 35 characters); the CSV keeps the text as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lxml import etree

from conformity.csvcells import Figure, Writer
from conformity.payments.envelope import format_us
from conformity.payments.epc import ID_MAX, NAME_MAX, REMITTANCE_MAX, epc_id, epc_text
from conformity.payments.files import atomic_output
from conformity.payments.payees import Account

PAIN_VERSION = "pain.001.001.09"
PAIN_NS = f"urn:iso:std:iso:20022:tech:xsd:{PAIN_VERSION}"
ORDERS_CSV, TOTALS_CSV, PROOFS_JSONL = "payment-orders.csv", "totals.csv", "payment-proofs.jsonl"
ORDER_COLUMNS = ("status", "msg_id", "end_to_end_id", "payment_id", "wave", "vendor_id", "vendor_name", "software_id",
                 "software_name", "site_id", "site_name", "category", "site_size", "amount", "currency",
                 "creditor_name", "iban", "bic", "label_id", "qualified_at", "created")
TOTAL_COLUMNS = ("wave", "vendor_id", "vendor_name", "currency", "paid_this_run", "amount_this_run", "paid_total",
                 "amount_total", "held", "amount_held")


def amount(cents: int) -> str:
    """Cents as a decimal amount with two fraction digits."""
    return f"{cents // 100}.{cents % 100:02d}"


def end_to_end_id(payment: dict[str, Any]) -> str:
    """The transfer's end-to-end reference: wave and payment number, at most 35 characters. The payment number (one
    per payment of the ledger) is kept whole, the wave id cut if need be: cutting the whole reference at 35, as the
    EPC rule does, would give every payment of a long wave id the same reference."""
    number = f"-P{payment['id']:09d}"
    return f"{payment['wave'][:max(ID_MAX - len(number), 0)]}{number}"


def pain_file_name(msg_id: str) -> str:
    return f"pain001-{msg_id}.xml"


def order_row(payment: dict[str, Any], status: str) -> list[Any]:
    """A payment as a row of the orders CSV (text from outside as it is: the writer neutralises formulas)."""
    return [status, payment.get("msg_id") or "", end_to_end_id(payment), payment["id"], payment["wave"],
            payment["vendor_id"], payment["vendor_name"], payment["software_id"], payment["software_name"],
            payment["site_id"], payment["site_name"], payment["category"], payment["site_size"],
            Figure(amount(payment["amount_cents"])), payment["currency"], payment["creditor_name"] or "",
            payment["iban"] or "", payment["bic"] or "", payment["label_id"], format_us(payment["qualified_time"]),
            payment["created"]]


def write_orders_csv(path: Path, rows: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """(status, payment) rows as the orders CSV; returns how many."""
    n = 0
    with atomic_output(path, encoding="utf-8", newline="") as fh:
        writer = Writer(fh)
        writer.writerow(ORDER_COLUMNS)
        for status, payment in rows:
            writer.writerow(order_row(payment, status))
            n += 1
    return n


def write_totals_csv(path: Path, wave: str, totals: Iterable[tuple[Any, ...]]) -> None:
    with atomic_output(path, encoding="utf-8", newline="") as fh:
        writer = Writer(fh)
        writer.writerow(TOTAL_COLUMNS)
        for vendor, name, currency, n_run, c_run, n_all, c_all, n_held, c_held in totals:
            writer.writerow([wave, vendor, name, currency, n_run, Figure(amount(c_run)), n_all, Figure(amount(c_all)),
                             n_held, Figure(amount(c_held))])


#: characters that ``json.dumps(ensure_ascii=False)`` leaves as they are but that end a line for ``str.splitlines``,
#: JavaScript before ES2019 or a Unicode-aware reader (next line, line and paragraph separators, the file, group and
#: record separators, vertical tab and form feed are escaped by ``json.dumps`` already)
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON in UTF-8: no character of it ends a line for any reader."""
    return json.dumps(obj, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


def write_proofs(path: Path, items: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    """One JSON line per payment: the payment and the CloudEvents that proved it, as received."""
    with atomic_output(path, encoding="utf-8") as fh:
        for payment, events in items:
            fh.write(json_line({
                "payment_id": payment["id"], "end_to_end_id": end_to_end_id(payment), "msg_id": payment.get("msg_id"),
                "wave": payment["wave"], "vendor_id": payment["vendor_id"], "software_id": payment["software_id"],
                "site_id": payment["site_id"], "amount": amount(payment["amount_cents"]),
                "currency": payment["currency"], "label_id": payment["label_id"],
                "events": [json.loads(e["body"]) for e in events],
            }))


@dataclass(frozen=True, slots=True)
class El:
    """An element to write in the pain.001 namespace: tag, text or children, attributes."""

    tag: str
    content: str | Sequence[El]
    attrib: Mapping[str, str] = field(default_factory=dict)


def _emit(xf: Any, el: El) -> None:
    with xf.element(f"{{{PAIN_NS}}}{el.tag}", dict(el.attrib)):
        if isinstance(el.content, str):
            xf.write(el.content)
        else:
            for child in el.content:
                _emit(xf, child)


def _party(tag: str, name: str) -> El:
    return El(tag, [El("Nm", epc_text(name, NAME_MAX))])


def _account(tag: str, iban: str) -> El:
    return El(tag, [El("Id", [El("IBAN", iban)])])


def _agent(tag: str, bic: str) -> El:
    return El(tag, [El("FinInstnId", [El("BICFI", bic)])])


def _transaction(payment: dict[str, Any]) -> El:
    remittance = (f"usine {payment['wave']} {payment['category']}/{payment['site_size']} "
                  f"software {payment['software_id']} site {payment['site_id']} label {payment['label_id']}")
    return El("CdtTrfTxInf", [
        El("PmtId", [El("EndToEndId", epc_id(end_to_end_id(payment)))]),
        El("Amt", [El("InstdAmt", amount(payment["amount_cents"]), {"Ccy": payment["currency"]})]),
        _agent("CdtrAgt", payment["bic"]),
        _party("Cdtr", payment["creditor_name"]),
        _account("CdtrAcct", payment["iban"]),
        El("RmtInf", [El("Ustrd", epc_text(remittance, REMITTANCE_MAX))]),
    ])


def write_pain001(path: Path, batch: dict[str, Any], payer: Account, payments: Iterable[dict[str, Any]]) -> None:
    """One pain.001.001.09 message for a batch, streamed (the header totals come from the batch row)."""
    with atomic_output(path, "wb") as fh:
        _write_pain001(fh, batch, payer, payments)


def _write_pain001(fh: IO[bytes], batch: dict[str, Any], payer: Account, payments: Iterable[dict[str, Any]]) -> None:
    count, total = str(batch["transactions"]), amount(batch["total_cents"])
    with etree.xmlfile(fh, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{PAIN_NS}}}Document", nsmap={None: PAIN_NS}):
            with xf.element(f"{{{PAIN_NS}}}CstmrCdtTrfInitn"):
                _emit(xf, El("GrpHdr", [El("MsgId", epc_id(batch["msg_id"], ID_MAX)), El("CreDtTm", batch["created"]),
                                        El("NbOfTxs", count), El("CtrlSum", total), _party("InitgPty", payer.name)]))
                with xf.element(f"{{{PAIN_NS}}}PmtInf"):
                    for el in [El("PmtInfId", epc_id(batch["msg_id"], ID_MAX)), El("PmtMtd", "TRF"), El("BtchBookg", "true"),
                               El("NbOfTxs", count), El("CtrlSum", total),
                               El("PmtTpInf", [El("SvcLvl", [El("Cd", "SEPA")])]),
                               El("ReqdExctnDt", [El("Dt", batch["execution_date"])]),
                               _party("Dbtr", payer.name), _account("DbtrAcct", payer.iban),
                               _agent("DbtrAgt", payer.bic), El("ChrgBr", "SLEV")]:
                        _emit(xf, el)
                    for payment in payments:
                        _emit(xf, _transaction(payment))
