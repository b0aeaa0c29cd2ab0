"""Housing rules the checks, the sandbox and the sample generators share (a model of the public facts).

* RNB building id: 12 characters from ``123456789ABCDEFGHJKMNPQRSTVWXYZ``, also written ``XXXX-YYYY-ZZZZ``
  (and in lower case); :func:`normalise_rnb` gives the 12-character form, or None when it is not one.
* BAN interoperability key ``cle_interop``: ``{INSEE}_{street 4}_{number 5}`` (``75105_8884_00004``).
* Fiscal housing number ``numero_fiscal_local``: 12 characters, ``[0-9][0-9A-B][0-9]{10}``.
* DPE number: 13 characters ``^\\d{4}[A-Z]\\d{7}[A-Z]$`` (``2393E0000360N``).
* DPE label A–G from the double threshold (primary energy kWh/m²/yr, emissions kgCO2/m²/yr): the worse
  class of the two wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

RNB_ALPHABET = "123456789ABCDEFGHJKMNPQRSTVWXYZ"
RNB_ID = re.compile(rf"^[{RNB_ALPHABET}]{{12}}$")
BAN_KEY = re.compile(r"^[0-9][0-9AB][0-9]{3}_[0-9a-z]{4}_[0-9]{5}(_[a-z0-9]+)?$")
FISCAL_NUMBER = re.compile(r"^[0-9][0-9AB][0-9]{10}$")
DPE_NUMBER = re.compile(r"^[0-9]{4}[A-Z][0-9]{7}[A-Z]$")
SIRET = re.compile(r"^[0-9]{14}$")

#: upper bounds (exclusive) of classes A..F: (primary energy kWh/m²/yr, emissions kgCO2/m²/yr); G above
DPE_THRESHOLDS: tuple[tuple[str, float, float], ...] = (
    ("A", 70, 6),
    ("B", 110, 11),
    ("C", 180, 30),
    ("D", 250, 50),
    ("E", 330, 70),
    ("F", 420, 100),
)
CLASSES = "ABCDEFG"


def normalise_rnb(value: str) -> str | None:
    """The 12-character RNB id of ``value`` (dashes and blanks dropped, upper case), or None if it is not one."""
    compact = re.sub(r"[\s-]", "", value).upper()
    return compact if RNB_ID.fullmatch(compact) else None


def is_fiscal_number(value: str) -> bool:
    return bool(FISCAL_NUMBER.fullmatch(value))


def is_ban_key(value: str) -> bool:
    return bool(BAN_KEY.fullmatch(value))


def is_dpe_number(value: str) -> bool:
    return bool(DPE_NUMBER.fullmatch(value))


def single_class(value: float, bounds: Sequence[float]) -> str:
    """The class of one indicator: the first class whose bound ``value`` stays under, else G."""
    for letter, bound in zip(CLASSES, bounds, strict=False):
        if value < bound:
            return letter
    return "G"


def dpe_class(
    primary_energy: float, emissions: float, thresholds: Sequence[tuple[str, float, float]] = DPE_THRESHOLDS
) -> str:
    """The DPE label from the double threshold: the worse of the energy class and the emissions class."""
    energy = single_class(primary_energy, [t[1] for t in thresholds])
    ges = single_class(emissions, [t[2] for t in thresholds])
    return max(energy, ges)


def thresholds_of(parameters: Mapping[str, object]) -> tuple[tuple[str, float, float], ...]:
    """The thresholds a requirement's parameters give (``energy``/``emissions`` bound lists), else the model's."""
    energy, emissions = parameters.get("energy_bounds"), parameters.get("emissions_bounds")
    if not isinstance(energy, list) or not isinstance(emissions, list):
        return DPE_THRESHOLDS
    return tuple((c, float(e), float(g)) for c, e, g in zip(CLASSES, energy, emissions, strict=False))
