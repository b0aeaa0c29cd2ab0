"""A step's exchanges stay in its step whatever the timing: an answer the sandbox is late with (a loaded machine, a
store round trip) is recorded before the harness note that ends the step, and as the software saw it (it gave up).

The harness attributes an exchange to the ``driver.perform`` step whose note follows it (``step_exchanges``). Once the
software gives up on a slow answer, its driver returns, and the harness posts the step's note while the sandbox is
still answering: before the barrier, the note overtook the exchange, which landed in the next step's window (the
step "never called the identity service", the next one called it twice), recorded as answered. The delay is injected
in the sandbox's response path (the access-token check, run in a thread as on PostgreSQL), not produced by load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conformity.checks.helpers import step_exchanges
from conformity.checks.trace import TraceView
from sandbox import deps
from sandbox.packs.health.fixtures import registry_entries
from sandbox.server import RunningSandbox
from tests.sandbox.helpers import trace_payload

SLOW_S = 1.0  #: how late the sandbox is with the look-up's answer
PATIENCE_S = 0.3  #: how long the software waits for it


@pytest.fixture
def slow_lookups(sandbox_server: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Store calls run in threads (as on PostgreSQL); the identity service's token check takes ``SLOW_S``.

    The returned event is set once the slow answer is ready (the sandbox has finished the request)."""
    store = sandbox_server.server.config.app.state.store
    monkeypatch.setattr(store, "on_loop", False)
    original = deps.access_token_caller
    done = threading.Event()

    def slow(request: Any, session_id: str) -> Any:
        caller = original(request, session_id)
        if request.url.path.endswith("/insi/lookup"):
            time.sleep(SLOW_S)
            done.set()
        return caller

    monkeypatch.setattr(deps, "access_token_caller", slow)
    return done


def recorded(admin: httpx.Client, sid: str) -> TraceView:
    """The session's trace once the look-up is in it (the sandbox writes it as it finishes the request)."""
    deadline = time.monotonic() + 5
    while True:
        view = TraceView(trace_payload(admin.get(f"/admin/sessions/{sid}/trace")))
        if view.exchanges("insi") or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


def test_an_answer_the_software_gave_up_on_stays_in_its_step(
        sandbox_server: RunningSandbox, admin: httpx.Client, new_session: Callable[..., dict[str, Any]],
        mint: Callable[..., str], slow_lookups: threading.Event) -> None:
    session = new_session(seed=7, pack="health")
    sid = session["session_id"]
    entry = next(e for e in registry_entries(session["fixtures"]) if e.get("scenario") == "match")
    traits = dict(entry["registered_traits"])
    with httpx.Client(base_url=sandbox_server.base_url, timeout=PATIENCE_S) as software, pytest.raises(httpx.TimeoutException):
        software.post(f"/s/{sid}/insi/lookup", json=traits, headers={"Authorization": f"Bearer {mint(session)}"})
    # the software gave up and closed its connection; its driver returned: the harness ends the step at once
    step = admin.post(f"/admin/sessions/{sid}/notes", json={"kind": "driver.perform", "data": {
        "action": "patient.lookup", "name": "lookup", "input": traits, "output": {"status": "provisional"}}})
    assert step.status_code == 201, step.text
    nxt = admin.post(f"/admin/sessions/{sid}/notes", json={"kind": "driver.perform", "data": {
        "action": "patient.lookup", "name": "next", "input": traits, "output": {"status": "provisional"}}})
    assert nxt.status_code == 201, nxt.text
    assert slow_lookups.wait(5)
    view = recorded(admin, sid)
    first, second = view.performed("patient.lookup")
    assert first.seq == step.json()["seq"]
    lookups = step_exchanges(view, first, "insi")
    assert [e.local_path for e in lookups] == ["/lookup"], [(e.seq, e.outcome) for e in view]
    assert step_exchanges(view, second, "insi") == []
    # recorded as the software met it: it left before the answer, which it never read
    answer = lookups[0]
    assert answer.outcome == "client-gave-up"
    assert answer.details["service_outcome"] == "lookup-match"
    assert float(answer.details["waited_s"]) >= PATIENCE_S


def test_an_answer_read_whole_from_its_headers_is_not_given_up(
        sandbox_server: RunningSandbox, admin: httpx.Client, new_session: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A redirect has an empty body: the software has all of it with the headers and may close at once, before the
    sandbox has written the exchange (its event loop thread descheduled for a while, here each time it asks whether
    the client is still there). It was answered, not given up on."""
    from authlib.integrations.httpx_client import OAuth2Client

    from sandbox import recording

    original = recording.client_gone

    def descheduled(receive: Any) -> bool:
        time.sleep(0.3)  # the client reads the headers and closes meanwhile, if they were sent
        return original(receive)

    monkeypatch.setattr(recording, "client_gone", descheduled)
    session = new_session(seed=8, pack="health")
    idp = session["endpoints"]["idp"]
    with OAuth2Client(client_id=session["credentials"]["client_id"], scope="openid",
                      redirect_uri="http://127.0.0.1:8765/callback", timeout=30) as software:
        url, _ = software.create_authorization_url(f"{idp}/authorize", nonce="n0nce-attribution",
                                                   login_hint=session["fixtures"]["practitioners"][0]["national_id"])
        r = software.request("GET", url, withhold_token=True, follow_redirects=False)
    assert r.status_code == 302 and not r.content
    sid = session["session_id"]
    note = admin.post(f"/admin/sessions/{sid}/notes", json={"kind": "driver.perform", "data": {"action": "x"}})
    assert note.status_code == 201, note.text
    view = TraceView(trace_payload(admin.get(f"/admin/sessions/{sid}/trace")))
    [answered] = step_exchanges(view, view.performed("x")[0], "idp")
    assert answered.outcome == "authorization-code-issued", answered.raw
