"""Bank details copied from a statement or a PDF: groups separated by any space, upper or lower case."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformity.errors import InputError
from conformity.payments.payees import load_payees
from tests.payments.test_payees import payees_file

IBAN = "FR7630004000031234567890143"


@pytest.mark.parametrize("space", ["\u00a0", "\u202f", "\u2009", "\t", "\u3000", "  "])
def test_an_iban_in_groups_separated_by_any_space_is_the_iban(tmp_path: Path, space: str) -> None:
    """Before, only the ASCII space was removed: an IBAN pasted with no-break spaces (as PDFs and French statements
    print it) was refused as 'not an IBAN', with nothing visible to correct."""
    grouped = space.join([IBAN[i:i + 4] for i in range(0, len(IBAN), 4)]).lower()
    path = tmp_path / "payees.toml"
    path.write_text(f'format = "usine.payees/1"\n[vendors.acme]\nname = "Acme SAS"\niban = "{grouped}"\n'
                    f'bic = "bnpa{space}fr pp{space}xxx"\n', encoding="utf-8")
    [(vendor, account)] = load_payees(path).items()
    assert (vendor, account.iban, account.bic) == ("acme", IBAN, "BNPAFRPPXXX")


def test_an_invisible_character_in_an_iban_is_still_refused(tmp_path: Path) -> None:
    """A zero-width space is no space a reader sees: the IBAN is refused, not silently mended."""
    path = payees_file(tmp_path, {"acme": ("Acme SAS", IBAN[:8] + "\u200b" + IBAN[8:], "BNPAFRPPXXX")})
    with pytest.raises(InputError, match="not an IBAN"):
        load_payees(path)
