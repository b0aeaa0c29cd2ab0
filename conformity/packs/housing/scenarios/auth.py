"""Professional authentication (PROAUTH): a ProConnect-like login, then every forged answer the provider can give."""

from __future__ import annotations

from conformity.harness.scenario import SetFaults, scenario
from conformity.packs.housing.scenarios.common import PROVIDER, login_as

#: (driver step, provider fault): each login the software must refuse
ID_TOKEN_FAULT_STEPS = (
    ("wrong_nonce", "wrong_nonce"),
    ("bad_signature", "bad_signature"),
    # forgeries whose signature does not verify with the provider's published keys either (PROAUTH-005): the OpenID
    # Foundation's RP tests rp-id_token-sig-none, -bad-sig-hs256 and a key the JWKS does not publish
    ("alg_none", "alg_none"),
    ("hs256_public_key", "hs256_public_key"),
    ("unknown_kid", "unknown_kid"),
    ("wrong_audience", "wrong_audience"),
    ("expired", "expired"),
    ("wrong_acr", "wrong_acr"),
)


def _faulty_logins() -> list[object]:
    steps: list[object] = []
    for step, fault in ID_TOKEN_FAULT_STEPS:
        steps += [SetFaults({PROVIDER: {"id_token": fault}}), login_as("adviser", step)]
    steps += [SetFaults({PROVIDER: {"state_not_echoed": True}}), login_as("adviser", "state_not_echoed")]
    return steps


LOGIN_FAULTS = scenario(
    "housing.login_faults",
    "A professional logs in with ProConnect-like OpenID Connect; then every forged answer must be refused",
    login_as("adviser", "control"),
    *_faulty_logins(),  # type: ignore[arg-type]  # SetFaults and Perform steps, built in a loop
    SetFaults({PROVIDER: None}),
    login_as("adviser", "control_after"),
)
