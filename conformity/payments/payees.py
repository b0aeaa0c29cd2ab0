"""Bank details: the payer (the payment agency's account) and the payees (vendors' accounts), from TOML.

``payer.toml``::

    format = "usine.payer/1"
    name = "Agence de paiement"
    iban = "FR76…"
    bic = "BDFEFRPPCCT"

``payees.toml``::

    format = "usine.payees/1"
    [vendors.<vendor id>]
    name = "Account holder"
    iban = "FR76…"
    bic = "…"

IBANs are checked: an account in a SEPA country, of that country's IBAN length (SWIFT IBAN registry),
with ISO 13616 mod-97 check digits; BICs against the ISO 9362 form the pain.001 schema uses, never a test and
training BIC (8th character ``0``), and the BIC's
country (its 5th and 6th characters) must be the IBAN's, or a territory inside SEPA whose banks have BICs of
their own code but whose accounts have that country's IBANs (:data:`BIC_TERRITORIES`): a BIC of another
country is a typo or the bank of another account, and the transfer would be rejected or misrouted. A name must
keep a letter or digit once written in the EPC Latin character set (``epc``: Greek and Cyrillic are
transliterated; a name in another script would reach the bank as ``-``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformity import tomlio
from conformity.errors import InputError, Problem
from conformity.payments.epc import epc_name_problem

PAYER_FORMAT = "usine.payer/1"
PAYEES_FORMAT = "usine.payees/1"
MAX_FILE_BYTES = 4 * 1024 * 1024
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\Z")
_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?\Z")


@dataclass(frozen=True, slots=True)
class Account:
    """An account holder's name, IBAN and BIC."""

    name: str
    iban: str
    bic: str


#: IBAN length per country of the SEPA schemes' geographical scope (EPC409-09, list of SEPA scheme countries), as the
#: SWIFT IBAN registry gives it. Territories inside SEPA use their country's IBANs: French overseas departments and
#: collectivities (French Guiana, Guadeloupe, Martinique, Réunion, Mayotte, Saint-Pierre-et-Miquelon, Saint-Barthélemy,
#: Saint-Martin) FR, Åland FI, Guernsey, Jersey and the Isle of Man GB; Azores, Madeira PT; Canary Islands, Ceuta,
#: Melilla ES. Albania and Montenegro joined in November 2024, Moldova and North Macedonia in March 2025 (operational
#: from October 2025), Serbia in May 2025 (operational from May 2026). A country joining SEPA is added here.
SEPA_IBAN_LENGTHS = {
    "AD": 24, "AL": 28, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MT": 31, "NL": 18, "NO": 15,
    "PL": 28, "PT": 25, "RO": 24, "RS": 22, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "VA": 22,
}


def _codes(pairs: str) -> frozenset[str]:
    """Two-letter codes written one after another (``"JEGGIM"``)."""
    return frozenset(pairs[i:i + 2] for i in range(0, len(pairs), 2))


#: IBAN country → the other ISO 3166 codes its accounts' BICs may have: territories inside SEPA with BICs of their own
#: code (French Guiana, Guadeloupe, Martinique, Réunion, Mayotte, Saint-Pierre-et-Miquelon, Saint-Barthélemy,
#: Saint-Martin; Jersey, Guernsey, the Isle of Man; Åland), written run together (two letters each)
BIC_TERRITORIES = {"FR": _codes("GFGPMQREYTPMBLMF"), "GB": _codes("JEGGIM"), "FI": _codes("AX")}


def bic_country_problem(iban: str, bic: str) -> str | None:
    """Why ``bic`` cannot be the bank of the account ``iban`` (both well formed), or None: its country."""
    country, bank_country = iban[:2], bic[4:6]
    allowed = {country} | BIC_TERRITORIES.get(country, frozenset())
    if bank_country in allowed:
        return None
    return (f"the BIC {bic} is of a bank in {bank_country}, the IBAN of an account in {country} (a BIC of "
            f"{' or '.join(sorted(allowed))} is expected): check the two come from the same bank details")


def iban_problem(iban: str) -> str | None:
    """Why ``iban`` (without spaces) is not an IBAN a SEPA credit transfer can reach, or None: its form, its country
    (one of the SEPA countries), its length (that country's) and its check digits (ISO 13616 mod-97)."""
    if not _IBAN.match(iban):
        return "not an IBAN (2 letters, 2 check digits, 11 to 30 letters or digits)"
    country = iban[:2]
    if country not in SEPA_IBAN_LENGTHS:
        return (f"country {country!r} is not in SEPA: a SEPA credit transfer reaches accounts in "
                f"{' '.join(sorted(SEPA_IBAN_LENGTHS))} only")
    if len(iban) != SEPA_IBAN_LENGTHS[country]:
        return f"{country} IBANs have {SEPA_IBAN_LENGTHS[country]} characters, this one has {len(iban)}"
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        return "IBAN check digits are wrong"
    return None


def normal_iban(text: str) -> str:
    """An IBAN as written (in groups, with whatever space a statement or PDF used, in either case) as one word."""
    return "".join(text.split()).upper()


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits of an IBAN for a country code and BBAN (to make model IBANs)."""
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


def _account(value: Any, file: str, where: str, problems: list[Problem]) -> Account | None:
    if not isinstance(value, dict):
        problems.append(Problem(file, where, "expected a table with name, iban and bic"))
        return None
    extra = sorted(set(value) - {"name", "iban", "bic"})
    if extra:
        problems.append(Problem(file, f"{where}.{extra[0]}", "unknown key (allowed: name, iban, bic)"))
    ok = True
    for key in ("name", "iban", "bic"):
        if not isinstance(value.get(key), str) or not value[key].strip():
            problems.append(Problem(file, f"{where}.{key}", "required non-empty string"))
            ok = False
    if not ok:
        return None
    if problem := epc_name_problem(value["name"]):
        problems.append(Problem(file, f"{where}.name", f"{value['name']!r} {problem}"))
        ok = False
    # written in groups, with whatever space the bank's statement or PDF used (no-break, thin, a tab): none is part of it
    iban = normal_iban(value["iban"])
    bic = "".join(value["bic"].split()).upper()
    iban_wrong = iban_problem(iban)
    if iban_wrong:
        problems.append(Problem(file, f"{where}.iban", f"{value['iban']!r}: {iban_wrong}"))
        ok = False
    if not _BIC.match(bic):
        problems.append(Problem(file, f"{where}.bic", f"{value['bic']!r} is not a BIC (8 or 11 letters or digits)"))
        ok = False
    elif bic[7] == "0":  # ISO 9362: a location code whose second character is 0 is a test and training BIC
        problems.append(Problem(file, f"{where}.bic", f"{bic} is a test and training BIC (ISO 9362: its 8th character "
                                                      "is 0): no bank routes a payment to it"))
        ok = False
    elif not iban_wrong and (problem := bic_country_problem(iban, bic)):
        problems.append(Problem(file, f"{where}.bic", problem))
        ok = False
    return Account(value["name"].strip(), iban, bic) if ok else None


def _load_toml(path: Path, fmt: str) -> dict[str, Any]:
    """A payer or payees file: bounded, strict (``conformity.tomlio``), of the expected format."""
    doc = tomlio.load(path, max_bytes=MAX_FILE_BYTES)
    if doc.get("format") != fmt:
        raise InputError(f"format must be {fmt!r}, got {doc.get('format')!r}", file=path, where="format")
    return doc


def load_payer(path: Path) -> Account:
    """The payment agency's own account (the debtor of every transfer)."""
    doc = _load_toml(path, PAYER_FORMAT)
    problems: list[Problem] = []
    account = _account({k: v for k, v in doc.items() if k != "format"}, str(path), "(top level)", problems)
    if problems or account is None:
        raise InputError(problems)
    return account


def load_payees(path: Path | None) -> dict[str, Account]:
    """Vendor id → account; every problem of the file at once."""
    if path is None:
        return {}
    doc = _load_toml(path, PAYEES_FORMAT)
    problems: list[Problem] = []
    extra = sorted(set(doc) - {"format", "vendors"})
    if extra:
        problems.append(Problem(str(path), extra[0], "unknown key (allowed: format, vendors)"))
    vendors = doc.get("vendors", {})
    if not isinstance(vendors, dict):
        raise InputError("'vendors' must be a table of vendor id → account", file=path, where="vendors")
    accounts: dict[str, Account] = {}
    for vendor_id, value in vendors.items():
        account = _account(value, str(path), f"vendors.{vendor_id}", problems)
        if account is not None:
            accounts[vendor_id] = account
    if problems:
        raise InputError(problems)
    return accounts
