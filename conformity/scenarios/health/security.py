"""Scenarios: transport security (SECURITY-001/002, MESSAGING-006).

``security.tls_endpoints`` asks the software to connect, with its normal TLS settings, to the same
sandbox endpoint on three listeners: the trusted one (the control), one whose certificate is
self-signed (must be refused), and one that offers only TLS 1.1 (must be refused). A request that
reaches the sandbox through a listener lands in the session trace with that listener's Host, so
the checks see which connections the software really completed.
"""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, scenario

PROBE_PATH = "/.well-known/openid-configuration"
#: a URL that never resolves (RFC 6761 ``.invalid``), given when the sandbox has no such listener
NO_LISTENER = "https://{listener}.listener-unavailable.invalid/"


def connect(listener: str) -> Any:
    """The input of a connect step: the discovery document of the session's provider on ``listener``."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        url = ctx.at(listener, "idp", PROBE_PATH)
        return {"url": url or NO_LISTENER.format(listener=listener.replace("_", "-"))}

    return make


TLS = scenario(
    "security.tls_endpoints",
    "Connections to a trusted endpoint, to an untrusted certificate and to a TLS 1.1-only server",
    Perform("security.connect", connect("trusted"), name="trusted"),
    Perform("security.connect", connect("untrusted"), name="untrusted"),
    Perform("security.connect", connect("legacy_tls"), name="legacy_tls"),
)
