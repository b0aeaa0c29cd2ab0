"""conformity.jsonio: a number too large for a double is refused, never read as an infinity JSON cannot hold."""

from __future__ import annotations

import pytest
from joserfc.util import urlsafe_b64encode

from conformity import jsonio
from conformity.errors import InputError
from conformity.signing import KeyRing, SigningKey, verify_envelope

KEY = SigningKey.from_seed(b"usine tests: jsonio")


@pytest.mark.parametrize("text", ["1e400", "-1e400", "[1E+309]", '{"duration_s": 2e308}', "1" + "0" * 400 + ".0"])
def test_a_number_beyond_a_double_is_refused_not_read_as_infinity(text: str) -> None:
    """``json`` reads 1e400 as ``inf``: a value no JSON (nor RFC 8785) can write back, which a bundle's report carried
    through verification into the registry (``"duration_s": 1e400``); refused like NaN, saying where."""
    with pytest.raises(InputError) as exc:
        jsonio.loads(text, source="report.json")
    assert "report.json" in str(exc.value) and "beyond" in str(exc.value), str(exc.value)


def test_a_signed_payload_holding_such_a_number_is_refused() -> None:
    protected = urlsafe_b64encode(b'{"alg":"EdDSA","kid":"%s","typ":"JOSE+JSON"}' % KEY.kid.encode()).decode()
    payload = urlsafe_b64encode(b'{"format":"x/1","n":1e400}').decode()
    signature = urlsafe_b64encode(KEY.private_key.sign(f"{protected}.{payload}".encode())).decode()
    with pytest.raises(InputError) as exc:
        verify_envelope({"protected": protected, "payload": payload, "signature": signature}, KeyRing([KEY.verify_key]),
                        source="x.json")
    assert "beyond" in str(exc.value), str(exc.value)


@pytest.mark.parametrize(("text", "value"), [("1e308", 1e308), ("-1.5e-7", -1.5e-7), ("5e-324", 5e-324), ("0.0", 0.0),
                                             ("123456789012345678901234567890", 123456789012345678901234567890)])
def test_numbers_a_double_holds_are_read_as_before(text: str, value: float) -> None:
    assert jsonio.loads(text) == value
