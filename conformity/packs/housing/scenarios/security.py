"""The shared security baseline (BASELINE): a geocoder behind a certificate the software must not trust."""

from __future__ import annotations

from conformity.harness.scenario import Perform, scenario
from conformity.packs.housing.scenarios.common import address, login_as

UNTRUSTED = scenario(
    "housing.untrusted_geocoder",
    "The geocoder's endpoint is on a server with a self-signed certificate: the software must not talk to it",
    login_as("diagnostician"),
    Perform("building.identify", lambda ctx: {"address": address(ctx, "complete")["query"]}, name="self_signed"),
    endpoints_on={"geocoder": "self_signed"},
)
