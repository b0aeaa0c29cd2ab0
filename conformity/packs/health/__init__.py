"""The health pack (model of France's Ségur labelling): hospital, general practice, laboratory, pharmacy and
radiology software.

Its data is ``referentials/health/`` and the waves whose ``pack`` is ``health``; its code is here (checks,
scenarios, trace mutations, INS identity rules, CDA rules); its sandbox services are :mod:`sandbox.packs.health`
(patient identity, shared record, secure messaging, directory, and the core OpenID Connect provider configured as a
Pro Santé Connect-like one); its vendors ``examples/vendors/health/``. Registered as the ``health`` entry of the
``usine.packs`` group, exactly like a third-party pack.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from conformity.plugins import SectorPack


def register() -> None:
    """Register the pack's checks, scenarios and trace mutations."""
    for module in ("checks", "scenarios", "defects"):
        importlib.import_module(f"conformity.packs.health.{module}")


def driver_fixtures(fixtures: Mapping[str, Any]) -> dict[str, Any]:
    """What the software under test knows locally: patients by traits only (never their INS)."""
    return {
        "patients": [{"ref": p["ref"], "traits": p["traits"]} for p in fixtures.get("patients", ())],
        "practitioners": fixtures.get("practitioners", []),
        "organisations": fixtures.get("organisations", []),
        "site": (fixtures.get("sites") or [{}])[0],
    }


CONVENTIONS = (
    ("Fixtures (health)", "initialize's fixtures are {\"patients\": [{\"ref\", \"traits\"}], \"practitioners\": "
                          "[{\"national_id\", …}], \"organisations\", \"site\"}: patients by their traits only (your "
                          "software finds their INS through the identity service). The first account to log in when a "
                          "scenario asks for a practitioner's session before any practitioner.login is "
                          "fixtures.practitioners[0] (its national_id as login_hint)."),
)

PACK = SectorPack(id="health", register=register, sandbox="sandbox.packs.health", driver_fixtures=driver_fixtures,
                  login_action="practitioner.login", first_account="the first fixture practitioner "
                  "(fixtures.practitioners[0])", sessionless=("security.connect",), conventions=CONVENTIONS)
