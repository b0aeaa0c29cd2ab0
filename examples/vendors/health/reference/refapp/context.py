"""What the application is configured with for one test session, and its HTTP client."""

from __future__ import annotations

import functools
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from refapp import defects, logs

SKIP_TLS_VERIFY = defects.register("skip-tls-verify", "accepts any server certificate (verify=False)")
LEGACY_TLS = defects.register("allow-legacy-tls", "accepts TLS 1.0 and 1.1 servers, for 'compatibility with old sites'")
IGNORE_DATES = defects.register("ignore-certificate-dates", "does not check certificate validity dates, 'for sites whose "
                                                            "clock is wrong'")
NO_HOSTNAME = defects.register("skip-hostname-check", "verifies the certificate chain but not that it names the host")
WEAK_CIPHERS = defects.register("allow-weak-ciphers", "uses OpenSSL's DEFAULT cipher list 'for older load "
                                                      "balancers' (RSA key exchange, CBC with SHA-1)")
WEAK_KEYS = defects.register("accept-weak-keys", "lowers OpenSSL's security level to 1 for 'an old hospital server "
                                                 "with a 1024-bit key'")
#: OpenSSL's flag that skips the validity dates of certificates (X509_V_FLAG_NO_CHECK_TIME)
NO_CHECK_TIME = 0x200000


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
    if defects.active(IGNORE_DATES):
        ctx.verify_flags |= NO_CHECK_TIME
    if defects.active(NO_HOSTNAME):
        ctx.check_hostname = False
    if defects.active(WEAK_CIPHERS):
        ctx.set_ciphers("DEFAULT")
    if defects.active(WEAK_KEYS):
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:@SECLEVEL=1")
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
    session_id: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_initialize(cls, params: dict[str, Any]) -> Context:
        return cls(endpoints=params["endpoints"], client_id=params["credentials"]["client_id"],
                   client_secret=params["credentials"]["client_secret"],
                   ca_certificates=params["trust_anchors"].get("ca_certificates", []), software=params["software"],
                   fixtures=params["fixtures"], session_id=str(params.get("session", {}).get("id", "")))

    @functools.cached_property
    def verify(self) -> ssl.SSLContext | bool:
        """The session's TLS settings, built once (every request of the session uses the same)."""
        return ssl_context(self.ca_certificates)

    def http(self, *, verify: ssl.SSLContext | bool | None = None, **kw: Any) -> httpx.Client:
        """An HTTP client that trusts only this session's anchors and identifies the software."""
        ua = f"{self.software['name']}/{self.software['version']} ({self.software['registration_id']})"
        hooks: dict[str, list[Callable[..., Any]]] = {"request": [logs.log_request], "response": [logs.log_response]}
        return httpx.Client(verify=self.verify if verify is None else verify, timeout=15, headers={"User-Agent": ua},
                            event_hooks=hooks, **kw)
