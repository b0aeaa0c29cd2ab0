"""What HomeApp is configured with for one session, its HTTP client, and what it remembers."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from homeapp import defects

SKIP_TLS_VERIFY = defects.register("skip-tls-verify", "accepts any server certificate (verify=False)")
NO_USER_AGENT = defects.register("no-user-agent", "sends httpx's default User-Agent instead of naming itself")
RETRY_AT_ONCE = defects.register("retries-at-once", "retries a refused request at once, ignoring Retry-After")
MAX_TRIES = 3


class ServiceError(Exception):
    """A service could not be reached safely or answered an error the action cannot go past."""


@dataclass
class App:
    """One session's configuration and memory: the logged-in professional, consents, quotes."""

    endpoints: dict[str, str]
    client_id: str
    client_secret: str
    ca_certificates: list[str]
    software: dict[str, str]
    fixtures: dict[str, Any]
    session_id: str = ""
    professional: dict[str, Any] | None = None
    access_token: str = ""
    consents: dict[str, dict[str, Any]] = field(default_factory=dict)
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_initialize(cls, params: dict[str, Any]) -> App:
        return cls(
            endpoints=params["endpoints"],
            client_id=params["credentials"]["client_id"],
            client_secret=params["credentials"]["client_secret"],
            ca_certificates=params["trust_anchors"].get("ca_certificates", []),
            software=params["software"],
            fixtures=params["fixtures"],
            session_id=str(params.get("session", {}).get("id", "")),
        )

    @property
    def verify(self) -> ssl.SSLContext | bool:
        if defects.active(SKIP_TLS_VERIFY):
            return False
        if not self.ca_certificates:
            return True
        ctx = ssl.create_default_context(cadata="\n".join(self.ca_certificates))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    @property
    def user_agent(self) -> str:
        return f"{self.software['name']}/{self.software['version']} ({self.software['registration_id']})"

    def http(self) -> httpx.Client:
        headers = {} if defects.active(NO_USER_AGENT) else {"User-Agent": self.user_agent}
        return httpx.Client(verify=self.verify, timeout=15, headers=headers)

    def call(self, method: str, service: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        """One request to a service, retried after 429/503 as Retry-After says (at most 3 tries)."""
        headers = dict(kw.pop("headers", {}))
        if auth:
            if not self.access_token:
                raise ServiceError("no professional is logged in")
            headers["Authorization"] = f"Bearer {self.access_token}"
        url = self.endpoints[service].rstrip("/") + path
        try:
            with self.http() as http:
                for attempt in range(MAX_TRIES):
                    r = http.request(method, url, headers=headers, **kw)
                    if r.status_code not in (429, 503) or attempt == MAX_TRIES - 1:
                        return r
                    wait = float(r.headers.get("retry-after", "1") or 1)
                    time.sleep(0 if defects.active(RETRY_AT_ONCE) else min(wait, 10))
        except httpx.HTTPError as exc:
            raise ServiceError(f"{service}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def my_professional(self) -> dict[str, Any]:
        if self.professional is None:
            raise ServiceError("no professional is logged in")
        return self.professional
