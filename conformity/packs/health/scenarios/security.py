"""Scenarios: transport security (SECURITY-001/002/014/015, MESSAGING-006).

``security.tls_endpoints`` asks the software to connect, with its normal TLS settings, to the same
sandbox endpoint on the trusted listener (the control) and on every listener of a bad server the
sandbox serves (:data:`sandbox.tls.LISTENER_CLASSES`: self-signed, untrusted root, expired, not yet
valid, wrong host name, incomplete chain, weak key, SHA-1 signature, TLS 1.0, TLS 1.1, NULL, RSA key
exchange, CBC with SHA-1). A request that reaches the sandbox through a listener lands in the session
trace with that listener's Host, so the checks see which connections the software really completed.

``messaging.tls_self_signed`` and ``messaging.tls_legacy`` give the software a messaging service whose
endpoint is on the self-signed listener, then on the TLS 1.1-only one, and ask it to send a message:
no message may reach the service (MESSAGING-006, judged on messages themselves).
"""

from __future__ import annotations

from typing import Any

from conformity.harness.scenario import Perform, ScenarioContext, scenario
from conformity.packs.health.scenarios.documents import generated_contents
from conformity.packs.health.scenarios.messaging import message, to_colleague

PROBE_PATH = "/.well-known/openid-configuration"
#: a URL that never resolves (RFC 6761 ``.invalid``), given when the sandbox has no such listener
NO_LISTENER = "https://{listener}.listener-unavailable.invalid/"
#: the bad servers of the negative catalogue (names of sandbox.tls.LISTENER_CLASSES), in the order tried
BAD_SERVERS = ("self_signed", "untrusted_root", "expired", "not_yet_valid", "wrong_host", "incomplete_chain",
               "weak_key", "weak_signature", "tls1_0", "tls1_1", "cipher_null", "cipher_static_rsa", "cipher_cbc_sha1")


def connect(listener: str) -> Any:
    """The input of a connect step: the discovery document of the session's provider on ``listener``."""

    def make(ctx: ScenarioContext) -> dict[str, Any]:
        url = ctx.at(listener, "idp", PROBE_PATH)
        return {"url": url or NO_LISTENER.format(listener=listener.replace("_", "-"))}

    return make


TLS = scenario(
    "security.tls_endpoints",
    "Connections to a trusted endpoint, then to every bad server of the negative catalogue",
    Perform("security.connect", connect("trusted"), name="trusted"),
    *(Perform("security.connect", connect(name), name=name) for name in BAD_SERVERS),
)

MESSAGING_SELF_SIGNED = scenario(
    "messaging.tls_self_signed",
    "A message to a messaging service whose endpoint presents a self-signed certificate",
    Perform("message.send", message(to_colleague), name="send"),
    endpoints_on={"mss": "self_signed"},
    draws=(generated_contents,),
)

MESSAGING_LEGACY = scenario(
    "messaging.tls_legacy",
    "A message to a messaging service whose endpoint offers only TLS 1.1",
    Perform("message.send", message(to_colleague), name="send"),
    endpoints_on={"mss": "tls1_1"},
    draws=(generated_contents,),
)
