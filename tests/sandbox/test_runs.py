"""Runs issued by the sandbox: its id and seed, its attempt number, one session per scenario, bound to one software.

A harness no longer names its run nor picks its seed unseen: ``POST /admin/runs`` makes the id, draws the seed (or
records that the caller chose it) and counts the attempts of the token's software in the wave and category; a
session of a run's scenario takes its seed from the run, once per scenario, and its signed trace names the run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformity.runs import scenario_seed
from sandbox.sessions import new_run
from sandbox.store import PostgresStore, Store
from tests.sandbox.helpers import trace_payload
from tests.sandbox.test_harness_tokens import issue

RUN = {"wave": "2026-W1", "category": "GP", "pack": "health", "scenarios": ["PRACAUTH-001", "INSI-001"]}


def create(client: httpx.Client, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = client.post("/admin/runs", json=RUN | extra, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_run_is_the_sandboxs_and_counts_the_attempts_of_its_software(admin: httpx.Client,
                                                                        client: httpx.Client) -> None:
    acme, other = issue(admin, "acme", "acme.attempts"), issue(admin, "acme", "acme.other")
    first, second = create(client, acme), create(client, acme)
    assert first["run_id"].startswith("run_") and first["run_id"] != second["run_id"]
    assert first["seed_source"] == "sandbox" and first["bound_to"] == {"vendor_id": "acme", "software_id": "acme.attempts"}
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert create(client, other)["attempt"] == 1  # another software counts its own
    assert create(client, acme, category="HOSPITAL", wave="2027-W2")["attempt"] == 1  # and another wave or category
    chosen = create(client, acme, seed=42)
    assert (chosen["seed"], chosen["seed_source"], chosen["attempt"]) == (42, "caller", 3)


@pytest.mark.parametrize("change,code", [({"scenarios": []}, "invalid-request"),
                                         ({"scenarios": ["A-1", "A-1"]}, "invalid-request"),
                                         ({"scenarios": [f"S-{i}" for i in range(501)]}, "invalid-request"),
                                         ({"seed": -1}, "invalid-request"), ({"pack": "nope"}, "pack-unknown"),
                                         ({"wave": "2099-W9"}, "wave-unknown")])
def test_a_run_request_out_of_bounds_is_refused(admin: httpx.Client, client: httpx.Client, change: dict[str, Any],
                                                code: str) -> None:
    r = client.post("/admin/runs", json=RUN | change, headers=issue(admin, "acme", "acme.bounds"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code, r.text


def test_a_session_of_a_run_takes_the_runs_seed_once_per_scenario_and_its_trace_names_the_run(
        admin: httpx.Client, client: httpx.Client) -> None:
    acme = issue(admin, "acme", "acme.sessions")
    run = create(client, acme)
    r = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["seed"] == scenario_seed(run["seed"], "INSI-001") and session["pack"] == "health"
    trace = trace_payload(client.get(f"/admin/sessions/{session['session_id']}/trace", headers=acme))
    assert trace["session"]["run"] == {"id": run["run_id"], "wave": "2026-W1", "category": "GP",
                                       "seed_source": "sandbox", "attempt": 1, "scenario": "INSI-001"}
    assert trace["session"]["seed"] == session["seed"]
    # the same scenario again in the same run: refused (no keeping the best of several tries within one run)
    again = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert again.status_code == 409 and again.json()["code"] == "scenario-already-run", again.text
    # another scenario of the run: its own session
    other = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "PRACAUTH-001",
                                                 "seed": scenario_seed(run["seed"], "PRACAUTH-001")}, headers=acme)
    assert other.status_code == 201, other.text


@pytest.mark.parametrize("body,status,code", [
    ({"scenario": "DMP-001"}, 422, "scenario-not-in-run"),
    ({"scenario": "INSI-001", "seed": 7}, 422, "seed-not-the-runs"),
    ({"scenario": "INSI-001", "pack": "housing"}, 422, "pack-not-the-runs"),
])
def test_a_session_outside_the_runs_plan_is_refused(admin: httpx.Client, client: httpx.Client,
                                                    body: dict[str, Any], status: int, code: str) -> None:
    acme = issue(admin, "acme", "acme.plan")
    run = create(client, acme)
    r = client.post("/admin/sessions", json={"run_id": run["run_id"], **body}, headers=acme)
    assert r.status_code == status and r.json()["code"] == code, r.text
    # nothing was taken: the scenario still opens once
    assert client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"},
                       headers=acme).status_code == 201


def test_another_softwares_run_is_as_unknown_as_a_run_that_does_not_exist(admin: httpx.Client,
                                                                          client: httpx.Client) -> None:
    acme, medilab = issue(admin, "acme", "acme.mine"), issue(admin, "medilab", "medilab.lis")
    run = create(client, acme)
    theirs = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=medilab)
    unknown = client.post("/admin/sessions", json={"run_id": "run_" + "a" * 16, "scenario": "INSI-001"},
                          headers=medilab)
    by_admin = admin.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"})
    for r in (theirs, unknown, by_admin):
        assert r.status_code == 404 and r.json()["code"] == "run-unknown", r.text
    assert theirs.json()["detail"].replace(run["run_id"], "X") == unknown.json()["detail"].replace("run_" + "a" * 16, "X")
    # the run's owner still has the scenario to play (nobody else's attempt took it)
    assert client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"},
                       headers=acme).status_code == 201


def test_run_id_and_scenario_go_together_and_a_session_without_them_has_no_run(admin: httpx.Client,
                                                                               client: httpx.Client) -> None:
    acme = issue(admin, "acme", "acme.alone")
    run = create(client, acme)
    r = client.post("/admin/sessions", json={"run_id": run["run_id"]}, headers=acme)
    assert r.status_code == 422 and "go together" in r.text
    plain = client.post("/admin/sessions", json={"seed": 9}, headers=acme)
    assert plain.status_code == 201 and plain.json()["run"] is None and plain.json()["seed"] == 9
    trace = trace_payload(client.get(f"/admin/sessions/{plain.json()['session_id']}/trace", headers=acme))
    assert trace["session"]["run"] is None


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two handles on one store (two connections, as two worker processes have)."""
    if request.param == "sqlite":
        pair = (Store(tmp_path / "sandbox.sqlite3"), Store(tmp_path / "sandbox.sqlite3"))
    else:
        url = request.getfixturevalue("postgresql_url")
        pair = (PostgresStore(url), PostgresStore(url))
    yield pair
    for store in pair:
        store.close()


def test_runs_created_at_once_get_distinct_attempts(stores: tuple[Store, Store]) -> None:
    bound = {"vendor_id": "acme", "software_id": "acme.race"}
    attempts: list[int] = []
    start = threading.Barrier(8)

    def one(store: Store) -> None:
        start.wait()
        for _ in range(5):
            run = new_run(bound_to=bound, wave="2026-W1", category="GP", pack="health", scenarios=["A"], seed=None)
            attempts.append(store.create_run(run)["attempt"])

    threads = [threading.Thread(target=one, args=(stores[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(attempts) == list(range(1, 41))
    other = new_run(bound_to=None, wave="2026-W1", category="GP", pack="health", scenarios=["A"], seed=None)
    assert stores[1].create_run(other)["attempt"] == 1


def test_a_scenario_of_a_run_is_claimed_once_across_handles(stores: tuple[Store, Store]) -> None:
    assert stores[0].claim_scenario("run_x", "A", "ses_1")
    assert not stores[1].claim_scenario("run_x", "A", "ses_2")
    assert stores[1].claim_scenario("run_x", "B", "ses_2") and stores[1].claim_scenario("run_y", "A", "ses_3")


def test_a_run_session_takes_the_sandboxs_fixtures_not_the_callers_options(admin: httpx.Client,
                                                                           client: httpx.Client) -> None:
    """A patched harness cannot shape the fixtures of a run's scenario (say one patient instead of the pack's six):
    the seed is the sandbox's, and so is everything the fixtures are made of; outside a run the options still work."""
    acme = issue(admin, "acme", "acme.fixture-options")
    run = create(client, acme)
    r = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001",
                                             "fixture_options": {"patients": 1}}, headers=acme)
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["where"]) == ("fixture-options-not-in-run", "fixture_options"), r.text
    # the refusal took nothing: the scenario still has its one session to come, with the pack's own fixtures
    ok = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert ok.status_code == 201, ok.text
    free = client.post("/admin/sessions", json={"pack": "health", "fixture_options": {"patients": 1}}, headers=acme)
    assert free.status_code == 201 and free.json()["run"] is None, free.text


def test_a_run_is_of_its_waves_pack(admin: httpx.Client, client: httpx.Client) -> None:
    """A run of a wave and category plays that wave's pack: another pack's services and fixtures are not the wave's."""
    r = client.post("/admin/runs", json=RUN | {"pack": "housing"}, headers=issue(admin, "acme", "acme.pack"))
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["where"]) == ("pack-not-the-waves", "pack"), r.text


def test_a_scenario_whose_session_could_not_be_stored_is_given_back(admin: httpx.Client, client: httpx.Client,
                                                                    sandbox_server: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """QA (runattack, not fixed then): the scenario was claimed, then storing its session failed (a store error):
    the claim stayed, the scenario answered 409 for ever and the vendor needed a new run — a counted attempt."""
    store = sandbox_server.server.config.app.state.store
    acme = issue(admin, "acme", "acme.giveback")
    run = create(client, acme)
    real, failed = store.put_session, []

    def put_session_once_broken(session: dict[str, Any]) -> None:
        if not failed:
            failed.append(session["id"])
            raise OSError(28, "No space left on device")
        real(session)

    monkeypatch.setattr(store, "put_session", put_session_once_broken)
    with httpx.Client(base_url=str(client.base_url), timeout=30) as broken:  # a 500 may close its connection
        try:
            assert broken.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"},
                               headers=acme).status_code == 500
        except httpx.TransportError:
            pass
    assert failed
    r = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert r.status_code == 201, r.text
    again = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert again.status_code == 409  # given back once, taken once
