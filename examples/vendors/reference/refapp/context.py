"""What the application is configured with for one test session, and its HTTP client."""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx

from refapp import defects

SKIP_TLS_VERIFY = defects.register("skip-tls-verify", "accepts any server certificate (verify=False)")
LEGACY_TLS = defects.register("allow-legacy-tls", "accepts TLS 1.0 and 1.1 servers, for 'compatibility with old sites'")


def ssl_context(ca_certificates: list[str]) -> ssl.SSLContext | bool:
    """Trust exactly the given CAs (TLS 1.2 minimum), or the system store when none is given."""
    if defects.active(SKIP_TLS_VERIFY):
        return False
    if not ca_certificates:
        return True
    ctx = ssl.create_default_context(cadata="\n".join(ca_certificates))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if defects.active(LEGACY_TLS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


@dataclass
class Context:
    """Endpoints, credentials, trust anchors, the software's identity and local data (fixtures)."""

    endpoints: dict[str, str]
    client_id: str
    client_secret: str
    ca_certificates: list[str]
    software: dict[str, str]
    fixtures: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_initialize(cls, params: dict[str, Any]) -> Context:
        return cls(endpoints=params["endpoints"], client_id=params["credentials"]["client_id"],
                   client_secret=params["credentials"]["client_secret"],
                   ca_certificates=params["trust_anchors"].get("ca_certificates", []), software=params["software"],
                   fixtures=params["fixtures"])

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl_context(self.ca_certificates)

    def http(self, **kw: Any) -> httpx.Client:
        """An HTTP client that trusts only this session's anchors and identifies the software."""
        ua = f"{self.software['name']}/{self.software['version']} ({self.software['registration_id']})"
        return httpx.Client(verify=self.verify, timeout=15, headers={"User-Agent": ua}, **kw)
