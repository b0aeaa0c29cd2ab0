"""Bank details (payees.py): every problem of a payer or payees file is named with its file, key and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformity.errors import InputError
from conformity.payments.payees import iban_check_digits, load_payees


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
