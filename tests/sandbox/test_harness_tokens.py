"""Harness tokens: sessions bound to one vendor's software, stamped in the signed trace, nothing else reachable."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.server import RunningSandbox
from tests.sandbox.helpers import trace_payload


def issue(admin: httpx.Client, vendor_id: str, software_id: str) -> dict[str, str]:
    r = admin.post("/admin/harness-tokens", json={"vendor_id": vendor_id, "software_id": software_id})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_sessions_of_a_harness_token_are_bound_and_stamped_in_the_trace(
        admin: httpx.Client, client: httpx.Client) -> None:
    acme = issue(admin, "acme", "acme.ehr")
    r = client.post("/admin/sessions", json={"seed": 3}, headers=acme)
    assert r.status_code == 201 and r.json()["bound_to"] == {"vendor_id": "acme", "software_id": "acme.ehr"}
    sid = r.json()["session_id"]
    assert client.post(f"/admin/sessions/{sid}/notes", json={"kind": "scenario.start"}, headers=acme).status_code == 201
    assert client.put(f"/admin/sessions/{sid}/faults", json={"insi": {"unavailable": 1}}, headers=acme).status_code == 200
    trace = trace_payload(client.get(f"/admin/sessions/{sid}/trace", headers=acme))
    assert trace["session"]["bound_to"] == {"vendor_id": "acme", "software_id": "acme.ehr"}
    unbound = admin.post("/admin/sessions", json={"seed": 3}).json()
    assert unbound["bound_to"] is None


def test_another_vendors_sessions_are_out_of_reach(admin: httpx.Client, client: httpx.Client) -> None:
    acme, other = issue(admin, "acme", "acme.ehr"), issue(admin, "medilab", "medilab.lis")
    sid = client.post("/admin/sessions", json={"seed": 4}, headers=acme).json()["session_id"]
    for method, path, body in (("GET", f"/admin/sessions/{sid}", None), ("GET", f"/admin/sessions/{sid}/trace", None),
                               ("POST", f"/admin/sessions/{sid}/notes", {"kind": "forged"}),
                               ("PUT", f"/admin/sessions/{sid}/faults", {}), ("POST", f"/admin/sessions/{sid}/close", None)):
        r = client.request(method, path, json=body, headers=other)
        assert r.status_code == 403 and r.json()["code"] == "session-other-vendor", (method, path)
    admin_sessions = admin.post("/admin/sessions", json={"seed": 5}).json()["session_id"]
    r = client.post(f"/admin/sessions/{admin_sessions}/notes", json={"kind": "forged"}, headers=acme)
    assert r.status_code == 403


@pytest.mark.parametrize("method,path", [("GET", "/admin/sessions"), ("GET", "/admin/events"),
                                         ("GET", "/admin/installations"), ("POST", "/admin/installations"),
                                         ("POST", "/admin/harness-tokens")])
def test_harness_token_is_not_an_admin_token(admin: httpx.Client, client: httpx.Client, method: str, path: str) -> None:
    acme = issue(admin, "acme", "acme.ehr")
    r = client.request(method, path, json={}, headers=acme)
    assert r.status_code == 403 and r.json()["code"] == "admin-only"


def test_harness_token_never_enters_a_trace(admin: httpx.Client, client: httpx.Client,
                                            sandbox_server: RunningSandbox) -> None:
    r = admin.post("/admin/harness-tokens", json={"vendor_id": "acme", "software_id": "acme.ehr"})
    token = r.json()["token"]
    sid = client.post("/admin/sessions", json={"seed": 6}, headers={"Authorization": f"Bearer {token}"}).json()["session_id"]
    client.get(f"/s/{sid}/insi/lookup", headers={"Authorization": f"Bearer {token}"})
    assert token not in json.dumps(trace_payload(admin.get(f"/admin/sessions/{sid}/trace")))


@pytest.mark.parametrize("software_id", ["medilab.lis", "acme", "acme.lab.lis", "acmelab.lis"])
def test_a_harness_token_is_only_for_a_software_id_of_its_vendor(admin: httpx.Client, software_id: str) -> None:
    """Labels and revocations find a version by software id: a token binding vendor acme to another vendor's id
    (or to one another vendor, acme.lab, owns) would let acme's runs stand in that vendor's place."""
    r = admin.post("/admin/harness-tokens", json={"vendor_id": "acme", "software_id": software_id})
    assert r.status_code == 422 and "namespace" in r.text, r.text
    assert admin.post("/admin/harness-tokens", json={"vendor_id": "acme.lab", "software_id": "acme.lab.lis"}).status_code == 201


@pytest.mark.parametrize("vendor_id,software_id", [("acme.", "acme..lis"), (".acme", ".acme.lis"),
                                                   ("ac..me", "ac..me.lis"), ("acme", "acme.lis."),
                                                   ("Acme", "Acme.lis"), ("a" * 65, "a" * 65 + ".lis")])
def test_a_harness_token_takes_ids_of_the_one_form(admin: httpx.Client, vendor_id: str, software_id: str) -> None:
    """The sandbox took 'acme.' (which owns 'acme..lis') and 'ac..me', where the vendor manifest, the bundle and the
    agency refuse them: conformity.naming's one form, for every id of a harness token."""
    r = admin.post("/admin/harness-tokens", json={"vendor_id": vendor_id, "software_id": software_id})
    assert r.status_code == 422, r.text


RUN = {"wave": "2026-W1", "category": "GP", "pack": "health", "scenarios": ["PRACAUTH-001", "INSI-001"]}


def test_a_vendors_token_cannot_reach_the_operators_witnessed_run(admin: httpx.Client, client: httpx.Client) -> None:
    """The agency's witnessed run has a harness token of its own (``"witnessed": true``), its sessions bound to the
    vendor's software: the vendor's own token reached them all the same. Its driver learns the witnessed session's id
    (the session's URLs), the session's ``run`` names the run: with its own token the vendor could read the session's
    fixtures and credentials, clear the faults the scenario injects, close the session, claim the run's scenarios left
    and finish the run before the agency (its seed revealed mid-run). A token reaches the sessions and runs it created:
    the vendor's not the witness's, nor the other way round; the admin token every one."""
    acme = issue(admin, "acme", "acme.ehr")
    minted = admin.post("/admin/harness-tokens", json={"vendor_id": "acme", "software_id": "acme.ehr",
                                                       "witnessed": True})
    assert minted.status_code == 201 and minted.json()["witnessed"] is True
    witness = {"Authorization": f"Bearer {minted.json()['token']}"}
    run = client.post("/admin/runs", json=RUN, headers=witness).json()
    session = client.post("/admin/sessions", json={"run_id": run["run_id"], "scenario": "PRACAUTH-001"},
                          headers=witness).json()
    sid, rid = session["session_id"], run["run_id"]
    assert session["run"]["id"] == rid  # what the vendor's driver can learn
    for method, path, body in (("GET", f"/admin/sessions/{sid}", None),
                               ("PUT", f"/admin/sessions/{sid}/faults", {"insi": None}),
                               ("POST", f"/admin/sessions/{sid}/notes", {"kind": "x", "data": {}}),
                               ("GET", f"/admin/sessions/{sid}/trace", None),
                               ("POST", f"/admin/sessions/{sid}/close", None)):
        r = client.request(method, path, json=body, headers=acme)
        assert (r.status_code, r.json()["code"]) == (403, "session-other-vendor"), (method, path, r.text)
        assert "witnessed" in r.json()["detail"]
    for method, path, body in (("GET", f"/admin/runs/{rid}", None), ("POST", f"/admin/runs/{rid}/finish", None),
                               ("POST", "/admin/sessions", {"run_id": rid, "scenario": "INSI-001"})):
        r = client.request(method, path, json=body, headers=acme)
        assert (r.status_code, r.json()["code"]) == (404, "run-unknown"), (method, path, r.text)
    # nor the other way round: the witness's token does not reach the vendor's own
    own = client.post("/admin/sessions", json={"seed": 1}, headers=acme).json()["session_id"]
    assert client.get(f"/admin/sessions/{own}", headers=witness).status_code == 403
    own_run = client.post("/admin/runs", json=RUN, headers=acme).json()["run_id"]
    assert client.get(f"/admin/runs/{own_run}", headers=witness).status_code == 404
    # the witnessed run went on untouched, its token and the admin's reach it
    assert client.get(f"/admin/sessions/{sid}", headers=witness).json()["state"] == "open"
    assert admin.get(f"/admin/sessions/{sid}").status_code == 200
    assert client.post("/admin/sessions", json={"run_id": rid, "scenario": "INSI-001"},
                       headers=witness).status_code == 201
    finished = client.post(f"/admin/runs/{rid}/finish", headers=witness)
    assert finished.status_code == 200 and isinstance(finished.json()["seed"], int)
