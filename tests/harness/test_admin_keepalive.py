"""The harness never sends a request on a connection the sandbox is closing.

The sandbox closes a connection idle for ``KEEP_ALIVE_S``; httpx kept its idle ones 5 s too, so a note posted after a
driver step of about that length (a loaded machine) could go out as the server closed: "Server disconnected without
sending a response", and the scenario lost its trace. The harness's client drops idle connections sooner.
"""

from __future__ import annotations

import time

from conformity.harness.sandbox_access import ADMIN_KEEP_ALIVE_S, SandboxAccess
from sandbox.server import KEEP_ALIVE_S


def test_the_harness_drops_an_idle_connection_before_the_sandbox_closes_it(harness_sandbox: SandboxAccess) -> None:
    assert ADMIN_KEEP_ALIVE_S < KEEP_ALIVE_S
    with harness_sandbox.admin() as admin:
        first = admin.get("/health")
        soon = admin.get("/health")
        time.sleep(ADMIN_KEEP_ALIVE_S + 0.3)  # idle past the harness's limit, not yet the sandbox's
        later = admin.get("/health")
    assert first.status_code == soon.status_code == later.status_code == 200
    assert soon.extensions["network_stream"] is first.extensions["network_stream"]  # kept while fresh
    assert later.extensions["network_stream"] is not first.extensions["network_stream"]  # a new connection
