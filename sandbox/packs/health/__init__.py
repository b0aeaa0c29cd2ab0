"""The health pack's sandbox: patient identity (INSi-like), shared medical record (DMP-like), secure messaging
(MSSanté-like), the health directory (Annuaire Santé-like), and the core OpenID Connect provider configured as a
Pro Santé Connect-like one (``idp``).

The sandbox mounts each service of ``SERVICES`` under ``/s/{session_id}/<name>`` (and its ``prod_router`` under
``/prod/<name>``), and each directory of ``DIRECTORIES`` the same way; ``FAULTS`` lists the faults a session may
inject into them; ``fixtures(seed)`` gives a session's data; ``OIDC`` configures the provider; ``SCHEMAS`` names
the official schema the shared record can validate against.
"""

from __future__ import annotations

from typing import Any

from sandbox.faults import Fault, counted, one_of, seconds
from sandbox.oidc_profile import OidcProfile
from sandbox.packs.health import cda, directory, dmp, insi, messaging
from sandbox.packs.health.fixtures import generate
from sandbox.packs.health.openapi import DOCUMENT

SERVICES = {"insi": insi, "dmp": dmp, "mss": messaging}
#: the official schemas its services can validate against (``usine sandbox serve --schema cda[=PATH]``)
SCHEMAS = (cda.CDA_SCHEMA,)
#: the core's directory service, configured as the health directory (``directory``)
DIRECTORIES = (directory.PROFILE,)

INS_FAULTS = ("short_ins", "wrong_oid")

FAULTS: dict[str, dict[str, Fault]] = {
    "insi": {"unavailable": Fault("n: the next n look-ups answer 503 with Retry-After", counted),
             "ins": Fault("one of " + ", ".join(INS_FAULTS) + ": single matches carry a 13-character INS or a non-INS "
                          "OID", one_of(*INS_FAULTS))},
    "dmp": {
        "unavailable": Fault("n: the next n submissions answer 503 (after storing nothing)", counted),
        "slow": Fault("seconds: every answer is delayed this long", seconds(30)),
        "lost_replies": Fault("n: the next n submissions are stored, then answered 503 with Retry-After (a reply lost "
                              "after the record committed)", counted),
        "patient_hides": Fault("n: the patient hides the next n newly stored documents from professionals at once",
                               counted),
    },
    "mss": {"unavailable": Fault("n: the next n sends answer 503 with Retry-After", counted)},
}


#: the most patients a session may ask for (``fixture_options``): a test needs a few; a billion would hold a worker
MAX_PATIENTS = 1000


def fixtures(seed: int, *, patients: int = 6) -> dict[str, Any]:
    """A session's patients, practitioners, organisations and sites (:mod:`sandbox.packs.health.fixtures`)."""
    if not 1 <= patients <= MAX_PATIENTS:
        raise ValueError(f"patients must be between 1 and {MAX_PATIENTS}, not {patients}")
    return generate(seed, patients=patients)


def practitioner_claims(p: dict[str, Any]) -> dict[str, Any]:
    """Userinfo claims of a practitioner: OIDC standard ones plus Pro Santé Connect-like ones (simplified)."""
    exercise = {"codeProfession": p["profession_code"], "libelleProfession": p["profession"],
                "codeSavoirFaire": p["specialty_code"], "libelleSavoirFaire": p["specialty"],
                "nomDExercice": p["family_name"], "prenomDExercice": p["given_name"],
                "structures": [{"identifiant": p["organisation"]}]}
    claims: dict[str, Any] = {
        "sub": p["national_id"], "given_name": p["given_name"], "family_name": p["family_name"],
        "preferred_username": p["national_id"], "SubjectNameID": p["national_id"],
        "SubjectRefPro": {"exercices": [exercise]},
        "profession": {"code": p["profession_code"], "label": p["profession"]},
    }
    if p.get("specialty_code"):
        claims["specialty"] = {"code": p["specialty_code"], "label": p["specialty"]}
    return claims
OIDC = OidcProfile(
    service="idp", accounts="practitioners", login_key="national_id", subject_key="national_id",
    claims=practitioner_claims, id_token_claims=("given_name", "family_name", "SubjectNameID", "profession", "specialty"),
    acr_values=("eidas1",), scopes=("openid", "profile", "scope_all"),
    audience=(*SERVICES, *(d.service for d in DIRECTORIES)),
    login_hint="a practitioner's national id, 8 + RPPS")

#: what the pack adds to the sandbox's OpenAPI description
OPENAPI = DOCUMENT
