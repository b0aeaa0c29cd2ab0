"""Action security.connect: open a connection with RefApp's normal TLS settings and say how it went."""

from __future__ import annotations

from typing import Any

import httpx

from refapp.actions import action
from refapp.app import Application


def negotiated_version(response: httpx.Response) -> str | None:
    """The TLS protocol version of the connection that carried ``response``, when known."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    return ssl_object.version() if ssl_object is not None else None


@action("security.connect")
def security_connect(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"connected": True}
    try:
        with app.ctx.http() as http:
            r = http.get(data["url"], timeout=10)
            version = negotiated_version(r)
    except httpx.HTTPError as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    if version:
        out["tls_version"] = version
    return out
