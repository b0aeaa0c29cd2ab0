"""The housing pack's sandbox: a geocoder, a building registry, the DPE observatory, the housing data space, and the
core OpenID Connect provider configured as a ProConnect-like one (``proconnect``).

The sandbox mounts each service of ``SERVICES`` under ``/s/{session_id}/<name>`` (and its ``prod_router`` under
``/prod/<name>``); ``FAULTS`` lists the faults a session may inject into them; ``fixtures(seed)`` gives a session's
data; ``OIDC`` configures the provider.
"""

from __future__ import annotations

from typing import Any

from conformity.packs.housing.fixtures import generate
from sandbox.faults import Fault, counted, flag
from sandbox.oidc_profile import OidcProfile
from sandbox.packs.housing import dataspace, geocoder, observatory, registry
from sandbox.packs.housing.openapi import DOCUMENT

SERVICES = {"geocoder": geocoder, "buildings": registry, "observatory": observatory, "dataspace": dataspace}

FAULTS: dict[str, dict[str, Fault]] = {
    "dataspace": {
        "revoke_after": Fault("n: the household revokes a consent after n reads of it", counted),
        "deny_transfer": Fault("true: the household never allows its consumption data to be transferred", flag),
    },
}


def fixtures(seed: int, **options: Any) -> dict[str, Any]:
    """A session's addresses, buildings, homes and professionals (:mod:`conformity.packs.housing.fixtures`)."""
    return generate(seed)


def professional_claims(p: dict[str, Any]) -> dict[str, Any]:
    """Userinfo claims of a housing professional (ProConnect-like: uid, SIRET, usual name)."""
    return {
        "sub": p["uid"],
        "uid": p["uid"],
        "given_name": p["given_name"],
        "usual_name": p["usual_name"],
        "email": p["email"],
        "siret": p["siret"],
    }


OIDC = OidcProfile(
    service="proconnect",
    accounts="professionals",
    login_key="email",
    subject_key="uid",
    claims=professional_claims,
    id_token_claims=("given_name", "usual_name", "email", "uid", "siret"),
    acr_values=("eidas1", "eidas2", "eidas3"),
    scopes=("openid", "given_name", "usual_name", "email", "uid", "siret"),
    audience=("observatory", "dataspace"),
    login_hint="a professional's e-mail",
)

#: what the pack adds to the sandbox's OpenAPI description
OPENAPI = DOCUMENT
