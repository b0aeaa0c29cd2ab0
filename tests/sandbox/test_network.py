"""Network faults: the sandbox resets connections, drops replies after processing, holds answers until the
software gives up, and answers 429 or 503 with or without Retry-After — and records each exactly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.faults import validate_faults
from sandbox.network import STALL_SECONDS
from tests.sandbox.helpers import trace_payload

Session = dict[str, Any]


def lookup(session: Session, token: str, timeout: float = 10) -> httpx.Response:
    traits = session["fixtures"]["patients"][0]["registered_traits"]
    body = {k: traits[k] for k in ("birth_name", "first_names", "birth_date", "sex", "birth_place_code")}
    return httpx.post(session["endpoints"]["insi"] + "/lookup", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {token}"})


def recorded(admin: httpx.Client, session: Session) -> list[dict[str, Any]]:
    trace = trace_payload(admin.get(f"/admin/sessions/{session['session_id']}/trace"))
    return [e for e in trace["exchanges"] if e["kind"] == "http" and e["service"] == "insi"]


@pytest.fixture
def faulty(admin: httpx.Client, new_session: Callable[..., Session], mint: Callable[..., str]) \
        -> Callable[[dict[str, Any]], tuple[Session, str]]:
    def make(faults: dict[str, Any]) -> tuple[Session, str]:
        session = new_session(seed=5)
        admin.put(f"/admin/sessions/{session['session_id']}/faults", json={"insi": faults}).raise_for_status()
        return session, mint(session)

    return make


def test_a_reset_connection_reaches_no_service_and_is_recorded(admin: httpx.Client, faulty: Any) -> None:
    session, token = faulty({"reset": 1})
    with pytest.raises(httpx.TransportError):
        lookup(session, token)
    assert lookup(session, token).status_code == 200  # one count only
    first, second = recorded(admin, session)
    assert (first["outcome"], first["response"]["status"]) == ("connection-reset", 0)
    assert second["outcome"] == "lookup-match"


def test_a_dropped_reply_is_processed_then_never_sent(admin: httpx.Client, faulty: Any) -> None:
    session, token = faulty({"dropped_replies": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        lookup(session, token)
    [e] = recorded(admin, session)
    assert e["outcome"] == "reply-dropped" and e["outcome_details"]["service_outcome"] == "lookup-match"
    assert e["response"]["body"]["json"]["outcome"] == "match"  # what the service would have answered


def test_a_held_answer_waits_for_the_software_to_give_up(admin: httpx.Client, faulty: Any) -> None:
    session, token = faulty({"stall": 1})
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        lookup(session, token, timeout=1.0)
    assert time.monotonic() - started < STALL_SECONDS
    deadline = time.monotonic() + 5
    while not recorded(admin, session) and time.monotonic() < deadline:
        time.sleep(0.05)
    [e] = recorded(admin, session)
    assert e["outcome"] == "client-gave-up" and 0.9 <= e["outcome_details"]["waited_s"] < 5


@pytest.mark.parametrize(("faults", "status", "retry_after"), [
    ({"rate_limited": 1}, 429, "1"), ({"rate_limited": 1, "retry_after": 2}, 429, "2"),
    ({"unavailable": 1, "omit_retry_after": True}, 503, None), ({"rate_limited": 1, "omit_retry_after": True}, 429, None),
])
def test_refusals_with_and_without_retry_after(faulty: Any, faults: dict[str, Any], status: int,
                                               retry_after: str | None) -> None:
    session, token = faulty(faults)
    r = lookup(session, token)
    assert (r.status_code, r.headers.get("retry-after")) == (status, retry_after)
    assert r.json()["code"] == ("rate-limited" if status == 429 else "service-unavailable")
    assert lookup(session, token).status_code == 200


@pytest.mark.parametrize(("faults", "error"), [
    ({"dmp": {"reset": -1}}, "dmp.reset: expected an integer 0..100"),
    ({"insi": {"stall": True}}, "insi.stall: expected an integer 0..100"),
    ({"mss": {"omit_retry_after": 1}}, "mss.omit_retry_after: expected true or false"),
    ({"idp": {"reset": 1}}, "idp: unknown fault 'reset'"),
    ({"idp": {"userinfo_signed": "maybe"}}, "idp.userinfo_signed: 'maybe' is not one of valid, bad_signature"),
    ({"idp": {"id_token": "kid_absent", "rotate_keys": "yes"}}, "idp.rotate_keys: expected true or false"),
])
def test_bad_network_and_provider_faults_are_refused_with_the_reason(faults: dict[str, Any], error: str) -> None:
    assert any(error in e for e in validate_faults(faults)), validate_faults(faults)
