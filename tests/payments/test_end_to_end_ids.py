"""Each credit transfer's EndToEndId is its own, whatever the wave id (the schema allows ``2026-W`` + any digits)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformity.payments.epc import ID_MAX, epc_violations
from conformity.payments.orders import end_to_end_id
from conformity.xmlsafe import parse_xml
from tests.payments.test_epc import assert_epc, pain001, payment

PAIN = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}"
LONG_WAVE = "2026-W" + "1" * 25  # matches the wave schema's ^[0-9]{4}-W[0-9]+$


def test_payments_of_a_long_wave_id_keep_distinct_end_to_end_ids() -> None:
    """Before, ``<wave>-P000000001`` was cut at 35 characters in the pain.001: with this wave id every transfer had
    the reference ``2026-W1111…-P0`` and a bank or the agency could no longer tell them apart."""
    payments = [payment(n, "Acme SAS", wave=LONG_WAVE) for n in (1, 2, 3)]
    xml = pain001("Agence", payments)
    assert_epc(xml)
    ids = [el.text for el in parse_xml(xml, source="pain.001").iter(f"{PAIN}EndToEndId")]
    assert ids == [end_to_end_id(p) for p in payments]  # the CSV's and the proofs' reference too
    assert len(set(ids)) == 3 and all(len(i) == ID_MAX and i.endswith(f"-P00000000{n}") for n, i in zip((1, 2, 3), ids, strict=True))
    assert end_to_end_id({"wave": "2026-W1", "id": 7}) == "2026-W1-P000000007"  # short ids as before


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.from_regex(r"\A[0-9]{4}-W[0-9]{1,60}\Z"), st.integers(1, 10**12), st.integers(1, 10**12))
def test_end_to_end_ids_are_distinct_epc_references(wave: str, a: int, b: int) -> None:
    first, second = end_to_end_id({"wave": wave, "id": a}), end_to_end_id({"wave": wave, "id": b})
    assert not epc_violations(first, ID_MAX, identifier=True)
    assert (first == second) == (a == b)
