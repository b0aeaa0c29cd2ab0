"""One vendor cannot use up the sandbox every vendor of a wave shares: its live sessions and the runs it creates per
hour and per day are bounded (429 with Retry-After beyond), each vendor's software counted apart, the admin token not
at all — on SQLite and on PostgreSQL, the count and the creation one transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.sessions import new_run
from sandbox.store import BoundReached, RunBounds, Store, run_binding
from tests.sandbox.helpers import ADMIN_TOKEN
from tests.sandbox.test_harness_tokens import issue

RUN = {"wave": "2026-W1", "category": "GP", "pack": "health", "scenarios": ["PRACAUTH-001", "INSI-001"]}
ACME = run_binding({"vendor_id": "acme", "software_id": "acme.ehr"})
OTHER = run_binding({"vendor_id": "other", "software_id": "other.ehr"})


def test_live_sessions_are_counted_per_binding_across_handles(stores: tuple[Store, Store]) -> None:
    later = time.time() + 600
    for i in range(3):
        stores[i % 2].admit_session(ACME, f"ses_a{i}", later, 3)
    with pytest.raises(BoundReached) as reached:
        stores[1].admit_session(ACME, "ses_a3", later, 3)
    assert (reached.value.bound.what, reached.value.bound.limit) == ("live-sessions", 3)
    assert reached.value.bound.frees_at == pytest.approx(later)
    stores[0].admit_session(OTHER, "ses_b0", later, 3)  # another vendor's software: its own count
    stores[0].end_session("ses_a1")  # closed: its place is free
    stores[1].admit_session(ACME, "ses_a4", later, 3)
    with pytest.raises(BoundReached):
        stores[0].admit_session(ACME, "ses_a5", later, 3)


def test_an_expired_session_frees_its_place(stores: tuple[Store, Store]) -> None:
    stores[0].admit_session(ACME, "ses_old", time.time() - 1, 1)
    stores[1].admit_session(ACME, "ses_new", time.time() + 600, 1)
    with pytest.raises(BoundReached):
        stores[0].admit_session(ACME, "ses_newer", time.time() + 600, 1)


def test_sessions_admitted_at_once_never_pass_the_bound(stores: tuple[Store, Store]) -> None:
    admitted: list[str] = []
    start = threading.Barrier(8)

    def one(store: Store, i: int) -> None:
        start.wait()
        for j in range(4):
            try:
                store.admit_session(ACME, f"ses_{i}_{j}", time.time() + 600, 10)
                admitted.append(f"{i}_{j}")
            except BoundReached:
                pass

    threads = [threading.Thread(target=one, args=(stores[i % 2], i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 10


def test_runs_are_bounded_per_hour_per_binding_and_nothing_is_stored_beyond(stores: tuple[Store, Store]) -> None:
    acme, other = {"vendor_id": "acme", "software_id": "acme.ehr"}, {"vendor_id": "other", "software_id": "other.ehr"}

    def run(bound_to: dict[str, str] | None) -> dict[str, Any]:
        return new_run(bound_to=bound_to, wave="2026-W1", category="GP", pack="health", scenarios=["A"], seed=None)

    bounds = RunBounds(per_hour=2, per_day=5)
    made = [stores[i % 2].create_run(run(acme), bounds) for i in range(2)]
    refused = run(acme)
    with pytest.raises(BoundReached) as reached:
        stores[0].create_run(refused, bounds)
    assert reached.value.bound.what == "runs-per-hour"
    assert 3590 < reached.value.bound.frees_at - time.time() <= 3600
    assert stores[1].get_run(refused["id"]) is None  # nothing stored, the attempt not counted
    assert stores[1].create_run(run(other), bounds)["attempt"] == 1
    with pytest.raises(BoundReached) as none:  # a bound of 0: no run at all
        stores[0].create_run(run(other), RunBounds(0, 5))
    assert 3590 < none.value.bound.frees_at - time.time() <= 3600
    assert stores[1].create_run(run(acme), RunBounds(per_hour=10, per_day=10))["attempt"] == len(made) + 1
    with pytest.raises(BoundReached) as daily:
        stores[0].create_run(run(acme), RunBounds(per_hour=10, per_day=3))
    assert daily.value.bound.what == "runs-per-day"


@pytest.fixture(params=["sqlite", "postgresql"])
def bounded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningSandbox]:
    """A sandbox with small vendor bounds, on each engine."""
    database = None if request.param == "sqlite" else request.getfixturevalue("postgresql_url")
    config = SandboxConfig(data_dir=tmp_path, admin_token=ADMIN_TOKEN, database=database, vendor_live_sessions=2,
                           vendor_runs_per_hour=2, vendor_runs_per_day=3)
    with start_in_thread(config) as running:
        yield running


def refused(r: httpx.Response, bound: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert (problem["code"], problem["bound"]) == ("vendor-bound-reached", bound)
    assert int(r.headers["retry-after"]) == problem["retry_after"] >= 1


def test_one_vendor_at_its_bound_the_other_still_served(bounded: RunningSandbox) -> None:
    with httpx.Client(base_url=bounded.base_url, timeout=30) as client, \
            httpx.Client(base_url=bounded.base_url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme, other = issue(admin, "acme", "acme.ehr"), issue(admin, "other", "other.ehr")
        first, _ = (client.post("/admin/sessions", json={"seed": i}, headers=acme) for i in range(2))
        assert first.status_code == 201
        refused(client.post("/admin/sessions", json={"seed": 3}, headers=acme), "live-sessions")
        assert client.post("/admin/sessions", json={"seed": 3}, headers=other).status_code == 201
        assert admin.post("/admin/sessions", json={"seed": 3}).status_code == 201  # the operator: not bounded
        # a session closed frees its place
        assert client.post(f"/admin/sessions/{first.json()['session_id']}/close", headers=acme).status_code == 200
        assert client.post("/admin/sessions", json={"seed": 4}, headers=acme).status_code == 201

        for _ in range(2):
            assert client.post("/admin/runs", json=RUN, headers=acme).status_code == 201
        refused(client.post("/admin/runs", json=RUN, headers=acme), "runs-per-hour")
        assert client.post("/admin/runs", json=RUN, headers=other).status_code == 201
        assert all(admin.post("/admin/runs", json=RUN).status_code == 201 for _ in range(4))


def test_a_session_of_a_run_refused_at_the_bound_leaves_its_scenario_free(bounded: RunningSandbox) -> None:
    with httpx.Client(base_url=bounded.base_url, timeout=30) as client, \
            httpx.Client(base_url=bounded.base_url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme = issue(admin, "acme", "acme.ehr")
        run = client.post("/admin/runs", json=RUN, headers=acme).json()
        held = [client.post("/admin/sessions", json={"seed": i}, headers=acme).json() for i in range(2)]
        scenario = {"run_id": run["run_id"], "scenario": "INSI-001"}
        refused(client.post("/admin/sessions", json=scenario, headers=acme), "live-sessions")
        client.post(f"/admin/sessions/{held[0]['session_id']}/close", headers=acme)
        r = client.post("/admin/sessions", json=scenario, headers=acme)
        assert r.status_code == 201, r.text  # the refusal took neither the scenario nor a place


def test_a_finished_runs_sessions_free_their_places(bounded: RunningSandbox) -> None:
    """A run stopped midway (the harness interrupted, a scenario's sandbox error) left its sessions open: they held
    their vendor's places until they expired, hours later, and the vendor's next runs were refused. Finishing the run
    frees them; another vendor's sessions are not touched."""
    with httpx.Client(base_url=bounded.base_url, timeout=30) as client, \
            httpx.Client(base_url=bounded.base_url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme, other = issue(admin, "acme", "acme.ehr"), issue(admin, "other", "other.ehr")
        run = client.post("/admin/runs", json=RUN, headers=acme).json()
        for scenario in RUN["scenarios"]:  # both places taken, no session closed
            r = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": scenario}, headers=acme)
            assert r.status_code == 201, r.text
        held = [client.post("/admin/sessions", json={"seed": i}, headers=other).json() for i in range(2)]
        refused(client.post("/admin/sessions", json={"seed": 1}, headers=acme), "live-sessions")
        assert client.post(f"/admin/runs/{run['run_id']}/finish", headers=acme).status_code == 200
        assert all(client.post("/admin/sessions", json={"seed": i}, headers=acme).status_code == 201 for i in range(2))
        refused(client.post("/admin/sessions", json={"seed": 1}, headers=other), "live-sessions")  # still held
        assert len(held) == 2


def test_a_finished_runs_sessions_are_closed_with_their_places(bounded: RunningSandbox) -> None:
    """Finishing a run freed its sessions' places but left them open and served: a vendor bounded to 2 live sessions
    created a run's sessions, finished the run and created 2 more — 4 sessions served at once, and as many more per
    run it may create. A finished run's sessions are closed: no request of them is served after its seed is
    revealed."""
    with httpx.Client(base_url=bounded.base_url, timeout=30) as client, \
            httpx.Client(base_url=bounded.base_url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme = issue(admin, "acme", "acme.ehr")
        run = client.post("/admin/runs", json=RUN, headers=acme).json()
        played = [client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": scenario},
                              headers=acme).json()["session_id"] for scenario in RUN["scenarios"]]
        client.post(f"/admin/sessions/{played[0]}/close", headers=acme)  # one closed by its harness already
        assert client.post(f"/admin/runs/{run['run_id']}/finish", headers=acme).status_code == 200
        more = [client.post("/admin/sessions", json={"seed": i}, headers=acme) for i in range(2)]
        assert [r.status_code for r in more] == [201, 201]
        served = []
        for sid in played + [r.json()["session_id"] for r in more]:
            r = client.post(f"/admin/sessions/{sid}/notes", json={"kind": "step", "data": {}}, headers=acme)
            assert r.status_code in (201, 410), r.text
            served.append(r.status_code == 201)
        assert served == [False, False, True, True]
        for sid in played:
            note = client.post(f"/admin/sessions/{sid}/notes", json={"kind": "step", "data": {}}, headers=acme)
            assert note.json()["code"] == "session-closed"
            assert client.get(f"/admin/sessions/{sid}/trace", headers=acme).status_code == 200  # still exported


def test_a_vendors_trace_exports_under_way_are_bounded(bounded: RunningSandbox) -> None:
    """An export reads, canonicalises and signs a whole trace in memory: a vendor asking for every session's trace at
    once held them all. At most two of one software's are under way in a worker; the admin's are not bounded."""
    from sandbox.admin import EXPORTS_AT_ONCE
    from sandbox.store import run_binding

    with httpx.Client(base_url=bounded.base_url, timeout=30) as client, \
            httpx.Client(base_url=bounded.base_url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme, other = issue(admin, "acme", "acme.ehr"), issue(admin, "other", "other.ehr")
        sid = client.post("/admin/sessions", json={"seed": 1}, headers=acme).json()["session_id"]
        theirs = client.post("/admin/sessions", json={"seed": 1}, headers=other).json()["session_id"]
        exports = bounded.server.config.app.state.exports  # the app this server serves
        key = run_binding({"vendor_id": "acme", "software_id": "acme.ehr"})
        for _ in range(EXPORTS_AT_ONCE):  # two of acme's under way
            assert exports.enter(key)
        try:
            r = client.get(f"/admin/sessions/{sid}/trace", headers=acme)
            assert r.status_code == 429 and r.json()["code"] == "exports-under-way", r.text
            assert r.headers["retry-after"] == "1"
            assert client.get(f"/admin/sessions/{theirs}/trace", headers=other).status_code == 200
            assert admin.get(f"/admin/sessions/{sid}/trace").status_code == 200
        finally:
            for _ in range(EXPORTS_AT_ONCE):
                exports.leave(key)
        assert client.get(f"/admin/sessions/{sid}/trace", headers=acme).status_code == 200
        assert not exports.busy(key)  # every export gave its place back


def test_the_harness_waits_for_an_export_place_rather_than_lose_the_scenarios_trace(bounded: RunningSandbox) -> None:
    """Scenarios of one run ending together asked for more exports at once than the sandbox allows a software: the
    refused one ended its scenario with "sandbox error" and no trace (two defective-vendor runs under CI load). The
    harness asks again every second while the answer is 429 exports-under-way."""
    import threading

    from conformity.harness.sandbox_access import export_trace
    from sandbox.admin import EXPORTS_AT_ONCE
    from sandbox.store import run_binding

    with httpx.Client(base_url=bounded.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme = issue(admin, "acme", "acme.ehr")
        with httpx.Client(base_url=bounded.base_url, timeout=30, headers=acme) as client:
            sid = client.post("/admin/sessions", json={"seed": 1}).json()["session_id"]
            exports = bounded.server.config.app.state.exports
            key = run_binding({"vendor_id": "acme", "software_id": "acme.ehr"})
            for _ in range(EXPORTS_AT_ONCE):
                assert exports.enter(key)
            release = threading.Timer(1.5, lambda: [exports.leave(key) for _ in range(EXPORTS_AT_ONCE)])
            release.start()
            try:
                answer = export_trace(client, sid)
            finally:
                release.join()
            assert answer.status_code == 200 and answer.json()["payload"]
            for _ in range(EXPORTS_AT_ONCE):  # held for good: the export gives up, saying why
                assert exports.enter(key)
            try:
                with pytest.raises(httpx.HTTPStatusError, match="exports-under-way"):
                    export_trace(client, sid, wait=1.5)
            finally:
                for _ in range(EXPORTS_AT_ONCE):
                    exports.leave(key)


def test_the_operators_witnessed_run_is_bounded_apart_from_the_vendors_own(bounded: RunningSandbox) -> None:
    """The agency witnessing a vendor's software on its own sandbox minted a harness token like the vendor's: the
    vendor's runs there (its places, its runs of the hour and the day) refused the agency's witnessed run 429, and the
    witnessed run took the vendor's places. A witnessed token is counted apart — bounded all the same — and its
    sessions are bound to the same software (the evidence the agency verifies)."""
    from conformity.harness.sandbox_access import SandboxAccess

    with httpx.Client(base_url=bounded.base_url, timeout=30) as client, \
            httpx.Client(base_url=bounded.base_url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        acme = issue(admin, "acme", "acme.ehr")
        witness = SandboxAccess(base_url=bounded.base_url, token=ADMIN_TOKEN).bind("acme", "acme.ehr")  # the runner's
        agency = {"Authorization": f"Bearer {witness.token}"}
        assert all(client.post("/admin/sessions", json={"seed": i}, headers=acme).status_code == 201 for i in range(2))
        assert all(client.post("/admin/runs", json=RUN, headers=acme).status_code == 201 for _ in range(2))
        refused(client.post("/admin/sessions", json={"seed": 3}, headers=acme), "live-sessions")
        refused(client.post("/admin/runs", json=RUN, headers=acme), "runs-per-hour")
        run = client.post("/admin/runs", json=RUN, headers=agency)
        assert run.status_code == 201 and run.json()["attempt"] == 3  # the software's attempts: counted together
        sessions = [client.post("/admin/sessions", json={"run_id": run.json()["run_id"], "scenario": scenario},
                                headers=agency) for scenario in RUN["scenarios"]]
        assert [r.status_code for r in sessions] == [201, 201]
        assert {r.json()["bound_to"]["vendor_id"] for r in sessions} == {"acme"}
        refused(client.post("/admin/sessions", json={"seed": 4}, headers=agency), "live-sessions")  # bounded too
        refused(client.post("/admin/sessions", json={"seed": 4}, headers=acme), "live-sessions")  # not freed either
