"""The housing pack ("espace numérique du logement"): diagnostician, renovation adviser and contractor software.

Its data is ``referentials/housing/`` and the waves whose ``pack`` is ``housing``; its code is here (checks,
scenarios, trace mutations, the DPE model and the rules they share); its sandbox services are
:mod:`sandbox.packs.housing`; its vendors ``examples/vendors/housing/``. Registered as the ``housing`` entry of the
``usine.packs`` group.
"""

from __future__ import annotations

import importlib

from conformity.packs.housing.fixtures import driver_fixtures
from conformity.plugins import SectorPack


def register() -> None:
    """Register the pack's checks, scenarios and trace mutations."""
    for module in ("checks", "scenarios", "defects"):
        importlib.import_module(f"conformity.packs.housing.{module}")


CONVENTIONS = (
    (
        "Fixtures (housing)",
        'initialize\'s fixtures are {"homes": [{"ref", "address", "fiscal_number", '
        '"visit"}], "addresses": [{"ref", "query"}], "professionals": [{"email", '
        '"role", …}], "site"}: homes by address and fiscal number only (your software finds '
        "their buildings through the geocoder and the registry). Every scenario starts with a "
        "professional.login (the professional's e-mail as login_hint).",
    ),
)

PACK = SectorPack(
    id="housing",
    register=register,
    sandbox="sandbox.packs.housing",
    driver_fixtures=driver_fixtures,
    login_action="professional.login",
    first_account="the first fixture professional (fixtures.professionals[0])",
    conventions=CONVENTIONS,
)
