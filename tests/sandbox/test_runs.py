"""Runs issued by the sandbox: its id and seed, its attempt number, one session per scenario, bound to one software.

A harness no longer names its run nor picks its seed unseen: ``POST /admin/runs`` makes the id, draws the seed (or
records that the caller chose it) and counts the attempts of the token's software in the wave and category; a
session of a run's scenario takes its seed from the run, once per scenario, and its signed trace names the run.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from conformity.runs import SANDBOX_SEED_BITS, scenario_seed, seed_commitment
from sandbox.sessions import new_run
from sandbox.store import Store
from tests.sandbox.helpers import trace_payload
from tests.sandbox.test_harness_tokens import issue

RUN = {"wave": "2026-W1", "category": "GP", "pack": "health", "scenarios": ["PRACAUTH-001", "INSI-001"]}


def finish(client: httpx.Client, headers: dict[str, str], run_id: str) -> dict[str, Any]:
    """Finish the run and return its answer (its seed revealed)."""
    r = client.post(f"/admin/runs/{run_id}/finish", headers=headers)
    assert r.status_code == 200, r.text
    assert seed_commitment(r.json()["seed"]) == r.json()["seed_commitment"]
    return r.json()  # type: ignore[no-any-return]


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
        admin: httpx.Client, client: httpx.Client, sandbox_server: Any) -> None:
    acme = issue(admin, "acme", "acme.sessions")
    run = create(client, acme)
    r = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert r.status_code == 201, r.text
    session = r.json()
    seed = sandbox_server.server.config.app.state.store.get_run(run["run_id"])["seed"]  # the sandbox's secret
    assert session["seed"] == scenario_seed(seed, "INSI-001") and session["pack"] == "health"
    trace = trace_payload(client.get(f"/admin/sessions/{session['session_id']}/trace", headers=acme))
    assert trace["session"]["run"] == {"id": run["run_id"], "wave": "2026-W1", "category": "GP",
                                       "seed_source": "sandbox", "seed_commitment": seed_commitment(seed),
                                       "attempt": 1, "scenario": "INSI-001"}
    assert trace["session"]["seed"] == session["seed"]
    # the same scenario again in the same run: refused (no keeping the best of several tries within one run)
    again = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert again.status_code == 409 and again.json()["code"] == "scenario-already-run", again.text
    # another scenario of the run: its own session
    other = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "PRACAUTH-001",
                                                 "seed": scenario_seed(seed, "PRACAUTH-001")}, headers=acme)
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
    assert stores[0].claim_scenario("run_x", "A", "ses_1") == "claimed"
    assert stores[1].claim_scenario("run_x", "A", "ses_2") == "taken"
    assert stores[1].claim_scenario("run_x", "B", "ses_2") == "claimed"
    assert stores[1].claim_scenario("run_y", "A", "ses_3") == "claimed"


def test_a_finished_run_takes_no_claim_across_handles(stores: tuple[Store, Store]) -> None:
    """The finish and the claims pass through one store: once a handle finished the run, no handle claims a
    scenario of it, and the finish lists exactly the claims made before it (finishing again changes nothing)."""
    assert stores[0].run_finished("run_f") is None
    assert stores[0].claim_scenario("run_f", "A", "ses_1") == "claimed"
    finished, played = stores[1].finish_run("run_f", "2026-01-01T00:00:00Z")
    assert (finished, played) == ("2026-01-01T00:00:00Z", [("A", "ses_1")])
    assert stores[0].claim_scenario("run_f", "B", "ses_2") == "finished"
    assert stores[0].claim_scenario("run_f", "A", "ses_3") == "finished"
    assert stores[0].finish_run("run_f", "2026-01-02T00:00:00Z") == (finished, played)
    assert stores[0].run_finished("run_f") == finished and stores[1].run_finished("run_g") is None


def test_claims_racing_a_finish_are_all_in_its_answer(stores: tuple[Store, Store]) -> None:
    """Claims and a finish at once, from two handles: every claim that succeeded is in the finish's list (a session
    the finish did not see would play with the run's seed already revealed), and none succeeds after it."""
    start, claimed, finishes = threading.Barrier(5), [], []

    def claim(store: Store, worker: int) -> None:
        start.wait()
        for i in range(20):
            scenario = f"S-{worker}-{i}"
            if store.claim_scenario("run_r", scenario, f"ses_{worker}_{i}") == "claimed":
                claimed.append(scenario)

    def end(store: Store) -> None:
        start.wait()
        finishes.append(store.finish_run("run_r", "2026-01-01T00:00:00Z")[1])

    threads = [threading.Thread(target=claim, args=(stores[w % 2], w)) for w in range(4)]
    threads.append(threading.Thread(target=end, args=(stores[1],)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(s for s, _ in finishes[0])
    assert stores[0].finish_run("run_r", "later")[1] == finishes[0]


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


def test_a_sandbox_seed_is_secret_until_the_run_is_finished(admin: httpx.Client, client: httpx.Client) -> None:
    """QA (seedreveal): ``POST /admin/runs`` answered the seed at once: a vendor created run R (attempt 1), rehearsed
    its exact test data (sessions outside the run with the derived scenario seeds, a local sandbox with --seed) for
    as long as it liked, then played R, attempt 1. The seed (128 bits) is now the sandbox's secret until the run is
    finished; the run's answer, its read and its sessions give only its commitment and each scenario's own seed."""
    acme = issue(admin, "acme", "acme.secret")
    run = create(client, acme)
    assert run["seed"] is None and run["finished"] is None and len(run["seed_commitment"]) == 64
    read = client.get(f"/admin/runs/{run['run_id']}", headers=acme)
    assert read.status_code == 200 and read.json()["seed"] is None, read.text
    session = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert session.status_code == 201, session.text
    assert session.json()["run"]["seed_commitment"] == run["seed_commitment"]
    before = [run, read.json(), session.json()]
    # another software's token reads nothing of it, finished or not
    medilab = issue(admin, "medilab", "medilab.secret")
    assert client.get(f"/admin/runs/{run['run_id']}", headers=medilab).status_code == 404
    assert client.post(f"/admin/runs/{run['run_id']}/finish", headers=medilab).status_code == 404
    done = finish(client, acme, run["run_id"])
    seed = done["seed"]
    assert seed.bit_length() > 64 and seed < 2**SANDBOX_SEED_BITS  # 2**-63 odds of a drawn seed under 2**64
    assert done["played"] == [{"scenario": "INSI-001", "session_id": session.json()["session_id"]}]
    assert done["finished"] is not None and done["seed_commitment"] == run["seed_commitment"]
    assert session.json()["seed"] == scenario_seed(seed, "INSI-001")
    for answer in before:  # the seed was nowhere in what the sandbox said before the finish
        assert str(seed) not in httpx.Response(200, json=answer).text
    after = client.get(f"/admin/runs/{run['run_id']}", headers=acme).json()
    assert (after["seed"], after["finished"]) == (seed, done["finished"])
    # the run is over: no session of it after, for a scenario played or not
    for scenario in ("PRACAUTH-001", "INSI-001"):
        late = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": scenario}, headers=acme)
        assert late.status_code == 409 and late.json()["code"] == "run-finished", late.text
    assert client.post(f"/admin/runs/{run['run_id']}/finish", headers=acme).json() == done  # finishing again: the same


def test_a_callers_seed_is_the_callers_from_the_start(admin: httpx.Client, client: httpx.Client) -> None:
    """A seed the caller chose (a vendor reproducing a run, never labelled) is known to it: the sandbox answers it,
    and a run seed as large as the sandbox draws is taken (a drawn seed reproduces its run)."""
    acme = issue(admin, "acme", "acme.chosen")
    big = 2**SANDBOX_SEED_BITS - 1
    run = create(client, acme, seed=big)
    assert (run["seed"], run["seed_source"], run["seed_commitment"]) == (big, "caller", seed_commitment(big))
    session = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "INSI-001"}, headers=acme)
    assert session.status_code == 201 and session.json()["seed"] == scenario_seed(big, "INSI-001"), session.text
    assert client.post("/admin/runs", json=RUN | {"seed": big + 1}, headers=acme).status_code == 422
