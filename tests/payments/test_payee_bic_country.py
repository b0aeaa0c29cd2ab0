"""A payee's BIC must be of its IBAN's country (or a SEPA territory of it): else a typo, or two accounts' details."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformity.errors import InputError
from conformity.payments.payees import load_payees, load_payer
from tests.payments.test_payees import iban, payees_file, problems
from tests.payments.workspace import Workspace

FR = "FR7630004000031234567890143"


def test_a_bic_of_another_country_than_the_iban_is_refused(tmp_path: Path) -> None:
    """Before, a French IBAN with a German bank's BIC was accepted and ordered: the bank rejects or misroutes it."""
    path = payees_file(tmp_path, {
        "german_bank": ("Acme SAS", FR, "DEUTDEFFXXX"),
        "lower": ("Acme SAS", FR.lower(), "deutdeff"),
        "us_bank": ("Acme SAS", iban("DE", "370400440532013000"), "CHASUS33XXX"),
        "both_bad": ("Acme SAS", "FR7630004000031234567890144", "DEUTDEFFXXX")})  # the IBAN's problem is enough
    found = problems(path)
    assert set(found) == {"vendors.german_bank.bic", "vendors.lower.bic", "vendors.us_bank.bic", "vendors.both_bad.iban"}
    assert found["vendors.german_bank.bic"] == (
        "the BIC DEUTDEFFXXX is of a bank in DE, the IBAN of an account in FR (a BIC of BL or FR or GF or GP or MF or "
        "MQ or PM or RE or YT is expected): check the two come from the same bank details")
    assert "a bank in US, the IBAN of an account in DE (a BIC of DE is expected)" in found["vendors.us_bank.bic"]


def test_territories_with_bics_of_their_own_keep_their_countrys_ibans(tmp_path: Path) -> None:
    accounts = load_payees(payees_file(tmp_path, {
        "reunion": ("Logiciels Reunion SARL", FR, "BNPARERXXXX"),
        "guadeloupe": ("Antilles Sante", FR, "BNPAGPGP"),
        "jersey": ("Jersey Software Ltd", iban("GB", "NWBK60161331926819"), "RBOSJESHXXX"),
        "aland": ("Alandsbanken Kund", iban("FI", "21234500000785"), "AABAAX22"),
        "monaco": ("Monaco Logiciel", iban("MC", "11222001230000000010345"), "CFMOMCMXXXX")}))
    assert {v: a.bic[4:6] for v, a in accounts.items()} == {"reunion": "RE", "guadeloupe": "GP", "jersey": "JE",
                                                             "aland": "AX", "monaco": "MC"}


def test_the_payer_s_bic_is_checked_the_same(tmp_path: Path) -> None:
    path = tmp_path / "payer.toml"
    path.write_text(f'format = "usine.payer/1"\nname = "Agence"\niban = "{FR}"\nbic = "BDFEBEBBXXX"\n', encoding="utf-8")
    with pytest.raises(InputError, match="a bank in BE, the IBAN of an account in FR"):
        load_payer(path)


def test_pay_run_with_such_a_payee_stops_before_the_ledger(ws: Workspace, tmp_path: Path) -> None:
    ws.payees = payees_file(tmp_path, {"acme": ("Acme SAS", FR, "DEUTDEFFXXX")})
    r = ws.run(ws.events("e.jsonl", []))
    assert r.returncode == 2 and "vendors.acme.bic" in r.stderr and "a bank in DE" in r.stderr, r.stderr
    assert not ws.ledger.exists() and not r.out.exists()


def test_a_test_and_training_bic_is_refused(tmp_path: Path) -> None:
    """ISO 9362: a BIC whose 8th character is 0 is for tests (BNPAFRP0): before, accepted and ordered to."""
    found = problems(payees_file(tmp_path, {"acme": ("Acme SAS", FR, "BNPAFRP0"), "ok": ("Acme SAS", FR, "BNPAFRP1")}))
    assert found == {"vendors.acme.bic": "BNPAFRP0 is a test and training BIC (ISO 9362: its 8th character is 0): no "
                                         "bank routes a payment to it"}
