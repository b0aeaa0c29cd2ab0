"""Bank details (payees.py): every problem of a payer or payees file is named with its file, key and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformity.errors import InputError
from conformity.payments.payees import iban_check_digits, iban_problem, load_payees


def payees_file(tmp_path: Path, vendors: dict[str, tuple[str, str, str]]) -> Path:
    path = tmp_path / "payees.toml"
    text = 'format = "usine.payees/1"\n'
    for vendor, (name, iban, bic) in vendors.items():
        text += f'[vendors.{vendor}]\nname = "{name}"\niban = "{iban}"\nbic = "{bic}"\n'
    path.write_text(text, encoding="utf-8")
    return path


def iban(country: str, bban: str) -> str:
    return country + iban_check_digits(country, bban) + bban


def problems(path: Path) -> dict[str, str]:
    with pytest.raises(InputError) as err:
        load_payees(path)
    return {p.where: p.message for p in err.value.problems}


def test_greek_and_cyrillic_account_holders_are_accepted(tmp_path: Path) -> None:
    accounts = load_payees(payees_file(tmp_path, {
        "greek": ("Ελληνικό Λογισμικό Α.Ε.", iban("GR", "01101250000000012300695"), "ETHNGRAA"),
        "cyril": ("ООО Медсофт", iban("BG", "BNBG96611020345678"), "BNBGBGSF")}))
    assert accounts["greek"].name == "Ελληνικό Λογισμικό Α.Ε." and accounts["cyril"].iban == "BG80BNBG96611020345678"


def test_a_name_that_comes_to_no_letter_in_the_epc_set_is_refused(tmp_path: Path) -> None:
    path = payees_file(tmp_path, {
        "kanji": ("株式会社メディカル", "FR7630004000031234567890143", "BNPAFRPPXXX"),
        "signs": ("*** ; ***", "FR7630004000031234567890143", "BNPAFRPPXXX"),
        "fine": ("Acme SAS", "FR7630004000031234567890143", "BNPAFRPPXXX")})
    found = problems(path)
    assert set(found) == {"vendors.kanji.name", "vendors.signs.name"}
    assert found["vendors.kanji.name"].startswith("'株式会社メディカル' has no letter or digit in the EPC Latin")
    assert "would reach the bank as '-'" in found["vendors.kanji.name"]


@pytest.mark.parametrize("number", [
    "FR7630004000031234567890143", "FR1420041010050500013M02606", "FR3130001000640000000000A16",
    "FR8510107001180001234567854", "GR1601101250000000012300695", "BG80BNBG96611020345678",
    "DE89370400440532013000", "BE68539007547034", "NO9386011117947", "MT84MALT011000012345MTLCAST001S",
    "CH9300762011623852957", "GB29NWBK60161331926819", "AL47212110090000000235698741", "ME25505000012345678951",
    # the SWIFT registry's examples of the countries that joined in 2025 (stop 38 left them out)
    "MD24AG000225100013104168", "MK07250120000058984", "RS35260005601001611379"])
def test_sepa_ibans_of_their_country_length_pass(number: str) -> None:
    assert iban_problem(number) is None


def test_ibans_no_sepa_transfer_reaches_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = payees_file(tmp_path, {
        "shortfr": ("Short IBAN SAS", iban("FR", "3000400003123456789"), "BNPAFRPPXXX"),
        "brazil": ("Brazil Ltda", iban("BR", "0036030510000010000000000P1"), "BRASBRRJ"),
        "nowhere": ("No Such Country", iban("XX", "123456789012345"), "ABCDXXAAXXX"),
        "longde": ("Lang GmbH", iban("DE", "3704004405320130001"), "COBADEFFXXX"),
        "fine": ("Acme SAS", " fr76 3000 4000 0312 3456 7890 143 ", "bnpafrppxxx")})
    found = problems(path)
    assert set(found) == {"vendors.shortfr.iban", "vendors.brazil.iban", "vendors.nowhere.iban", "vendors.longde.iban"}
    assert found["vendors.shortfr.iban"] == f"{iban('FR', '3000400003123456789')!r}: FR IBANs have 27 characters, this one has 23"
    assert found["vendors.longde.iban"].endswith("DE IBANs have 22 characters, this one has 23")
    assert "country 'BR' is not in SEPA: a SEPA credit transfer reaches accounts in AD AL AT" in found["vendors.brazil.iban"]
    assert "country 'XX' is not in SEPA" in found["vendors.nowhere.iban"]
